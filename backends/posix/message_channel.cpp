// Named pipes emulated with UNIX stream sockets: who gets which instance is
// decided by the name's broker (name_node.hpp, broker.hpp), the framing is in
// backends/common; this file is the channel.
#include "../common/access.hpp"
#include "../common/frame_reader.hpp"
#include "../common/framing.hpp"
#include "../common/platform.hpp"
#include "accept_group.hpp"
#include "canceller.hpp"
#include "fd.hpp"
#include "flow_page.hpp"
#include "hand_off.hpp"
#include "gateway_client.hpp"
#include "name_client.hpp"
#include "name_node.hpp"
#include "smb_front.hpp"
#include "socket_io.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace pipeslot::platform {

struct Channel {
    // A server end's share in its name's publication to smbd (smb_front.hpp).
    // First, so it is let go last: after the instance has left the name.
    std::shared_ptr<posix::SmbPublication> smb;
    bool is_server = false;
    PipeType type = PipeType::byte;
    std::atomic<ReadMode> read_mode{ReadMode::byte};
    std::atomic<WaitMode> wait_mode{WaitMode::wait};
    bool can_read = true, can_write = true;
    unsigned max_instances = 0;
    std::size_t in_buffer = 0, out_buffer = 0;

    std::atomic<int> fd{-1};  // the connected socket (blocking: see socket_io.hpp)
    // An event loop's call before `fd` closes (EventSource::notify_before_close); under state_mutex.
    std::function<void()> before_close;
    posix::Canceller canceller;
    std::mutex read_mutex;  // one reader at a time; the frame reader's state
    detail::FrameReader reader;
    posix::SocketTimeout read_timeout{SO_RCVTIMEO};
    std::mutex write_mutex;  // one message on the wire at a time
    posix::SocketTimeout write_timeout{SO_SNDTIMEO};
    // The socket's SO_SNDBUF, asked once per socket (`send_buffer_of`), for PIPE_NOWAIT writes.
    int send_buffer_of = -1, send_buffer = 0;
    bool write_shut = false;
    // The buffer quotas' counters, shared with the peer (flow_page.hpp); set
    // with the socket. Replaced only with both I/O locks and flow_mutex held,
    // which a waiting writer and cancel() take for a reference of their own.
    std::shared_ptr<posix::FlowPage> flow;
    std::mutex flow_mutex;

    // The server's end: listening (for its first client, or again after
    // accept()), connected, or disconnected (and not listening).
    enum class State { listening, connected, disconnected };
    std::atomic<State> state{State::connected};
    bool ever_connected = false;
    std::mutex state_mutex;  // accept and disconnect
    posix::InstanceRegistration registration;
    std::string remote_user;  // the client's identity when a gateway brought it (else its uid)
    std::string remote_computer;  // where it connected from; empty for a local client
    // A gateway's network connection, served directly (hand_off.hpp): no
    // peer credentials, and its close lingers. Set with the socket.
    std::shared_ptr<posix::HandedConnections::Lease> network;
    std::atomic<bool> over_network{false};  // network is set (readable without the I/O locks)
    // This end disconnected a network client while calls of its own were
    // blocked on it: they were woken by a cancel, which they report as the
    // hang-up it stands for.
    std::atomic<bool> hung_up{false};
    // The client's end: what the broker said of the server.
    std::int64_t server_pid = -1;
    std::string server_uid;
    // Whose broker (or gateway) to ask for the name's current instances.
    std::optional<PipeName> name;
    std::string server_user;
    std::uint16_t gateway_port = 0;
};

void ChannelDeleter::operator()(Channel* c) const noexcept {
    if (!c) return;
    if (c->flow) c->flow->stop_reading();  // a flush at the other end has its answer at once
    if (c->fd >= 0) {
        if (c->before_close) c->before_close();
        posix::close_client({c->fd, nullptr, {}, std::move(c->network)});
    }
    delete c;  // a server's registration leaves the name
}

namespace {

class SocketSource final : public detail::ByteSource {
public:
    SocketSource(Channel& c, std::uint64_t ticket) : c_(c), ticket_(ticket) {}
    std::size_t pull(std::span<std::byte> into, const Deadline& deadline, std::error_code& ec) override {
        return posix::receive_some({c_.fd, c_.canceller, ticket_, c_.read_timeout}, into, deadline, ec);
    }

private:
    Channel& c_;
    std::uint64_t ticket_;
};

// With state_mutex held: takes the client the broker handed to this
// instance, if one came. It was connected from the moment the broker chose
// this instance (Windows: at the client's CreateFile).
bool take_client_locked(Channel& c) {
    posix::HandedClient client;
    if (!c.registration.take_client(client)) return false;
    client.flow->set_quota(c.out_buffer);  // the client reads with the out size
    std::scoped_lock io(c.read_mutex, c.write_mutex, c.flow_mutex);
    // Forgotten before the socket is published, so no call on it trusts what
    // was set on the last one (its timeout would be the kernel's default,
    // which a signal cannot end).
    c.read_timeout.forget();
    c.write_timeout.forget();
    c.reader.reset();
    c.flow = std::move(client.flow);
    c.remote_user = std::move(client.remote_user);
    c.remote_computer = std::move(client.remote_computer);
    c.network = std::move(client.network);
    c.over_network = c.network != nullptr;
    c.hung_up = false;
    c.write_shut = false;
    c.fd = client.fd;  // blocking (socket_io.hpp)
    c.ever_connected = true;
    c.state = Channel::State::connected;
    return true;
}

// The error for I/O on a server end without a client, as Windows has it.
std::error_code no_client_error(const Channel& c) {
    return c.state == Channel::State::listening ? make_error_code(errc::pipe_listening)
                                                : make_error_code(errc::not_connected);
}

// A server's read or write needs a client; one may have been handed over since.
bool ensure_connected(Channel& c, std::error_code& ec) {
    if (!c.is_server || c.state == Channel::State::connected) return true;
    if (c.state == Channel::State::listening) {
        std::unique_lock lock(c.state_mutex, std::try_to_lock);
        if (lock.owns_lock() && (c.state == Channel::State::connected || take_client_locked(c))) return true;
    }
    ec = no_client_error(c);
    return false;
}

// The same for a peek or a transact, which Windows refuses on a server end
// without a client as ERROR_BAD_PIPE (reads and writes: listening or not connected).
bool ensure_connected_for_state(Channel& c, std::error_code& ec) {
    if (ensure_connected(c, ec)) return true;
    ec = errc::bad_pipe;
    return false;
}

// The client of a connected instance has closed its end (what it sent may still be unread).
bool client_has_closed(int fd) {
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

// A client end whose server has disconnected it (the marker seen, now or by a read).
bool disconnected_client(Channel& c, std::uint64_t ticket) {
    if (c.is_server) return false;
    std::unique_lock lock(c.read_mutex, std::try_to_lock);
    if (!lock.owns_lock()) return false;  // a receive under way will see it
    SocketSource source(c, ticket);
    std::error_code ec;
    c.reader.peek({}, ReadMode::byte, c.type, source, ec);
    return ec == errc::not_connected;
}

// After EPIPE on a write: a server that disconnected us left a marker that
// says so; else the other end has closed. Windows: ERROR_NO_DATA ("the pipe
// is being closed") for a write that finds it closed, ERROR_BROKEN_PIPE for
// one under way when it closed (`under_way`: part of it had gone).
std::error_code write_after_peer_left(Channel& c, std::uint64_t ticket, bool under_way) {
    if (disconnected_client(c, ticket)) return errc::not_connected;
    return under_way ? errc::broken_pipe : errc::pipe_closing;
}

bool same_host_name(const std::string& a, const char* b) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    std::size_t i = 0;
    for (; i < a.size() && b[i]; ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return i == a.size() && !b[i] && i > 0;
}

std::unique_ptr<Channel> new_channel(bool server, PipeType type, ReadMode mode) {
    auto c = std::make_unique<Channel>();
    c->is_server = server;
    c->type = type;
    c->read_mode = mode;
    return c;
}

}  // namespace

std::error_code create_instance(const PipeName& name, const ServerOptions& options, ChannelPtr& out) {
    auto c = new_channel(true, options.type, options.read_mode);
    detail::InstanceParams params;
    params.type = options.type;
    params.access = options.access;
    params.max_instances = options.max_instances;
    params.default_wait_ms = options.default_wait.is_forever() ? -1 : options.default_wait.value().count();
    params.first_instance = options.first_instance;
    params.reject_remote = options.reject_remote_clients;
    params.allow_other_users = options.allow_other_users;
    params.in_buffer = std::min<std::uint64_t>(options.in_buffer_size, detail::max_buffer_quota);
    params.out_buffer = std::min<std::uint64_t>(options.out_buffer_size, detail::max_buffer_quota);
    if (auto ec = posix::InstanceRegistration::create(name, params, c->registration)) return ec;
    if (options.publish_smb)
        if (auto ec = posix::publish_for_smb(name, options.smb_directory, c->smb)) return ec;
    c->can_read = options.access != PipeAccess::outbound;
    c->can_write = options.access != PipeAccess::inbound;
    c->max_instances = c->registration.pipe().max_instances;
    c->in_buffer = options.in_buffer_size;
    c->out_buffer = options.out_buffer_size;
    c->wait_mode = options.wait_mode;
    c->state = Channel::State::listening;
    c->name = name;
    out.reset(c.release());
    return {};
}

// \\THIS-HOST\pipe\NAME is \\.\pipe\NAME here: no network on the way.
PipeName this_host_as_local(const PipeName& name) {
    if (name.is_local()) return name;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || !same_host_name(name.server(), host)) return name;
    return PipeName::parse("\\\\.\\pipe\\" + name.name());
}

std::error_code wait_for_instance(const PipeName& given, const ClientOptions& options, const Deadline& wait) {
    const auto name = this_host_as_local(given);
    return name.is_local() ? posix::wait_for_pipe(name, options, wait) : posix::wait_for_remote_pipe(name, options, wait);
}

namespace {

// The client's end of what an open returned.
ChannelPtr client_channel(const PipeName& name, const ClientOptions& options, posix::OpenedChannel& opened) {
    const auto& reply = opened.reply;
    const auto mode = options.read_mode.value_or(reply.type == PipeType::message ? ReadMode::message : ReadMode::byte);
    auto c = new_channel(false, reply.type, mode);
    c->fd = opened.fd;
    c->write_timeout.adopt(opened.send_timeout_us);
    c->read_timeout.adopt(opened.receive_timeout_us);
    c->can_read = detail::reads(options.access);
    c->can_write = detail::writes(options.access);
    c->max_instances = reply.max_instances;
    c->in_buffer = reply.in_buffer;
    c->out_buffer = reply.out_buffer;
    c->flow = std::move(opened.flow);
    c->flow->set_quota(reply.in_buffer);  // the server reads with the in size
    c->server_pid = reply.server_pid;
    c->server_uid = std::to_string(reply.server_uid);
    c->name = name;
    c->server_user = options.server_user;
    c->gateway_port = options.gateway_port;
    if (!name.is_local()) c->reader.deliver_before_disconnect();
    return ChannelPtr(c.release());
}

}  // namespace

std::error_code open_channel(const PipeName& given, const ClientOptions& options, const Deadline& wait,
                             ChannelPtr& out) {
    const auto name = this_host_as_local(given);
    posix::OpenedChannel opened;
    if (auto ec = name.is_local() ? posix::open_pipe(name, options, wait, opened)
                                  : posix::open_remote_pipe(name, options, wait, opened))
        return ec;
    out = client_channel(name, options, opened);
    return {};
}

std::error_code accept(Channel& c, const Deadline& deadline) {
    const auto ticket = c.canceller.ticket();
    std::lock_guard lock(c.state_mutex);
    if (c.state == Channel::State::listening && take_client_locked(c)) {
        // It came before this call (ConnectNamedPipe: ERROR_PIPE_CONNECTED, or
        // ERROR_NO_DATA if it has closed again).
    } else if (c.state == Channel::State::disconnected) {
        c.registration.listen_again();
        c.state = Channel::State::listening;
    }
    if (c.state == Channel::State::connected)
        return client_has_closed(c.fd) ? make_error_code(errc::no_data) : make_error_code(errc::already_connected);
    if (c.wait_mode == WaitMode::nowait) return errc::pipe_listening;  // ConnectNamedPipe on a PIPE_NOWAIT end
    for (;;) {
        std::error_code ec;
        const int doorbell = c.registration.doorbell();
        if (doorbell < 0) return errc::resource_exhausted;
        if (!c.canceller.wait(doorbell, POLLIN, ticket, deadline, ec)) return ec;
        if (take_client_locked(c)) return {};
    }
}

std::error_code disconnect(Channel& c) {
    std::lock_guard lock(c.state_mutex);
    if (c.state == Channel::State::listening && !take_client_locked(c)) return errc::pipe_listening;
    if (c.state != Channel::State::connected) return errc::not_connected;
    const int fd = c.fd;
    c.state = Channel::State::disconnected;  // a flush waiting on this client is told not_connected
    c.flow->stop_reading();  // the client's waiting writers are told at once
    c.flow->detach();        // and this end's
    // Tell the client before going: it discards what it has not read and
    // reports not_connected (best effort: a full buffer, or a send of ours
    // under way, which the marker must not cut in two, leaves it broken_pipe).
    // Not a client that has closed its end, as a receive here has seen.
    bool client_gone = false;
    if (std::unique_lock reading(c.read_mutex, std::try_to_lock); reading.owns_lock())
        client_gone = c.reader.peer_has_gone();
    if (std::unique_lock writing(c.write_mutex, std::try_to_lock); !client_gone && writing.owns_lock()) {
        const auto marker = detail::encode_header({detail::FrameKind::disconnect, 0});
        (void)::send(fd, marker.data(), marker.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (c.network) {
        // A network client: the socket must not take back what is on its way
        // to the client (close_client lingers), so this end's own blocked
        // calls are woken by a cancel instead.
        c.hung_up = true;
        c.canceller.cancel();
    } else {
        ::shutdown(fd, SHUT_RDWR);  // wakes this channel's own blocked calls
    }
    std::scoped_lock io(c.read_mutex, c.write_mutex, c.flow_mutex);
    if (c.before_close) std::exchange(c.before_close, nullptr)();
    posix::close_client({fd, nullptr, {}, std::move(c.network)});
    c.over_network = false;
    c.fd = -1;
    c.reader.reset();
    c.flow.reset();
    return {};
}


namespace {
// `mode`: the end's wait mode, or wait for a transact (which PIPE_NOWAIT does not change).
// A network client that breaks the framing is cut off and the gateway logs
// it, as when the gateway relays (its channel, here, reports protocol_error).
void cut_off_if_malformed(Channel& c, const std::error_code& ec) {
    if (ec != errc::protocol_error || !c.network) return;
    c.network->ended("the client sent malformed frames");
    ::shutdown(c.fd, SHUT_RDWR);
}

std::size_t receive_in(Channel& c, std::span<std::byte> buffer, const Deadline& deadline, WaitMode mode,
                       std::error_code& ec) {
    const auto ticket = c.canceller.ticket();
    if (!c.can_read) {
        ec = errc::access_denied;
        return 0;
    }
    if (!ensure_connected(c, ec)) return 0;
    std::lock_guard lock(c.read_mutex);
    if (c.fd < 0) {
        ec = errc::not_connected;
        return 0;
    }
    SocketSource source(c, ticket);
    if (mode == WaitMode::nowait) {
        // PIPE_NOWAIT: what is there, at once; nothing is ERROR_NO_DATA. A
        // message still arriving (one larger than the socket's buffer) comes
        // in parts, each with more_data, where Windows would have it whole.
        const auto n = c.reader.receive(buffer, c.read_mode, source, Deadline(Timeout::none()), ec);
        c.flow->took(n);
        cut_off_if_malformed(c, ec);
        if (ec == errc::timed_out) ec = n == 0 ? errc::no_data : errc::more_data;
        return n;
    }
    c.flow->reading(buffer.size());  // a nowait writer at the other end may fill it at once, as Windows' would
    const auto n = c.reader.receive(buffer, c.read_mode, source, deadline, ec);
    c.flow->reading(0);
    c.flow->took(n);
    cut_off_if_malformed(c, ec);
    if (ec == errc::cancelled && c.hung_up) ec = errc::broken_pipe;  // as a local socket's shutdown reads (disconnect)
    return n;
}
}  // namespace

std::size_t receive(Channel& c, std::span<std::byte> buffer, const Deadline& deadline, std::error_code& ec) {
    return receive_in(c, buffer, deadline, c.wait_mode, ec);
}

namespace {

constexpr std::size_t max_parts_per_call = 1024;  // UIO_MAXIOV
// With a deadline, one call carries at most this much: the kernel gives each
// of a call's waits for buffer space the socket's whole timeout, so a long
// call into a slowly drained socket would run far past the deadline.
constexpr std::size_t max_bytes_per_timed_call = 32 * 1024;

// Sends some of `parts` (at least one byte; not empty), at most `max_bytes` of them.
std::size_t send_part(const posix::SocketCall& call, std::span<iovec> parts, std::size_t max_bytes,
                      const Deadline& deadline, std::error_code& ec) {
    std::size_t count = 0, bytes = 0;
    while (count < parts.size() && count < max_parts_per_call && bytes < max_bytes) bytes += parts[count++].iov_len;
    iovec& last = parts[count - 1];  // it may go past max_bytes: only its start goes in this call
    const std::size_t over = bytes > max_bytes ? bytes - max_bytes : 0;
    last.iov_len -= over;
    const auto n = posix::send_some(call, parts.first(count), deadline, ec);
    last.iov_len += over;
    return n;
}

// With write_mutex held: sends the frames laid out in `parts` (advanced in
// place as they go); `ends` holds the byte offset at which each frame ends.
// Returns how many frames went whole.
std::size_t write_frames(Channel& c, std::uint64_t ticket, std::span<iovec> parts, std::span<const std::size_t> ends,
                         const Deadline& deadline, std::error_code& ec) {
    const int fd = c.fd;
    if (fd < 0 || c.write_shut) {
        ec = fd < 0 ? errc::not_connected : errc::broken_pipe;
        return 0;
    }
    const std::size_t max_bytes = deadline.is_forever() ? SIZE_MAX : max_bytes_per_timed_call;
    std::size_t sent = 0, first = 0;
    while (first < parts.size() && !ec) {
        std::size_t left = send_part({fd, c.canceller, ticket, c.write_timeout}, parts.subspan(first), max_bytes,
                                     deadline, ec);
        sent += left;
        while (first < parts.size() && left >= parts[first].iov_len) left -= parts[first++].iov_len;
        if (left > 0) {
            parts[first].iov_base = static_cast<std::byte*>(parts[first].iov_base) + left;
            parts[first].iov_len -= left;
        }
    }
    const auto whole = static_cast<std::size_t>(std::upper_bound(ends.begin(), ends.end(), sent) - ends.begin());
    const bool half_sent = sent != (whole == 0 ? 0 : ends[whole - 1]);
    if (ec == errc::broken_pipe) {
        ec = write_after_peer_left(c, ticket, half_sent);
    } else if (ec && half_sent) {
        // Half a frame is on the wire and cannot be taken back: end the
        // sending side so the peer never takes it for a whole message.
        ::shutdown(fd, SHUT_WR);
        c.write_shut = true;
    }
    return whole;
}

// A write needs these before the message is laid out.
bool may_write(Channel& c, std::error_code& ec) {
    if (!c.can_write) {
        ec = errc::access_denied;
        return false;
    }
    return ensure_connected(c, ec);
}

}  // namespace

namespace {

// The peer's socket is closed (a process that died has said nothing on the page).
bool peer_hung_up(int fd) {
    pollfd p{fd, 0, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

// Whether the socket takes `bytes` in `messages` frames now without waiting
// for room (a PIPE_NOWAIT write; a quota larger than the socket's buffer
// would otherwise let one block): what is queued, plus a generous estimate
// of what the kernel counts for them, within the send buffer.
// With write_mutex held. When the peer has taken everything sent, nothing of
// ours is queued: no need to ask the socket (a request's reply, the common case).
bool socket_takes_now(Channel& c, std::size_t bytes, std::size_t messages) {
    const int fd = c.fd;
    if (c.send_buffer_of != fd) {
        socklen_t size = sizeof c.send_buffer;
        if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &c.send_buffer, &size) < 0) return false;
        c.send_buffer_of = fd;
    }
    const std::size_t counted = bytes + 4096 * (messages + bytes / 32768);  // each buffer's own overhead, rounded up
    int queued = 0;
    if (!c.flow->all_taken_by_peer() && ::ioctl(fd, SIOCOUTQ, &queued) < 0) return false;
    return static_cast<std::size_t>(queued) + counted < static_cast<std::size_t>(c.send_buffer);
}

// Waits until the peer has taken `target` bytes of what this end sent (the
// write fits in the quota, or a flush is done), on the shared page.
std::error_code wait_for_credit(Channel& c, const posix::FlowPage& flow, std::uint64_t target, std::uint64_t ticket,
                                const Deadline& deadline) {
    // Slices, so that a peer that died is noticed (its socket hangs up, the page stays silent).
    constexpr auto slice = std::chrono::milliseconds(20);
    for (bool first = true;; first = false) {
        const auto seen = flow.changes();  // before the checks: a wake after them ends the sleep
        if (flow.taken_by_peer(target)) return {};
        if (flow.detached() || (c.is_server && c.state != Channel::State::connected)) return errc::not_connected;
        if (flow.peer_stopped_reading() || (!first && peer_hung_up(c.fd)))
            return disconnected_client(c, ticket) ? errc::not_connected : errc::broken_pipe;
        if (c.canceller.cancelled_since(ticket)) return errc::cancelled;
        if (deadline.expired()) return errc::timed_out;
        flow.wait(seen, target, std::min(deadline.time_point(), std::chrono::steady_clock::now() + slice));
    }
}

// With write_mutex held: sends messages laid out in `parts` (`ends`: where
// each frame ends; `payload_ends`: the message bytes up to the end of each),
// counting them against the quota. Returns how many went whole; `wait_for`
// is what the peer must have taken before the write completes (0: nothing).
std::size_t write_messages_locked(Channel& c, std::uint64_t ticket, std::span<iovec> parts,
                                  std::span<const std::size_t> ends, std::span<const std::size_t> payload_ends,
                                  const Deadline& deadline, WaitMode mode, std::uint64_t& wait_for, std::error_code& ec) {
    wait_for = 0;
    if (!c.flow) return write_frames(c, ticket, parts, ends, deadline, ec);  // no client: it says so
    if (mode == WaitMode::nowait) {
        // PIPE_NOWAIT: the messages that fit the quota now (and a read
        // waiting at the other end), in order; the first that does not is
        // not written (Windows: success, 0 written).
        const auto at_once = c.flow->peer_read_waiting();
        std::size_t fit = 0;
        while (fit < payload_ends.size() && c.flow->fits(payload_ends[fit], at_once)) ++fit;
        while (fit > 0 && c.fd >= 0 && !socket_takes_now(c, ends[fit - 1], fit)) --fit;
        if (fit == 0) return 0;
        std::size_t part_count = 0;
        for (std::size_t bytes = 0; part_count < parts.size() && bytes < ends[fit - 1];) bytes += parts[part_count++].iov_len;
        parts = parts.first(part_count);
        ends = ends.first(fit);
        payload_ends = payload_ends.first(fit);
    }
    const std::size_t payload = payload_ends.empty() ? 0 : payload_ends.back();
    wait_for = c.flow->will_send(payload);
    if (mode == WaitMode::nowait) wait_for = 0;  // it fit (a waiting read takes the rest)
    const auto whole = write_frames(c, ticket, parts, ends, deadline, ec);
    if (whole < payload_ends.size()) {
        c.flow->unsent(payload - (whole == 0 ? 0 : payload_ends[whole - 1]));
        wait_for = 0;  // the write failed: nothing to wait for
    }
    return whole;
}

}  // namespace

namespace {
std::size_t send_in(Channel& c, std::span<const std::byte> data, const Deadline& deadline, WaitMode mode,
                    std::error_code& ec) {
    const auto ticket = c.canceller.ticket();
    if (!may_write(c, ec)) return 0;
    if (data.empty() && c.type == PipeType::byte) return 0;  // a byte stream has nothing to send
    if (mode == WaitMode::nowait && c.type == PipeType::byte) {
        // PIPE_NOWAIT on a byte pipe: what does not fit, a read waiting at the
        // other end still takes its part of (Windows: that much written).
        // The waiting read's room, read once: a read that begins to wait
        // between two looks must not turn "does not fit" into a cut write.
        std::lock_guard lock(c.write_mutex);
        const std::uint64_t at_once = c.flow ? c.flow->peer_read_waiting() : 0;
        if (c.flow && !c.flow->fits(data.size(), at_once)) data = data.first(std::min<std::size_t>(data.size(), at_once));
        if (data.empty()) return 0;
    }
    auto header = detail::encode_header({detail::FrameKind::message, static_cast<std::uint32_t>(data.size())});
    iovec parts[2] = {{header.data(), header.size()}, {const_cast<std::byte*>(data.data()), data.size()}};
    const std::size_t end = header.size() + data.size();
    const std::size_t payload_end = data.size();
    std::uint64_t wait_for;
    std::size_t whole;
    std::shared_ptr<posix::FlowPage> flow;
    {
        std::lock_guard lock(c.write_mutex);
        whole = write_messages_locked(c, ticket, parts, std::span(&end, 1), std::span(&payload_end, 1), deadline, mode,
                                      wait_for, ec);
        if (wait_for) flow = c.flow;
    }
    if (whole == 1 && wait_for) ec = wait_for_credit(c, *flow, wait_for, ticket, deadline);
    // Cut short while waiting for the quota, the message has still gone whole.
    return whole == 1 ? data.size() : 0;
}
}  // namespace

std::size_t send(Channel& c, std::span<const std::byte> data, const Deadline& deadline, std::error_code& ec) {
    return send_in(c, data, deadline, c.wait_mode, ec);
}

std::size_t send_waiting(Channel& c, std::span<const std::byte> data, const Deadline& deadline, std::error_code& ec) {
    return send_in(c, data, deadline, WaitMode::wait, ec);
}

std::size_t send_messages(Channel& c, std::span<const std::span<const std::byte>> messages, const Deadline& deadline,
                          std::error_code& ec) {
    const auto ticket = c.canceller.ticket();
    if (!may_write(c, ec)) return 0;
    std::vector<std::array<std::byte, detail::frame_header_size>> headers(messages.size());
    std::vector<iovec> parts;
    parts.reserve(2 * messages.size());
    std::vector<std::size_t> ends, payload_ends;
    ends.reserve(messages.size());
    payload_ends.reserve(messages.size());
    std::size_t end = 0, payload = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto m = messages[i];
        if (!m.empty() || c.type == PipeType::message) {  // a byte stream has nothing to send for an empty one
            headers[i] = detail::encode_header({detail::FrameKind::message, static_cast<std::uint32_t>(m.size())});
            parts.push_back({headers[i].data(), headers[i].size()});
            parts.push_back({const_cast<std::byte*>(m.data()), m.size()});
            end += headers[i].size() + m.size();
            payload += m.size();
        }
        ends.push_back(end);
        payload_ends.push_back(payload);
    }
    if (parts.empty()) return messages.size();  // only empty ones on a byte pipe: nothing to send, as send() says
    std::uint64_t wait_for;
    std::size_t whole;
    std::shared_ptr<posix::FlowPage> flow;
    {
        std::lock_guard lock(c.write_mutex);
        whole = write_messages_locked(c, ticket, parts, ends, payload_ends, deadline, c.wait_mode, wait_for, ec);
        if (wait_for) flow = c.flow;
    }
    if (wait_for) ec = wait_for_credit(c, *flow, wait_for, ticket, deadline);
    return whole;
}

std::error_code flush(Channel& c) {
    const auto ticket = c.canceller.ticket();
    // Windows: a server end without a client has nothing to flush; a client
    // whose server has disconnected it is told so.
    if (c.is_server && c.state != Channel::State::connected) {
        std::error_code ec;
        if (!ensure_connected(c, ec)) return {};
    }
    if (!c.is_server && disconnected_client(c, ticket)) return errc::not_connected;
    std::shared_ptr<posix::FlowPage> flow;
    std::uint64_t target = 0;
    {
        std::lock_guard lock(c.write_mutex);
        if (c.fd < 0) return c.is_server ? std::error_code{} : make_error_code(errc::not_connected);
        flow = c.flow;
        target = flow->flush_target();
    }
    return target ? wait_for_credit(c, *flow, target, ticket, Deadline(Timeout::forever())) : std::error_code{};
}

PeekResult peek(Channel& c, std::span<std::byte> buffer, std::error_code& ec) {
    if (!c.can_read) {
        ec = errc::access_denied;
        return {};
    }
    if (!ensure_connected_for_state(c, ec)) return {};
    // A receive blocked in another thread holds the reader: nothing is there to peek at.
    std::unique_lock lock(c.read_mutex, std::try_to_lock);
    if (!lock.owns_lock() || c.fd < 0) return {};
    SocketSource source(c, c.canceller.ticket());
    return c.reader.peek(buffer, c.read_mode, c.type, source, ec);
}

std::size_t transact(Channel& c, std::span<const std::byte> request, std::span<std::byte> reply,
                     const Deadline& deadline, std::error_code& ec) {
    if (c.read_mode != ReadMode::message || !c.can_read || !c.can_write) {
        ec = c.read_mode != ReadMode::message ? errc::bad_pipe : errc::access_denied;
        return 0;
    }
    if (!ensure_connected_for_state(c, ec)) return 0;
    {
        std::unique_lock lock(c.read_mutex, std::try_to_lock);
        SocketSource source(c, c.canceller.ticket());
        if (!lock.owns_lock() || (c.fd >= 0 && c.reader.holds_unread(source))) {
            ec = errc::pipe_busy;  // as TransactNamedPipe: unread data, or a read in progress
            return 0;
        }
    }
    send_in(c, request, deadline, WaitMode::wait, ec);  // TransactNamedPipe waits in either mode
    if (ec) return 0;
    return receive_in(c, reply, deadline, WaitMode::wait, ec);
}

std::error_code set_read_mode(Channel& c, ReadMode mode) {
    if (mode == ReadMode::message && c.type == PipeType::byte) return errc::invalid_argument;
    std::lock_guard lock(c.read_mutex);
    c.read_mode = mode;
    return {};
}

std::error_code set_wait_mode(Channel& c, WaitMode mode) {
    c.wait_mode = mode;
    return {};
}

ChannelInfo info(const Channel& c, std::error_code& ec) {
    ec.clear();
    ChannelInfo i{c.type, c.read_mode, c.max_instances, c.in_buffer, c.out_buffer, c.is_server};
    i.wait_mode = c.wait_mode;
    if (c.name && c.name->is_local()) {
        ec = posix::count_instances(*c.name, c.server_user, i.current_instances);  // the broker counts
    } else if (c.name) {
        ClientOptions options;
        options.gateway_port = c.gateway_port;
        ec = posix::count_remote_instances(*c.name, options, i.current_instances);  // the gateway asks it
    }
    return ec ? ChannelInfo{} : i;  // as GetNamedPipeHandleState failing
}

void cancel(Channel& c) noexcept {
    c.canceller.cancel();
    std::shared_ptr<posix::FlowPage> flow;
    {
        std::lock_guard lock(c.flow_mutex);
        flow = c.flow;
    }
    if (flow) flow->wake();  // a writer waiting for the quota or a flush
}

namespace {
std::error_code peer_credentials(Channel& c, ucred& cred) {
    if (!c.is_server) return errc::invalid_argument;
    std::error_code ec;
    if (!ensure_connected(c, ec)) return errc::not_connected;
    if (c.over_network) {  // the gateway of this process, as it is when it relays
        cred = {::getpid(), ::geteuid(), ::getegid()};
        return {};
    }
    socklen_t size = sizeof cred;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) < 0) return posix::last_error();
    return {};
}

}  // namespace

// Windows: a server end without a client has no client process (ERROR_NOT_FOUND);
// a disconnected client knows neither process (ERROR_PIPE_NOT_CONNECTED).
std::error_code client_process_id(const Channel& c, std::int64_t& pid) {
    auto& channel = const_cast<Channel&>(c);
    if (!c.is_server) {
        if (disconnected_client(channel, c.canceller.ticket())) return errc::not_connected;
        pid = ::getpid();
        return {};
    }
    ucred cred{};
    if (auto ec = peer_credentials(channel, cred)) return ec == errc::not_connected ? make_error_code(errc::not_found) : ec;
    pid = cred.pid;
    return {};
}

// A gateway's client: who it proved to be on the network (docs/gateway.md).
std::error_code client_user(const Channel& c, std::string& user) {
    ucred cred{};
    if (auto ec = peer_credentials(const_cast<Channel&>(c), cred)) return ec;
    user = c.remote_user.empty() ? std::to_string(cred.uid) : c.remote_user;
    return {};
}

EventSource event_source(const Channel& c, ChannelEvent event) noexcept {
    // The socket is readable for a frame, a hang-up or the peer's flush; a
    // client's arrival rings the instance's doorbell.
    EventSource source;
    if (event == ChannelEvent::client_arrived) {
        source.descriptor = c.is_server ? c.registration.doorbell() : -1;
        return source;
    }
    source.descriptor = c.fd.load();
    auto& channel = const_cast<Channel&>(c);
    source.notify_before_close = [&channel](std::function<void()> call) {
        std::lock_guard lock(channel.state_mutex);
        channel.before_close = std::move(call);
    };
    return source;
}

// As Windows: only a client that came over a network has a computer; an
// instance without a client, or with a local one, is ERROR_PIPE_LOCAL.
std::error_code client_computer_name(const Channel& c, std::string& name) {
    auto& channel = const_cast<Channel&>(c);
    std::lock_guard lock(channel.state_mutex);  // a new client's fields are set under it
    if (!c.is_server || c.state != Channel::State::connected || c.remote_computer.empty()) return errc::pipe_local;
    name = c.remote_computer;
    return {};
}

std::error_code server_process_id(const Channel& c, std::int64_t& pid) {
    if (disconnected_client(const_cast<Channel&>(c), c.canceller.ticket())) return errc::not_connected;
    pid = c.is_server ? static_cast<std::int64_t>(::getpid()) : c.server_pid;
    return {};
}

std::error_code server_user(const Channel& c, std::string& user) {
    if (disconnected_client(const_cast<Channel&>(c), c.canceller.ticket())) return errc::not_connected;
    user = c.is_server ? current_user() : c.server_uid;
    return {};
}

std::string current_user() { return std::to_string(::geteuid()); }

}  // namespace pipeslot::platform

namespace pipeslot::posix {

std::error_code open_channel_for(const PipeName& name, const ClientOptions& options, const detail::Deadline& wait,
                                 const GatewayCall& call, platform::ChannelPtr& out) {
    OpenedChannel opened;
    if (auto ec = open_pipe(name, options, wait, opened, &call)) return ec;
    out = platform::client_channel(name, options, opened);
    return {};
}

}  // namespace pipeslot::posix

namespace pipeslot::posix {
int instance_doorbell(const platform::Channel& c) noexcept { return c.is_server ? c.registration.pinned_doorbell() : -1; }
std::error_code join_accept_group(platform::Channel& c, int epoll, std::uint64_t tag) noexcept {
    return c.registration.join_group(epoll, tag);
}
void leave_accept_group(platform::Channel& c, int epoll) noexcept { c.registration.leave_group(epoll); }
void accept_waiting_clients(platform::Channel& c, ClientCatcher& catcher) noexcept {
    c.registration.accept_waiting(catcher);
}
}  // namespace pipeslot::posix
