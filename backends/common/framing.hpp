// The wire format of an emulated named pipe: a stream of frames, each an
// 8-byte header and a payload. The same bytes run over a UNIX socket and
// (for \\server\pipe\name) over TCP. See docs/wire-format.md.
//
//   byte 0     kind: 1 message, 2 disconnect, 3 hello
//   bytes 1-3  zero
//   bytes 4-7  payload length, little-endian (message <= max_message_size,
//              disconnect 0, hello 4..max_hello_size)
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
inline constexpr std::size_t max_hello_size = 256;
inline constexpr std::uint8_t protocol_version = 1;

enum class FrameKind : std::uint8_t { message = 1, disconnect = 2, hello = 3 };

struct FrameHeader {
    FrameKind kind;
    std::uint32_t length;
};

using HeaderBytes = std::array<std::byte, frame_header_size>;

HeaderBytes encode_header(FrameHeader header) noexcept;
// nullopt for anything malformed: unknown kind, non-zero reserved bytes, a
// length over the kind's limit.
std::optional<FrameHeader> decode_header(std::span<const std::byte, frame_header_size> bytes) noexcept;

// The first frame a client sends: who it is and what it may do.
struct Hello {
    std::uint8_t version = protocol_version;
    ClientAccess access = ClientAccess::read_write;
    bool remote = false;  // came through a network gateway
};
inline constexpr std::size_t hello_payload_size = 4;
std::array<std::byte, hello_payload_size> encode_hello(const Hello& hello) noexcept;
std::optional<Hello> decode_hello(std::span<const std::byte> payload) noexcept;

}  // namespace pipeslot::detail
