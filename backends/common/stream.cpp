#include "throw.hpp"

#include <pipeslot/stream.hpp>

namespace pipeslot {

std::size_t ByteReader::read(std::span<std::byte> buffer, Timeout timeout) {
    return detail::or_throw("read", [&](std::error_code& ec) { return read(buffer, timeout, ec); });
}

std::size_t ByteWriter::write(std::span<const std::byte> data, Timeout timeout) {
    return detail::or_throw("write", [&](std::error_code& ec) { return write(data, timeout, ec); });
}

}  // namespace pipeslot
