// How an emulated named pipe gets connected (docs/wire-format.md): the frames
// a client, a name's broker and the other server processes of the name
// exchange before (or beside) a channel's messages. Each payload has a fixed
// layout, little-endian, and every decoder checks every field, since the
// bytes come from another process.
#pragma once

#include "deadline.hpp"
#include "framing.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/message_channel.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pipeslot::detail {

inline constexpr std::size_t max_connect_payload = 384;  // a later version may append fields up to this
inline constexpr std::uint32_t wait_forever_ms = 0xFFFFFFFF;

// --- client -> broker: the first frame on a client's connection -----------------
struct OpenRequest {
    std::uint8_t version = protocol_version;
    ClientAccess access = ClientAccess::read_write;
    bool remote = false;                   // came through a network gateway
    bool message_read_mode = false;        // asked for; refused on a byte pipe
    bool use_server_default_wait = false;  // wait the pipe's default_wait instead of wait_ms
    bool wait_only = false;                // WaitNamedPipe: answered once an instance is free, which it does not take
    bool query = false;                    // answered at once with the name's current number of instances
    std::uint32_t wait_ms = 0;             // how long to wait for a free instance; wait_forever_ms
    // A gateway's: who its network client proved to be (a PSK identity or a
    // certificate's subject), for the server's client_user(). Empty otherwise.
    std::string remote_user;
    // A gateway's offer of its client's connection itself (hand_off.hpp), for
    // an instance in the gateway's own process to serve directly; 0: none.
    std::uint64_t hand_off = 0;
    // A gateway's: where its network client connected from (an address),
    // for the server's client_computer_name(). Empty otherwise.
    std::string remote_computer;
};
// The fixed part; the remote user (length, bytes), the hand-off token and the remote computer (length, bytes) follow.
inline constexpr std::size_t open_request_size = 8;
inline constexpr std::size_t max_remote_user = 192;     // bytes (a longer one is cut at a character)
inline constexpr std::size_t max_remote_computer = 64;  // bytes: an IPv6 address with its zone fits
std::vector<std::byte> encode_open(const OpenRequest& request);
// What a client asks, from its options and what is left of its wait.
OpenRequest open_request_for(const ClientOptions& options, const Deadline& wait, bool wait_only, bool query);
std::optional<OpenRequest> decode_open(std::span<const std::byte> payload) noexcept;

// --- broker -> client: the answer, the last frame the broker writes ----------------
struct OpenReply {
    errc result{};  // errc{} (0): connected; the channel's frames follow
    PipeType type = PipeType::byte;
    std::uint16_t current_instances = 0;  // the answer to a query (saturated), else 0
    unsigned max_instances = 0;
    std::uint64_t in_buffer = 0, out_buffer = 0;
    std::uint32_t server_pid = 0;  // the process of the instance the client got
    std::uint32_t server_uid = 0;
};
inline constexpr std::size_t open_reply_size = 32;
std::array<std::byte, frame_header_size + open_reply_size> encode_open_reply(const OpenReply& reply) noexcept;
std::optional<OpenReply> decode_open_reply(std::span<const std::byte> payload) noexcept;

// --- server process <-> broker: one control connection per server process ---------
enum class ControlOp : std::uint8_t {
    join = 1,     // member -> broker, first: "I am a server process of this name"
    add = 2,      // member -> broker: a new instance (request, instance, params); answered by reply
    restore = 3,  // member -> broker after a change of broker: an instance it already had (never refused)
    listen = 4,   // member -> broker: the instance listens again (listening_since)
    remove = 5,   // member -> broker: the instance is gone (request); answered by reply
    reply = 6,    // broker -> member: the result of add or remove (request, result, the pipe's params)
    client = 7,   // broker -> member: a client for the instance; its descriptor rides along (SCM_RIGHTS)
};

// What the first instance of a name fixes for all, and what each instance has of its own.
struct InstanceParams {
    PipeType type = PipeType::message;
    PipeAccess access = PipeAccess::duplex;
    unsigned max_instances = unlimited_instances;
    std::int64_t default_wait_ms = 50;  // -1: forever
    bool first_instance = false;
    bool reject_remote = true;
    bool allow_other_users = false;
    std::uint64_t in_buffer = 0, out_buffer = 0;
};

struct Control {
    ControlOp op = ControlOp::join;
    std::uint32_t request = 0;
    std::uint64_t instance = 0;
    errc result{};
    InstanceParams params;
    std::int64_t listening_since = -1;  // steady-clock nanoseconds (one clock for the host); -1: has a client
    std::string remote_user;            // client: the gateway client's identity (OpenRequest::remote_user)
    std::uint64_t hand_off = 0;         // client: the gateway's offer (OpenRequest::hand_off), if this process made it
    std::string remote_computer;        // client: where the gateway's client is (OpenRequest::remote_computer)
};
inline constexpr std::size_t control_size = 56;  // the fixed part; then as an open request's
std::vector<std::byte> encode_control(const Control& control);
std::optional<Control> decode_control(std::span<const std::byte> payload) noexcept;

// `user` cut to at most max_remote_user bytes, at a UTF-8 character's start.
std::string cut_remote_user(std::string user);

// The largest buffer quota a peer may announce (the in-memory fake and Win32 cap theirs lower).
inline constexpr std::uint64_t max_buffer_quota = std::uint64_t{1} << 32;

}  // namespace pipeslot::detail
