#include "framing.hpp"

#include "gateway_protocol.hpp"

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
    case FrameKind::open:
    case FrameKind::open_reply:
    case FrameKind::control:
        if (length < 1 || length > max_connect_payload) return std::nullopt;
        break;
    case FrameKind::gateway_open:
        if (length < gateway_open_fixed_size || length > max_gateway_open_payload) return std::nullopt;
        break;
    default: return std::nullopt;
    }
    return FrameHeader{kind, length};
}

}  // namespace pipeslot::detail
