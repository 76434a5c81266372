#include "throw.hpp"

#include <pipeslot/stream.hpp>

namespace pipeslot {

std::size_t ByteReader::read(std::span<std::byte> buffer, Timeout timeout) {
    std::error_code ec;
    const auto n = read(buffer, timeout, ec);
    detail::throw_if(ec, "read");
    return n;
}

std::size_t ByteWriter::write(std::span<const std::byte> data, Timeout timeout) {
    std::error_code ec;
    const auto n = write(data, timeout, ec);
    detail::throw_if(ec, "write");
    return n;
}

}  // namespace pipeslot
