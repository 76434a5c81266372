#include "relay.hpp"

#include "flow_page.hpp"

#include <algorithm>
#include <cerrno>
#include <poll.h>
#include <sys/socket.h>
#include <vector>

namespace pipeslot::posix {

Transport::Result SocketTransport::read(std::span<std::byte> into) noexcept {
    for (;;) {
        const ssize_t n = ::recv(fd_, into.data(), into.size(), MSG_DONTWAIT);
        if (n > 0) return {Status::done, static_cast<std::size_t>(n)};
        if (n == 0) return {Status::end};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {Status::again_read};
        return {errno == ECONNRESET ? Status::end : Status::failed};
    }
}

Transport::Result SocketTransport::write(std::span<const std::byte> bytes) noexcept {
    for (;;) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return {Status::done, static_cast<std::size_t>(n)};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {Status::again_write};
        return {errno == EPIPE || errno == ECONNRESET ? Status::end : Status::failed};
    }
}

void SocketTransport::shut_write() noexcept { ::shutdown(fd_, SHUT_WR); }

bool transfer_exactly(Transport& t, std::span<std::byte> bytes, bool reading, const detail::Deadline& deadline,
                      int stop_fd, Transport::Status* last) {
    while (!bytes.empty()) {
        const auto r = reading ? t.read(bytes) : t.write(bytes);
        if (last) *last = r.status;
        if (r.status == Transport::Status::done) {
            bytes = bytes.subspan(r.bytes);
            continue;
        }
        if (r.status != Transport::Status::again_read && r.status != Transport::Status::again_write) return false;
        pollfd p[2] = {{t.fd(), static_cast<short>(r.status == Transport::Status::again_read ? POLLIN : POLLOUT), 0},
                       {stop_fd, POLLIN, 0}};
        const int ready = ::poll(p, 2, deadline.is_forever() ? -1 : static_cast<int>(std::max<std::int64_t>(deadline.remaining_ms(), 0)));
        if (ready == 0 || (ready > 0 && p[1].revents)) return false;
        if (ready < 0 && errno != EINTR) return false;
    }
    return true;
}

const char* relay_end_text(RelayEnd end) noexcept {
    switch (end) {
    case RelayEnd::client_closed: return "the client closed";
    case RelayEnd::server_closed: return "the server closed or disconnected";
    case RelayEnd::network_failed: return "the network connection failed";
    case RelayEnd::malformed: return "the client sent malformed frames";
    case RelayEnd::stopped: return "the gateway stopped";
    }
    return "?";
}

namespace {

constexpr std::size_t chunk = 64 * 1024;

// One direction: bytes read from `from`, waiting to be written to `to`.
struct Direction {
    Direction(Transport& f, Transport& t) noexcept : from(f), to(t) {}
    Transport& from;
    Transport& to;
    std::vector<std::byte> buffer = std::vector<std::byte>(chunk);
    std::size_t begin = 0, end = 0;
    bool from_ended = false;
    Transport::Status wants_from = Transport::Status::again_read;  // what `from` waits for, once it cannot read
    Transport::Status wants_to = Transport::Status::again_write;
    detail::FrameScanner scanner;

    bool empty() const noexcept { return begin == end; }
};

short events_for(Transport::Status wants) noexcept { return wants == Transport::Status::again_write ? POLLOUT : POLLIN; }

}  // namespace

RelayEnd relay(Transport& network, Transport& local, FlowPage* flow, int stop_fd) {
    Direction up(network, local);    // client -> server
    Direction down(local, network);  // server -> client
    for (;;) {
        bool progress = false;
        // Move what can be moved now, each way.
        for (Direction* d : {&up, &down}) {
            if (d->empty() && !d->from_ended) {
                const auto r = d->from.read(d->buffer);
                if (r.status == Transport::Status::done) {
                    std::uint64_t payload = 0;
                    if (!d->scanner.scan(std::span(d->buffer).first(r.bytes), payload))
                        return d == &up ? RelayEnd::malformed : RelayEnd::server_closed;
                    if (d == &down && flow) flow->took(payload);  // the server's quota: taken as it leaves
                    d->begin = 0;
                    d->end = r.bytes;
                    progress = true;
                } else if (r.status == Transport::Status::end) {
                    d->from_ended = true;
                    progress = true;
                } else if (r.status == Transport::Status::failed) {
                    return RelayEnd::network_failed;
                } else {
                    d->wants_from = r.status;
                }
            }
            if (!d->empty()) {
                const auto r = d->to.write(std::span(d->buffer).subspan(d->begin, d->end - d->begin));
                if (r.status == Transport::Status::done) {
                    d->begin += r.bytes;
                    progress = progress || r.bytes > 0;
                } else if (r.status == Transport::Status::end) {
                    return d == &up ? RelayEnd::server_closed : RelayEnd::client_closed;
                } else if (r.status == Transport::Status::failed) {
                    return RelayEnd::network_failed;
                } else {
                    d->wants_to = r.status;
                }
            }
            if (d->from_ended && d->empty()) {
                // Everything that came has gone on: the other side learns the end.
                if (d == &up) return RelayEnd::client_closed;
                network.shut_write();
                return RelayEnd::server_closed;
            }
        }
        if (progress || (up.empty() && !up.from_ended && network.has_buffered())) continue;
        pollfd p[3] = {{stop_fd, POLLIN, 0}, {network.fd(), 0, 0}, {local.fd(), 0, 0}};
        const auto want = [&](Transport& t, short events) { (&t == &network ? p[1] : p[2]).events |= events; };
        for (Direction* d : {&up, &down}) {
            if (d->empty()) want(d->from, events_for(d->wants_from));
            else want(d->to, events_for(d->wants_to));
        }
        if (::poll(p, 3, -1) < 0 && errno != EINTR) return RelayEnd::network_failed;
        if (p[0].revents) return RelayEnd::stopped;
    }
}

}  // namespace pipeslot::posix
