// A ByteSource over bytes in memory, handing them out in chunks of a chosen
// size, then reporting end of stream: for tests and fuzzing of the frame reader.
#pragma once

#include "common/frame_reader.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

namespace pipeslot::test {

class MemorySource final : public detail::ByteSource {
public:
    explicit MemorySource(std::vector<std::byte> bytes, std::size_t chunk = 1 << 20)
        : bytes_(std::move(bytes)), chunk_(std::max<std::size_t>(chunk, 1)) {}
    std::size_t pull(std::span<std::byte> into, const detail::Deadline&, std::error_code& ec) override {
        if (at_ == bytes_.size()) {
            ec = errc::end_of_stream;
            return 0;
        }
        const auto n = std::min({into.size(), chunk_, bytes_.size() - at_});
        std::memcpy(into.data(), bytes_.data() + at_, n);
        at_ += n;
        return n;
    }

private:
    std::vector<std::byte> bytes_;
    std::size_t chunk_;
    std::size_t at_ = 0;
};

}  // namespace pipeslot::test
