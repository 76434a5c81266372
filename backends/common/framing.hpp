// The wire format of an emulated named pipe: a stream of frames, each an
// 8-byte header and a payload. The same bytes run over a UNIX socket and
// (for \\server\pipe\name) over TCP. See docs/wire-format.md.
//
//   byte 0     kind: 1 message, 2 disconnect; 3 open, 4 open reply and
//              5 control belong to connecting (connect_protocol.hpp), 6
//              gateway open to a network gateway (gateway_protocol.hpp)
//   bytes 1-3  zero
//   bytes 4-7  payload length, little-endian (message <= max_message_size,
//              disconnect 0, the connecting kinds their own bounds)
#pragma once

#include <pipeslot/message_channel.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>

namespace pipeslot::detail {

inline constexpr std::size_t frame_header_size = 8;
inline constexpr std::uint8_t protocol_version = 2;

enum class FrameKind : std::uint8_t { message = 1, disconnect = 2, open = 3, open_reply = 4, control = 5, gateway_open = 6 };

struct FrameHeader {
    FrameKind kind;
    std::uint32_t length;
};

using HeaderBytes = std::array<std::byte, frame_header_size>;

HeaderBytes encode_header(FrameHeader header) noexcept;
// nullopt for anything malformed: unknown kind, non-zero reserved bytes, a
// length over the kind's limit.
std::optional<FrameHeader> decode_header(std::span<const std::byte, frame_header_size> bytes) noexcept;

// The two kinds a channel carries once it is connected; anything else there is a protocol error.
inline bool is_channel_frame(FrameKind kind) noexcept {
    return kind == FrameKind::message || kind == FrameKind::disconnect;
}

}  // namespace pipeslot::detail
