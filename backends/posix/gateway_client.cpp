#include "gateway_client.hpp"

#include "../common/gateway_protocol.hpp"
#include "fd.hpp"
#include "flow_page.hpp"
#include "tcp.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/time.h>

namespace pipeslot::posix {
namespace {

std::chrono::milliseconds from_environment(const char* variable, std::chrono::milliseconds otherwise) noexcept {
    const char* text = std::getenv(variable);
    if (!text) return otherwise;
    unsigned ms = 0;
    const auto [end, error] = std::from_chars(text, text + std::strlen(text), ms);
    return error == std::errc{} && *end == '\0' && ms >= 1 ? std::chrono::milliseconds(ms) : otherwise;
}

void set_receive_timeout(int fd, std::int64_t ms) noexcept {
    timeval tv{};  // zero: none
    if (ms > 0) {
        tv.tv_sec = static_cast<time_t>(ms / 1000);
        tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    }
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

enum class Ask { open, wait_only, query };

// Exactly `into.size()` bytes, never more: what follows belongs to the channel.
std::error_code receive_exactly(int fd, std::span<std::byte> into) {
    while (!into.empty()) {
        const ssize_t n = ::recv(fd, into.data(), into.size(), 0);
        if (n > 0) into = into.subspan(static_cast<std::size_t>(n));
        else if (n == 0 || errno == ECONNRESET || errno == EPIPE) return errc::broken_pipe;
        else if (errno == EAGAIN || errno == EWOULDBLOCK) return errc::timed_out;
        else if (errno != EINTR) return last_error();
    }
    return {};
}

std::error_code ask_gateway(const Name& name, const ClientOptions& options, const detail::Deadline& wait, Ask ask,
                            OpenedChannel& out) {
    const auto grace = gateway_connect_timeout();
    int raw = -1;
    if (auto ec = connect_tcp(name.server(), gateway_port(options.gateway_port), grace, raw)) return ec;
    Fd fd(raw);
    notice_dead_peer(fd.get(), gateway_dead_peer_timeout());

    detail::GatewayOpen open;
    open.name = name.name();
    auto& r = open.request;
    r.access = options.access;
    r.message_read_mode = options.read_mode == ReadMode::message;
    r.use_server_default_wait = options.use_server_default_wait;
    r.wait_only = ask == Ask::wait_only;
    r.query = ask == Ask::query;
    r.wait_ms = wait.is_forever() ? detail::wait_forever_ms
                                  : static_cast<std::uint32_t>(std::min<std::int64_t>(wait.remaining_ms(), 0xFFFFFFFE));
    const auto frame = detail::encode_gateway_open(open);
    if (::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
        return errc::not_found;  // the gateway went away at once

    // The answer comes once an instance is free or the wait is over; past
    // that and the grace, the gateway is taken for gone.
    const bool bounded = !wait.is_forever() && !options.use_server_default_wait;
    set_receive_timeout(fd.get(), bounded ? wait.remaining_ms() + grace.count() : 0);
    std::array<std::byte, detail::frame_header_size + detail::max_connect_payload> reply{};
    auto ec = receive_exactly(fd.get(), std::span(reply).first(detail::frame_header_size));
    std::optional<detail::FrameHeader> header;
    if (!ec) {
        header = detail::decode_header(std::span<const std::byte, detail::frame_header_size>(reply.data(), detail::frame_header_size));
        if (!header || header->kind != detail::FrameKind::open_reply || header->length < detail::open_reply_size)
            return errc::protocol_error;
        ec = receive_exactly(fd.get(), std::span(reply).subspan(detail::frame_header_size, header->length));
    }
    if (ec == errc::timed_out) return ask == Ask::wait_only ? errc::timed_out : errc::pipe_busy;  // no answer in time
    if (ec == errc::broken_pipe) return errc::not_found;  // closed unanswered: no gateway there
    if (ec) return ec;
    const auto decoded = detail::decode_open_reply(std::span<const std::byte>(reply).subspan(detail::frame_header_size, header->length));
    if (!decoded) return errc::protocol_error;
    if (decoded->result != errc{}) return decoded->result;
    out.reply = *decoded;
    if (ask != Ask::open) return {};
    set_receive_timeout(fd.get(), 0);  // the channel sets its own
    out.flow = FlowPage::unshared(false);  // no page across hosts: no quotas (docs/gateway.md)
    out.fd = fd.release();
    return {};
}

}  // namespace

std::chrono::milliseconds gateway_connect_timeout() noexcept {
    return from_environment("PIPESLOT_GATEWAY_CONNECT_TIMEOUT_MS", std::chrono::seconds(10));
}

std::chrono::milliseconds gateway_dead_peer_timeout() noexcept {
    return from_environment("PIPESLOT_GATEWAY_DEAD_PEER_MS", std::chrono::seconds(10));
}

std::error_code open_remote_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                                 OpenedChannel& out) {
    return ask_gateway(name, options, wait, Ask::open, out);
}

std::error_code wait_for_remote_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait) {
    OpenedChannel none;
    const auto ec = ask_gateway(name, options, wait, Ask::wait_only, none);
    return ec == errc::pipe_busy ? make_error_code(errc::timed_out) : ec;
}

std::error_code count_remote_instances(const Name& name, const ClientOptions& options, unsigned& count) {
    OpenedChannel answer;
    count = 0;
    auto ec = ask_gateway(name, options, detail::Deadline(gateway_connect_timeout()), Ask::query, answer);
    if (ec == errc::not_found) return {};  // no instance left
    if (!ec) count = answer.reply.current_instances;
    return ec;
}

}  // namespace pipeslot::posix
