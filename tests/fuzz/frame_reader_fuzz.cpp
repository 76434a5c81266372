// libFuzzer target: the bytes of an emulated named pipe, as a hostile peer
// could send them, read in every mode with every buffer size. The first bytes
// choose the chunking, the read mode and the buffer sizes.
#include "../support/memory_source.hpp"
#include "common/connect_protocol.hpp"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pipeslot;
    if (size < 3) return 0;
    const std::size_t chunk = 1 + data[0] % 64;
    const std::size_t buffer_size = 1 + data[1] * 37 % 5000;
    const std::uint8_t modes = data[2];
    std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data + 3), reinterpret_cast<const std::byte*>(data + size));
    test::MemorySource source(std::move(bytes), chunk);
    detail::FrameReader reader;
    const detail::Deadline now(Timeout::none());
    std::vector<std::byte> buffer(buffer_size);
    for (int i = 0; i < 10000; ++i) {
        std::error_code ec;
        const auto mode = (modes >> (i % 8)) & 1 ? ReadMode::byte : ReadMode::message;
        if (i % 5 == 4) {
            reader.peek(buffer, mode, PipeType::message, source, ec);
        } else {
            reader.receive(buffer, mode, source, now, ec);
        }
        if (ec && ec != errc::more_data && ec != errc::timed_out) break;
    }
    // The connecting frames' decoders, on the same bytes.
    const auto all = std::span(reinterpret_cast<const std::byte*>(data), size);
    (void)detail::decode_open(all);
    (void)detail::decode_open_reply(all);
    (void)detail::decode_control(all);
    return 0;
}
