#include "name_client.hpp"

#include "../common/error_map.hpp"
#include "control_link.hpp"
#include "fd.hpp"
#include "name_files.hpp"
#include "runtime_dir.hpp"
#include "test_hooks.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace pipeslot::posix {
namespace {

// While another server process takes over from a broker that died, the name's
// socket refuses connections, or closes them unanswered, for a moment: a
// client keeps trying this long (or its whole wait, if longer).
constexpr auto takeover_patience = std::chrono::seconds(2);
// A broker answers at once or when the wait ends; past this, it is taken for hung.
constexpr std::int64_t answer_grace_ms = 5000;

// Returns what was set, in µs (0: none, or refused).
std::int64_t set_timeout(int fd, int option, std::int64_t ms) noexcept {
    timeval tv{};  // zero: none
    if (ms > 0) {
        tv.tv_sec = static_cast<time_t>(ms / 1000);
        tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    }
    return ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) == 0 ? std::max<std::int64_t>(ms, 0) * 1000 : 0;
}

enum class Step { done, retry };

// What a client asks the broker: an instance, to hear once one is free
// (WaitNamedPipe), or how many there are.
enum class Ask { open, wait_only, query };

// One attempt: connect, ask, read the answer.
Step attempt(const BrokerAddress& address, const ClientOptions& options, const detail::Deadline& wait, Ask ask,
             const GatewayCall* gateway, OpenedChannel& out, std::error_code& ec) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ec = last_error();  // EMFILE: resource_exhausted, not "no such pipe"
        return Step::done;
    }
    const auto fail = [&](std::error_code why, Step step) {
        ::close(fd);
        ec = why;
        return step;
    };
    // A full backlog makes connect wait for room; never longer than this.
    const auto send_timeout_us =
        set_timeout(fd, SO_SNDTIMEO, wait.is_forever() ? answer_grace_ms : std::max<std::int64_t>(wait.remaining_ms(), 1));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto path = socket_address(address.dir_fd, address.dir_path, address.socket_file).path;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        const int error = errno;
        if (error == ENOENT || error == ENOTDIR) return fail(errc::not_found, Step::done);
        if (error == ECONNREFUSED) return fail(errc::not_found, Step::retry);  // no broker, or one taking over
        if (error == EAGAIN || error == EINTR) return fail(errc::pipe_busy, Step::retry);
        if (error == EACCES && !address.own) return fail(errc::not_found, Step::done);
        return fail(detail::error_from_errno(error), Step::done);
    }
    test_stop_point("client-connected");
    uid_t uid;
    pid_t pid;
    // Only the pipe's owner can be listening there (checked, not assumed).
    if (!peer_credentials(fd, uid, pid) || uid != address.owner) return fail(errc::not_found, Step::done);

    auto request = detail::open_request_for(options, wait, ask == Ask::wait_only, ask == Ask::query);
    request.remote = gateway != nullptr;
    if (gateway) {
        request.remote_user = gateway->client_user;
        request.hand_off = gateway->hand_off;
        request.remote_computer = gateway->client_computer;
    }
    const auto frame = detail::encode_open(request);
    if (::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
        return fail(errc::not_found, Step::retry);  // the broker went away
    test_stop_point("client-sent-open");

    const bool bounded = !wait.is_forever() && !options.use_server_default_wait;
    const auto receive_timeout_us =  // a new socket has none
        bounded ? set_timeout(fd, SO_RCVTIMEO, wait.remaining_ms() + answer_grace_ms) : 0;
    // The answer: one recv for the usual whole of it (a version 2 reply), then
    // what its header says is missing (a later version may send a longer one);
    // never past it, for what follows is the channel's.
    std::byte reply[detail::frame_header_size + detail::max_connect_payload];
    std::size_t have = 0, want = detail::frame_header_size + detail::open_reply_size;
    std::optional<detail::FrameHeader> header;
    Fd page;  // the flow page comes with the reply's first byte
    while (have < want) {
        if (gateway) {  // the answer may be long in coming: the gateway's client may go, or the gateway stop
            pollfd p[3] = {{fd, POLLIN, 0}, {gateway->stop_fd, POLLIN, 0}, {gateway->client_fd, POLLRDHUP, 0}};
            const int ready = ::poll(p, 3, bounded ? static_cast<int>(wait.remaining_ms() + answer_grace_ms) : -1);
            if (ready == 0) return fail(errc::pipe_busy, Step::done);  // no answer
            if (ready > 0 && (p[1].revents || p[2].revents)) return fail(errc::cancelled, Step::done);
        }
        const ssize_t n = receive_with_fd(fd, std::span(reply + have, want - have), page);
        if (n > 0) have += static_cast<std::size_t>(n);
        else if (n == 0 || errno == ECONNRESET) return fail(errc::not_found, Step::retry);  // the broker went away
        else if (errno == EAGAIN || errno == EWOULDBLOCK) return fail(errc::pipe_busy, Step::done);  // no answer
        else if (errno != EINTR) return fail(last_error(), Step::done);
        if (!header && have >= detail::frame_header_size) {
            header = detail::decode_header(
                std::span<const std::byte, detail::frame_header_size>(reply, detail::frame_header_size));
            if (!header || header->kind != detail::FrameKind::open_reply || header->length < detail::open_reply_size)
                return fail(errc::protocol_error, Step::done);
            want = detail::frame_header_size + header->length;
        }
    }
    const auto decoded =
        detail::decode_open_reply(std::span<const std::byte>(reply + detail::frame_header_size, header->length));
    if (!decoded) return fail(errc::protocol_error, Step::done);
    if (decoded->result != errc{}) return fail(decoded->result, Step::done);
    if (ask != Ask::open) {  // an instance is free, or the count; the broker has closed this
        out.reply = *decoded;
        return fail({}, Step::done);
    }
    if (page.get() < 0) out.flow = FlowPage::unshared(false);  // the server could make none (flow_page.hpp)
    else if (auto why = FlowPage::adopt(page.release(), out.flow)) return fail(why, Step::done);
    test_stop_point("client-answered");
    // The channel takes the timeouts over (socket_io.hpp): it sets its own
    // only where they differ, which saves two system calls a connection.
    out.send_timeout_us = send_timeout_us;
    out.receive_timeout_us = receive_timeout_us;
    out.fd = fd;
    out.reply = *decoded;
    ec.clear();
    return Step::done;
}

// The broker's answer to `ask`, retried while a broker takes over.
std::error_code ask_broker(const Name& name, const ClientOptions& options, const detail::Deadline& wait, Ask ask,
                           const GatewayCall* gateway, OpenedChannel& out) {
    BrokerAddress address;
    if (auto ec = locate_broker(name, options.server_user, address))
        return ec == errc::not_found || ec == errc::access_denied ? make_error_code(errc::not_found) : ec;
    const auto patience = std::chrono::steady_clock::now() + takeover_patience;
    auto backoff = std::chrono::milliseconds(1);
    for (;;) {
        std::error_code ec;
        if (attempt(address, options, wait, ask, gateway, out, ec) == Step::done) return ec;
        // pipe_busy (a full backlog) waits only as long as the client's own wait.
        const bool may_wait = ec == errc::pipe_busy ? !wait.expired() : std::chrono::steady_clock::now() < patience;
        // A refused connection with no live server process is a pipe that is gone.
        if (!may_wait || (ec == errc::not_found && address.own && !name_has_live_servers(address))) return ec;
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
    }
}

}  // namespace

std::error_code open_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                          OpenedChannel& out, const GatewayCall* gateway) {
    return ask_broker(name, options, wait, Ask::open, gateway, out);
}

std::error_code wait_for_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                              const GatewayCall* gateway) {
    OpenedChannel none;
    const auto ec = ask_broker(name, options, wait, Ask::wait_only, gateway, none);
    return ec == errc::pipe_busy ? make_error_code(errc::timed_out) : ec;  // a full backlog, or no answer in time
}

std::error_code count_instances(const Name& name, const std::string& server_user, unsigned& count,
                                const GatewayCall* gateway) {
    ClientOptions options;
    options.server_user = server_user;
    OpenedChannel answer;
    count = 0;
    // Answered at once; the grace is for a full backlog.
    auto ec = ask_broker(name, options, detail::Deadline(std::chrono::milliseconds(answer_grace_ms)), Ask::query, gateway, answer);
    if (ec == errc::pipe_busy) ec = errc::timed_out;
    if (ec == errc::not_found) return {};  // no instance left: none (a client whose server has gone)
    if (!ec) count = answer.reply.current_instances;
    return ec;
}

}  // namespace pipeslot::posix
