#include "connect_protocol.hpp"

#include "little_endian.hpp"

#include <algorithm>
#include <cstring>

namespace pipeslot::detail {
namespace {

template <std::size_t N>
std::array<std::byte, frame_header_size + N> framed(FrameKind kind) noexcept {
    std::array<std::byte, frame_header_size + N> out{};
    const auto header = encode_header({kind, static_cast<std::uint32_t>(N)});
    std::memcpy(out.data(), header.data(), header.size());
    return out;
}

// A fixed part of N bytes, then the remote user: its length (one byte) and
// its bytes; then, from a gateway offering its connection, the token (8
// bytes; 0 if none but a computer follows); then the remote computer: its
// length (one byte) and its bytes.
template <std::size_t N>
std::vector<std::byte> framed_with_tail(FrameKind kind, const std::string& remote_user, std::uint64_t hand_off,
                                        const std::string& remote_computer) {
    const std::string user = cut_remote_user(remote_user);
    const std::string computer = remote_computer.substr(0, max_remote_computer);
    const std::size_t token_size = hand_off || !computer.empty() ? 8 : 0;
    const std::size_t computer_size = computer.empty() ? 0 : 1 + computer.size();
    const std::size_t payload = N + 1 + user.size() + token_size + computer_size;
    std::vector<std::byte> out(frame_header_size + payload);
    const auto header = encode_header({kind, static_cast<std::uint32_t>(payload)});
    std::memcpy(out.data(), header.data(), header.size());
    auto p = std::span(out).subspan(frame_header_size + N);
    p[0] = static_cast<std::byte>(user.size());
    std::memcpy(p.data() + 1, user.data(), user.size());
    p = p.subspan(1 + user.size());
    if (token_size) put_le<std::uint64_t>(p, 0, hand_off), p = p.subspan(8);
    if (computer_size) {
        p[0] = static_cast<std::byte>(computer.size());
        std::memcpy(p.data() + 1, computer.data(), computer.size());
    }
    return out;
}

// A length-prefixed string at the start of `p` (no NUL, at most `max` bytes);
// `p` is left after it. False if malformed.
bool read_short_string(std::span<const std::byte>& p, std::size_t max, std::string& out) {
    const auto size = static_cast<std::size_t>(p[0]);
    if (size > max || p.size() < 1 + size) return false;
    out.assign(reinterpret_cast<const char*>(p.data() + 1), size);
    p = p.subspan(1 + size);
    return out.find('\0') == std::string::npos;
}

// The tail after a fixed part of `fixed` bytes; absent fields (an older peer)
// are empty and 0. What follows them belongs to a later version.
bool read_tail(std::span<const std::byte> p, std::size_t fixed, std::string& user, std::uint64_t& hand_off,
               std::string& computer) {
    user.clear(), computer.clear();
    hand_off = 0;
    p = p.subspan(fixed);
    if (p.empty()) return true;
    if (!read_short_string(p, max_remote_user, user)) return false;
    if (p.size() < 8) return true;
    hand_off = get_le<std::uint64_t>(p, 0);
    p = p.subspan(8);
    return p.empty() || read_short_string(p, max_remote_computer, computer);
}

std::uint8_t access_code(ClientAccess a) noexcept {
    return a == ClientAccess::none ? 0 : a == ClientAccess::read ? 1 : a == ClientAccess::write ? 2 : 3;
}

std::optional<ClientAccess> client_access(std::uint8_t code) noexcept {
    switch (code) {
    case 0: return ClientAccess::none;
    case 1: return ClientAccess::read;
    case 2: return ClientAccess::write;
    case 3: return ClientAccess::read_write;
    default: return std::nullopt;
    }
}

std::uint8_t pipe_access_code(PipeAccess a) noexcept {
    return a == PipeAccess::inbound ? 1 : a == PipeAccess::outbound ? 2 : 3;
}

std::optional<PipeAccess> pipe_access(std::uint8_t code) noexcept {
    switch (code) {
    case 1: return PipeAccess::inbound;
    case 2: return PipeAccess::outbound;
    case 3: return PipeAccess::duplex;
    default: return std::nullopt;
    }
}

bool valid_errc(std::uint32_t value) noexcept {
    return value <= static_cast<std::uint32_t>(errc::pipe_local);  // the last code
}

// A later version may append fields: read the known prefix, check its size.
bool long_enough(std::span<const std::byte> payload, std::size_t size) noexcept {
    return payload.size() >= size && payload.size() <= max_connect_payload;
}

}  // namespace

std::string cut_remote_user(std::string user) {
    if (user.size() <= max_remote_user) return user;
    std::size_t end = max_remote_user;
    while (end > 0 && (static_cast<unsigned char>(user[end]) & 0xC0) == 0x80) --end;  // not inside a character
    user.resize(end);
    return user;
}

OpenRequest open_request_for(const ClientOptions& options, const Deadline& wait, bool wait_only, bool query) {
    OpenRequest r;
    r.access = options.access;
    r.message_read_mode = options.read_mode == ReadMode::message;
    r.use_server_default_wait = options.use_server_default_wait;
    r.wait_only = wait_only;
    r.query = query;
    r.wait_ms = wait.is_forever() ? wait_forever_ms
                                  : static_cast<std::uint32_t>(std::min<std::int64_t>(wait.remaining_ms(), 0xFFFFFFFE));
    return r;
}

std::vector<std::byte> encode_open(const OpenRequest& r) {
    auto out = framed_with_tail<open_request_size>(FrameKind::open, r.remote_user, r.hand_off, r.remote_computer);
    auto p = std::span(out).subspan(frame_header_size);
    put_le<std::uint8_t>(p, 0, r.version);
    put_le<std::uint8_t>(p, 1, access_code(r.access));
    put_le<std::uint8_t>(p, 2, (r.remote ? 1 : 0) | (r.message_read_mode ? 2 : 0) | (r.use_server_default_wait ? 4 : 0) |
                                (r.wait_only ? 8 : 0) | (r.query ? 16 : 0));
    put_le<std::uint32_t>(p, 4, r.wait_ms);
    return out;
}

std::optional<OpenRequest> decode_open(std::span<const std::byte> p) noexcept {
    if (!long_enough(p, open_request_size)) return std::nullopt;
    OpenRequest r;
    r.version = get_le<std::uint8_t>(p, 0);
    const auto access = client_access(get_le<std::uint8_t>(p, 1));
    const auto flags = get_le<std::uint8_t>(p, 2);
    if (r.version < protocol_version || !access || flags > 31 || get_le<std::uint8_t>(p, 3) != 0) return std::nullopt;
    r.access = *access;
    r.remote = flags & 1;
    r.message_read_mode = flags & 2;
    r.use_server_default_wait = flags & 4;
    r.wait_only = flags & 8;
    r.query = flags & 16;
    r.wait_ms = get_le<std::uint32_t>(p, 4);
    if (!read_tail(p, open_request_size, r.remote_user, r.hand_off, r.remote_computer)) return std::nullopt;
    return r;
}

std::array<std::byte, frame_header_size + open_reply_size> encode_open_reply(const OpenReply& r) noexcept {
    auto out = framed<open_reply_size>(FrameKind::open_reply);
    auto p = std::span(out).subspan(frame_header_size);
    put_le<std::uint8_t>(p, 0, static_cast<std::uint8_t>(r.result));
    put_le<std::uint8_t>(p, 1, r.type == PipeType::message ? 1 : 0);
    put_le<std::uint16_t>(p, 2, r.current_instances);
    put_le<std::uint32_t>(p, 4, r.max_instances);
    put_le<std::uint64_t>(p, 8, r.in_buffer);
    put_le<std::uint64_t>(p, 16, r.out_buffer);
    put_le<std::uint32_t>(p, 24, r.server_pid);
    put_le<std::uint32_t>(p, 28, r.server_uid);
    return out;
}

std::optional<OpenReply> decode_open_reply(std::span<const std::byte> p) noexcept {
    if (!long_enough(p, open_reply_size)) return std::nullopt;
    OpenReply r;
    const auto result = get_le<std::uint8_t>(p, 0), type = get_le<std::uint8_t>(p, 1);
    r.max_instances = get_le<std::uint32_t>(p, 4);
    r.in_buffer = get_le<std::uint64_t>(p, 8);
    r.out_buffer = get_le<std::uint64_t>(p, 16);
    if (!valid_errc(result) || type > 1 || r.in_buffer > max_buffer_quota ||
        r.out_buffer > max_buffer_quota || (result == 0 && (r.max_instances < 1 || r.max_instances > unlimited_instances)))
        return std::nullopt;
    r.result = static_cast<errc>(result);
    r.type = type == 1 ? PipeType::message : PipeType::byte;
    r.current_instances = get_le<std::uint16_t>(p, 2);
    r.server_pid = get_le<std::uint32_t>(p, 24);
    r.server_uid = get_le<std::uint32_t>(p, 28);
    return r;
}

std::vector<std::byte> encode_control(const Control& c) {
    auto out = framed_with_tail<control_size>(FrameKind::control, c.remote_user, c.hand_off, c.remote_computer);
    auto p = std::span(out).subspan(frame_header_size);
    const auto& k = c.params;
    put_le<std::uint8_t>(p, 0, static_cast<std::uint8_t>(c.op));
    put_le<std::uint8_t>(p, 1, k.type == PipeType::message ? 1 : 0);
    put_le<std::uint8_t>(p, 2, pipe_access_code(k.access));
    put_le<std::uint8_t>(p, 3, (k.first_instance ? 1 : 0) | (k.reject_remote ? 2 : 0) | (k.allow_other_users ? 4 : 0));
    put_le<std::uint32_t>(p, 4, c.request);
    put_le<std::uint64_t>(p, 8, c.instance);
    put_le<std::uint32_t>(p, 16, k.max_instances);
    put_le<std::uint32_t>(p, 20, static_cast<std::uint32_t>(c.result));
    put_le<std::int64_t>(p, 24, k.default_wait_ms);
    put_le<std::uint64_t>(p, 32, k.in_buffer);
    put_le<std::uint64_t>(p, 40, k.out_buffer);
    put_le<std::int64_t>(p, 48, c.listening_since);
    return out;
}

std::optional<Control> decode_control(std::span<const std::byte> p) noexcept {
    if (!long_enough(p, control_size)) return std::nullopt;
    Control c;
    const auto op = get_le<std::uint8_t>(p, 0), type = get_le<std::uint8_t>(p, 1), flags = get_le<std::uint8_t>(p, 3);
    const auto access = pipe_access(get_le<std::uint8_t>(p, 2));
    const auto result = get_le<std::uint32_t>(p, 20);
    auto& k = c.params;
    k.max_instances = get_le<std::uint32_t>(p, 16);
    k.default_wait_ms = get_le<std::int64_t>(p, 24);
    k.in_buffer = get_le<std::uint64_t>(p, 32);
    k.out_buffer = get_le<std::uint64_t>(p, 40);
    c.listening_since = get_le<std::int64_t>(p, 48);
    if (op < 1 || op > 7 || type > 1 || !access || flags > 7 || !valid_errc(result) || k.max_instances < 1 ||
        k.max_instances > unlimited_instances || k.default_wait_ms < -1 || k.in_buffer > max_buffer_quota ||
        k.out_buffer > max_buffer_quota || c.listening_since < -1)
        return std::nullopt;
    c.op = static_cast<ControlOp>(op);
    c.request = get_le<std::uint32_t>(p, 4);
    c.instance = get_le<std::uint64_t>(p, 8);
    c.result = static_cast<errc>(result);
    k.type = type == 1 ? PipeType::message : PipeType::byte;
    k.access = *access;
    k.first_instance = flags & 1;
    k.reject_remote = flags & 2;
    k.allow_other_users = flags & 4;
    if (!read_tail(p, control_size, c.remote_user, c.hand_off, c.remote_computer)) return std::nullopt;
    return c;
}

}  // namespace pipeslot::detail
