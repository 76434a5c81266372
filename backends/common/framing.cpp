#include "framing.hpp"

namespace pipeslot::detail {

HeaderBytes encode_header(FrameHeader header) noexcept {
    HeaderBytes out{};
    out[0] = static_cast<std::byte>(header.kind);
    for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<std::byte>((header.length >> (8 * i)) & 0xFF);
    return out;
}

std::optional<FrameHeader> decode_header(std::span<const std::byte, frame_header_size> bytes) noexcept {
    if (bytes[1] != std::byte{0} || bytes[2] != std::byte{0} || bytes[3] != std::byte{0}) return std::nullopt;
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= static_cast<std::uint32_t>(bytes[4 + i]) << (8 * i);
    const auto kind = static_cast<FrameKind>(bytes[0]);
    switch (kind) {
    case FrameKind::message:
        if (length > max_message_size) return std::nullopt;
        break;
    case FrameKind::disconnect:
        if (length != 0) return std::nullopt;
        break;
    case FrameKind::hello:
        if (length < hello_payload_size || length > max_hello_size) return std::nullopt;
        break;
    default: return std::nullopt;
    }
    return FrameHeader{kind, length};
}

std::array<std::byte, hello_payload_size> encode_hello(const Hello& hello) noexcept {
    const auto access = hello.access == ClientAccess::read ? 1 : hello.access == ClientAccess::write ? 2 : 3;
    return {std::byte{hello.version}, static_cast<std::byte>(access), std::byte{hello.remote ? std::uint8_t{1} : std::uint8_t{0}},
            std::byte{0}};
}

std::optional<Hello> decode_hello(std::span<const std::byte> payload) noexcept {
    // Later versions may append fields; version 1 reads the first four bytes.
    if (payload.size() < hello_payload_size || payload[0] == std::byte{0}) return std::nullopt;
    Hello h;
    h.version = static_cast<std::uint8_t>(payload[0]);
    switch (static_cast<int>(payload[1])) {
    case 1: h.access = ClientAccess::read; break;
    case 2: h.access = ClientAccess::write; break;
    case 3: h.access = ClientAccess::read_write; break;
    default: return std::nullopt;
    }
    if (static_cast<int>(payload[2]) > 1) return std::nullopt;
    h.remote = payload[2] == std::byte{1};
    return h;
}

}  // namespace pipeslot::detail
