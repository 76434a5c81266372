// The network gateway's part of the wire format (docs/wire-format.md,
// "Gateway"): how a client on another host asks a gateway for a pipe. The
// gateway answers with the local open reply (connect_protocol.hpp), and the
// channel's frames (framing.hpp) follow unchanged, so one framing runs over
// UNIX sockets and TCP alike.
#pragma once

#include "connect_protocol.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pipeslot::detail {

// The gateway's TCP port unless an option or PIPESLOT_GATEWAY_PORT says otherwise.
inline constexpr std::uint16_t default_gateway_port = 4455;
// Bumped when the gateway's frames change; a gateway answers another
// version's request with errc::not_supported, and nothing else.
inline constexpr std::uint8_t gateway_version = 1;
inline constexpr std::size_t gateway_open_fixed_size = 12;
inline constexpr std::size_t max_gateway_name_bytes = 4 * max_name_length;  // UTF-8 of 256 code points
inline constexpr std::size_t max_gateway_open_payload = gateway_open_fixed_size + max_gateway_name_bytes;

// --- client -> gateway: the first frame on a TCP connection -----------------
struct GatewayOpen {
    std::uint8_t version = gateway_version;
    OpenRequest request;  // access, read mode, the wait; version and remote are not sent
    std::string name;     // NAME of \\server\pipe\NAME, as the client wrote it (UTF-8)
};
std::vector<std::byte> encode_gateway_open(const GatewayOpen& open);
// nullopt for anything malformed. The version is not checked here (the
// gateway answers another version with not_supported): only what this
// version's layout needs to be read at all.
std::optional<GatewayOpen> decode_gateway_open(std::span<const std::byte> payload);

// Follows the channel frames of one direction of a relayed connection without
// holding them: for each chunk of bytes it checks every frame header, and
// counts the message payload bytes (a relay credits them to the pipe's
// quota). A header split across chunks is kept until it is whole.
class FrameScanner {
public:
    // False at the first malformed header (or a frame that is not a channel
    // frame); the rest of the stream is then not to be passed on.
    bool scan(std::span<const std::byte> bytes, std::uint64_t& payload_bytes) noexcept;
    bool saw_disconnect() const noexcept { return disconnect_; }

private:
    std::array<std::byte, frame_header_size> header_{};
    std::size_t header_have_ = 0;
    std::uint64_t payload_left_ = 0;
    bool disconnect_ = false;
    bool failed_ = false;
};

}  // namespace pipeslot::detail
