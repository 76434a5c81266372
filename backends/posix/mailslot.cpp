// Mailslots emulated with a UNIX datagram socket per reader, in the shared
// directory (mailslot names are host-wide, as on Windows), and UDP for the
// other hosts (mailslot_network.cpp).
#include "../common/mailslot_datagram.hpp"
#include "../common/platform.hpp"
#include "canceller.hpp"
#include "fd.hpp"
#include "mailslot_files.hpp"
#include "mailslot_network.hpp"
#include "runtime_dir.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/time.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace pipeslot::platform {

struct MailslotReader {
    std::string folded_name;
    std::string dir;
    int dir_fd = -1, local_fd = -1, udp_fd = -1;
    std::string key;
    posix::MailslotFiles files;
    ino_t socket_inode = 0;
    std::size_t max_message_size = 0;
    std::size_t max_queued_bytes = 0, max_queued_messages = 0;
    posix::Canceller canceller;
    // A thread per reader: it passes on every datagram that reaches this host
    // at once, whoever's socket it landed in, and keeps the local socket's
    // queue short while the caller is not receiving.
    std::thread network;
    int stop_fd = -1;
    std::atomic<std::size_t> dropped{0};
    // Whether the caller reads the socket itself: a receive is under way, or
    // ended a moment ago (steady-clock ns). The reader's thread then leaves the
    // socket alone; otherwise it takes what comes into the queue, so that
    // writers do not wait on the kernel's short queue (net.unix.max_dgram_qlen).
    std::atomic<int> receivers{0};
    std::atomic<std::int64_t> last_receive_ns{0};
    std::atomic<bool> queue_full{false};
    std::mutex mutex;  // all below
    Timeout read_timeout = Timeout::forever();
    std::deque<std::vector<std::byte>> queue;
    std::size_t queued_bytes = 0;
    std::vector<std::byte> scratch;  // as large as the largest datagram the socket can queue
};

struct MailslotWriter {
    bool local = false;
    int fd = -1;
    std::int64_t send_timeout_ms = -1;  // local: what SO_SNDTIMEO is set to (0: none)
    std::size_t max_message_size = 0;  // local: the reader's
    detail::DatagramScope scope = detail::DatagramScope::every_host;
    std::string domain, folded_slot;
    std::vector<sockaddr_in> targets;
};

void MailslotReaderDeleter::operator()(MailslotReader* m) const noexcept {
    if (!m) return;
    if (m->network.joinable()) {
        const std::uint64_t one = 1;
        (void)!::write(m->stop_fd, &one, sizeof one);
        m->network.join();
    }
    if (m->stop_fd >= 0) ::close(m->stop_fd);
    if (m->local_fd >= 0) {
        posix::unlink_if_ours(m->dir_fd, m->key + ".sock", m->socket_inode);
        ::close(m->local_fd);
    }
    if (m->udp_fd >= 0) ::close(m->udp_fd);
    if (m->dir_fd >= 0) posix::release_mailslot_name(m->dir_fd, m->key, m->files);
    if (m->dir_fd >= 0) ::close(m->dir_fd);
    delete m;
}

void MailslotWriterDeleter::operator()(MailslotWriter* w) const noexcept {
    if (!w) return;
    if (w->fd >= 0) ::close(w->fd);
    delete w;
}

namespace {

constexpr std::size_t max_datagram = detail::datagram_header_size + 255 + detail::max_datagram_slot_name +
                                     max_network_mailslot_message;

sockaddr_un unix_address(int dir_fd, const std::string& dir, const std::string& file) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto path = posix::socket_address(dir_fd, dir, file).path;
    std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof addr.sun_path));
    return addr;
}

void enqueue(MailslotReader& m, std::span<const std::byte> message) {
    if (m.max_message_size > 0 && message.size() > m.max_message_size) {
        ++m.dropped;  // from the network: a local writer checks first
        return;
    }
    m.queue.emplace_back(message.begin(), message.end());
    m.queued_bytes += message.size();
}

// Hands a message to the reader of `slot` on this host (this reader
// included). A reader whose queue is full loses it: counted if it is ours.
// Only to a socket with one link, never through a symbolic link: what the
// network sends is never passed to some other socket planted at that name.
void deliver(MailslotReader& m, std::string_view slot, std::span<const std::byte> payload, int via) {
    struct stat st;
    const int socket_file = posix::open_socket_file(m.dir_fd, posix::name_key(NameKind::mailslot, slot) + ".sock", st);
    if (socket_file < 0) return;  // no reader of that name
    const auto addr = posix::socket_file_address(socket_file);
    const ssize_t sent = ::sendto(via, payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ::close(socket_file);
    if (sent < 0 && errno != ECONNREFUSED && errno != ENOENT && slot == m.folded_name) ++m.dropped;
}

// One datagram from the UDP socket, and the address it was sent to.
ssize_t next_network_datagram(int fd, std::span<std::byte> buffer, in_addr& destination) {
    iovec io{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &message, MSG_DONTWAIT | MSG_TRUNC);
    destination.s_addr = htonl(INADDR_BROADCAST);  // unknown: taken as sent to every listener
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); n >= 0 && c; c = CMSG_NXTHDR(&message, c))
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
            destination = reinterpret_cast<const in_pktinfo*>(CMSG_DATA(c))->ipi_addr;
    return n;
}

// Every listener on the port is one of this user's readers. A datagram sent
// to a broadcast address reaches each of them, so each keeps its own; one
// sent to an address of this host reaches one of them, which passes it on
// to the reader it names: each reader gets it once, however it was sent.
void pass_on_network_datagrams(MailslotReader* m, std::vector<std::byte>& datagram, int via) {
    for (;;) {
        in_addr destination;
        const ssize_t n = next_network_datagram(m->udp_fd, datagram, destination);
        if (n < 0) return;
        const auto d = static_cast<std::size_t>(n) <= max_datagram
                           ? detail::decode_datagram(std::span(datagram).first(static_cast<std::size_t>(n)))
                           : std::nullopt;
        if (!d) {
            ++m->dropped;  // malformed, truncated or hostile
            continue;
        }
        const bool for_us = d->slot == m->folded_name;
        const bool in_scope = d->scope != detail::DatagramScope::domain || d->domain == posix::mailslot_network().domain;
        if (!in_scope) continue;
        if (for_us || posix::sent_to_this_host_alone(destination)) deliver(*m, d->slot, d->payload, via);
    }
}

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void drain_local(MailslotReader& m);

// The reader's thread: the network, and the local socket while nobody reads it.
void serve_reader(MailslotReader* m) {
    constexpr std::int64_t aside_ns = 100'000'000;  // how long after a receive the socket stays the caller's
    const int via = m->udp_fd >= 0 ? ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
    std::vector<std::byte> datagram(m->udp_fd >= 0 ? max_datagram + 1 : 0);
    for (;;) {
        const bool aside = m->receivers > 0 || steady_ns() - m->last_receive_ns < aside_ns || m->queue_full;
        pollfd fds[3] = {{m->stop_fd, POLLIN, 0}, {m->udp_fd, POLLIN, 0}, {aside ? -1 : m->local_fd, POLLIN, 0}};
        if (::poll(fds, 3, aside ? static_cast<int>(aside_ns / 1'000'000) : -1) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        if (fds[1].revents) pass_on_network_datagrams(m, datagram, via);
        if (fds[2].revents) {
            std::lock_guard lock(m->mutex);
            if (m->receivers == 0) drain_local(*m);
        }
    }
    if (via >= 0) ::close(via);
}

// One datagram from the local socket into the scratch buffer: its size, or -1
// if none. One larger than the scratch buffer was cut short: it is counted as
// dropped (a writer with a send buffer raised above our receive buffer).
ssize_t next_datagram(MailslotReader& m) {
    for (;;) {
        const ssize_t size = ::recv(m.local_fd, m.scratch.data(), m.scratch.size(), MSG_DONTWAIT | MSG_TRUNC);
        if (size < 0 || static_cast<std::size_t>(size) <= m.scratch.size()) return size;
        ++m.dropped;
    }
}

void drain_local(MailslotReader& m) {
    while (m.queued_bytes < m.max_queued_bytes && m.queue.size() < m.max_queued_messages) {
        const ssize_t size = next_datagram(m);
        if (size < 0) return;
        enqueue(m, std::span(m.scratch).first(static_cast<std::size_t>(size)));
    }
    m.queue_full = true;  // the rest waits in the kernel until a receive makes room
}

// With the mutex held: moves what has arrived into the queue, in order.
void drain(MailslotReader& m) { drain_local(m); }

}  // namespace

std::error_code create_mailslot(const MailslotName& name, const MailslotOptions& options, MailslotReaderPtr& out) {
    auto m = MailslotReaderPtr(new MailslotReader);
    if (auto ec = posix::runtime_directory(posix::Scope::shared, m->dir)) return ec;
    m->dir_fd = ::open(m->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (m->dir_fd < 0) return posix::last_error();
    m->folded_name = name.folded_name();
    m->key = posix::name_key(name);
    m->max_message_size = options.max_message_size;
    m->read_timeout = options.read_timeout;
    m->max_queued_bytes = options.max_queued_bytes;
    m->max_queued_messages = options.max_queued_messages;
    std::error_code ec;
    if (auto claimed = posix::claim_mailslot_name(m->dir_fd, m->key, options.max_message_size, m->files)) return claimed;

    // We hold the name: a socket file of ours left there is a dead reader's;
    // anyone else's is not ours to remove.
    const std::string socket_file = m->key + ".sock";
    struct stat st;
    if (::fstatat(m->dir_fd, socket_file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1) return errc::name_in_use;
        if (::unlinkat(m->dir_fd, socket_file.c_str(), 0) < 0) return posix::last_error();
    }
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return posix::last_error();
    const auto addr = unix_address(m->dir_fd, m->dir, socket_file);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
        const auto bind_error = posix::last_error();
        ::close(fd);
        return bind_error;
    }
    m->local_fd = fd;
    if (::fstatat(m->dir_fd, socket_file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) m->socket_inode = st.st_ino;
    int receive_buffer = 0;
    socklen_t length = sizeof receive_buffer;
    ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, &length);
    m->scratch.resize(std::max(receive_buffer, 1 << 16));  // no datagram larger than the queue can be
    ::fchmodat(m->dir_fd, socket_file.c_str(), 0666, 0);  // any local user may write, as on Windows
    if (posix::mailslot_network().listen) {
        m->udp_fd = posix::open_listening_socket(ec);
        if (ec) return ec;
    }
    m->stop_fd = ::eventfd(0, EFD_CLOEXEC);
    if (m->stop_fd < 0) return posix::last_error();
    m->network = std::thread(serve_reader, m.get());
    out = std::move(m);
    return {};
}

std::size_t receive(MailslotReader& m, std::span<std::byte> buffer, std::error_code& ec) {
    const auto ticket = m.canceller.ticket();
    ++m.receivers;  // before the lock: the reader's thread takes nothing from the socket now
    struct Leave {
        MailslotReader& m;
        ~Leave() {
            m.last_receive_ns = steady_ns();
            --m.receivers;
        }
    } leave{m};
    std::unique_lock lock(m.mutex);
    const Deadline deadline(m.read_timeout);
    for (;;) {
        if (!m.queue.empty()) {
            auto& next = m.queue.front();
            if (next.size() > buffer.size()) {
                ec = errc::buffer_too_small;  // it stays for a larger buffer
                return 0;
            }
            const auto n = next.size();
            if (n > 0) std::memcpy(buffer.data(), next.data(), n);
            m.queued_bytes -= n;
            m.queue.pop_front();
            m.queue_full = false;
            return n;
        }
        // The usual case, nothing queued: one recv, no allocation.
        const ssize_t size = next_datagram(m);
        if (size >= 0) {
            const auto n = static_cast<std::size_t>(size);
            if (m.max_message_size > 0 && n > m.max_message_size) {
                ++m.dropped;
                continue;
            }
            if (n > buffer.size()) {
                enqueue(m, std::span(m.scratch).first(n));  // it stays for a larger buffer
                continue;
            }
            if (n > 0) std::memcpy(buffer.data(), m.scratch.data(), n);
            return n;
        }
        lock.unlock();
        if (!m.canceller.wait(m.local_fd, POLLIN, ticket, deadline, ec)) return 0;
        lock.lock();
    }
}

MailslotInfo info(MailslotReader& m, std::error_code& ec) {
    ec.clear();
    std::lock_guard lock(m.mutex);
    drain(m);
    MailslotInfo i;
    i.max_message_size = m.max_message_size;
    if (!m.queue.empty()) i.next_message_size = m.queue.front().size();
    i.message_count = m.queue.size();
    i.read_timeout = m.read_timeout;
    i.dropped_datagrams = m.dropped;
    return i;
}

std::error_code set_read_timeout(MailslotReader& m, Timeout timeout) {
    std::lock_guard lock(m.mutex);
    m.read_timeout = timeout;
    return {};
}

void cancel(MailslotReader& m) noexcept { m.canceller.cancel(); }

std::error_code open_broadcaster(const MailslotName& name, MailslotWriterPtr& out) {
    auto w = MailslotWriterPtr(new MailslotWriter);
    w->folded_slot = name.folded_name();
    if (name.is_local()) {
        std::string dir;
        if (auto ec = posix::runtime_directory(posix::Scope::shared, dir)) return ec;
        const std::string key = posix::name_key(name);
        // A reader is there if its socket takes a connection; its info file
        // counts only if the socket's owner wrote it.
        const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) return posix::last_error();
        struct stat st;
        int connected = -1;
        if (const int socket_file = posix::open_socket_file(dir_fd, key + ".sock", st); socket_file >= 0) {
            w->fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            const auto addr = posix::socket_file_address(socket_file);
            if (w->fd >= 0) connected = ::connect(w->fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
            if (connected == 0) w->max_message_size = posix::published_max_message_size(dir_fd, key, st.st_uid);
            ::close(socket_file);
        }
        ::close(dir_fd);
        if (connected < 0) return errc::not_found;
        w->local = true;
        out = std::move(w);
        return {};
    }
    if (name.is_broadcast()) {
        w->targets = posix::broadcast_targets();
    } else {
        // This host's own domain needs no lookup; any other name is a host if it resolves.
        std::string upper = name.folded_server();
        for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (upper != posix::mailslot_network().domain) w->targets = posix::host_targets(name.server());
        w->scope = detail::DatagramScope::one_host;
        if (w->targets.empty()) {  // not a host we can find: a domain, as Windows does
            w->scope = detail::DatagramScope::domain;
            w->domain = name.folded_server();
            for (auto& ch : w->domain) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            w->targets = posix::broadcast_targets();
        }
    }
    w->fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (w->fd < 0) return posix::last_error();
    const int one = 1;
    ::setsockopt(w->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    out = std::move(w);
    return {};
}

std::error_code send(MailslotWriter& w, std::span<const std::byte> message, const Deadline& deadline) {
    if (w.local) {
        if (w.max_message_size > 0 && message.size() > w.max_message_size) return errc::message_too_large;
        // A blocking send bounded by SO_SNDTIMEO: one system call per message,
        // where a non-blocking one would need send + poll + send whenever the
        // reader's queue is full. The option is set again only when the
        // timeout changes by more than a few milliseconds. No time at all
        // (the asynchronous layer's try) is a send that does not wait.
        const bool at_once = deadline.expired();
        const std::int64_t wanted = deadline.is_forever() ? 0 : std::max<std::int64_t>(deadline.remaining_ms(), 1);
        if (!at_once && (w.send_timeout_ms < 0 || std::abs(wanted - w.send_timeout_ms) > 5 || (wanted == 0) != (w.send_timeout_ms == 0))) {
            const timeval tv{static_cast<time_t>(wanted / 1000), static_cast<suseconds_t>(wanted % 1000 * 1000)};
            if (::setsockopt(w.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) return posix::last_error();
            w.send_timeout_ms = wanted;
        }
        for (;;) {
            if (::send(w.fd, message.data(), message.size(), MSG_NOSIGNAL | (at_once ? MSG_DONTWAIT : 0)) >= 0) return {};
            if (errno == EINTR) continue;
            if (errno == EMSGSIZE) return errc::message_too_large;
            // The reader has gone (the first send after it says ECONNREFUSED,
            // the later ones ENOTCONN): nobody hears it, and the writer never knows.
            if (errno == ECONNREFUSED || errno == ENOENT || errno == ENOTCONN) return {};
            if (errno == EAGAIN || errno == EWOULDBLOCK) return errc::timed_out;  // the queue stayed full
            return posix::last_error();
        }
    }
    if (message.size() > max_network_mailslot_message) return errc::message_too_large;
    const auto datagram = detail::encode_datagram(w.scope, w.domain, w.folded_slot, message);
    for (const auto& target : w.targets) {
        // The sender never learns whether anyone received it; a target that
        // cannot be reached is no different.
        (void)::sendto(w.fd, datagram.data(), datagram.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&target), sizeof target);
    }
    return {};
}

}  // namespace pipeslot::platform
