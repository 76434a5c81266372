// The pipe gateway (pipeslot/gateway.hpp): a TCP listener, and a thread per
// connection that reads the client's request, opens the pipe through the
// local path as a remote client, answers, and relays (relay.hpp).
#include "../common/gateway_protocol.hpp"
#include "../common/throw.hpp"
#include "fd.hpp"
#include "flow_page.hpp"
#include "name_client.hpp"
#include "relay.hpp"
#include "tcp.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/gateway.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <vector>

namespace pipeslot {

struct Gateway::Impl {
    GatewayOptions options;
    std::vector<posix::Network> allowed;
    posix::Fd listener;
    posix::Fd stop_event;  // readable once stop() is called: every wait of every connection ends
    std::uint16_t port = 0;
    std::atomic<bool> accepting{true};
    std::thread acceptor;

    struct Connection {
        std::thread thread;
        bool done = false;
    };
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::list<Connection> connections;  // guarded by mutex
    std::size_t live = 0;               // not yet done

    void log(const std::string& line) const {
        if (options.log) options.log(line);
    }
    void accept_loop();
    void serve(int fd, const std::string& peer);
    void linger(int fd) const;
    void reap_locked();
};

namespace {

void send_reply(int fd, errc result) {
    detail::OpenReply reply;
    reply.result = result;
    const auto frame = detail::encode_open_reply(reply);
    (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Exactly `into.size()` bytes before `deadline`, unless the gateway stops.
std::error_code read_request_bytes(int fd, int stop_fd, std::span<std::byte> into, const detail::Deadline& deadline) {
    while (!into.empty()) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        const int ready = ::poll(p, 2, static_cast<int>(std::max<std::int64_t>(deadline.remaining_ms(), 0)));
        if (ready == 0) return errc::timed_out;
        if (ready < 0) {
            if (errno == EINTR) continue;
            return posix::last_error();
        }
        if (p[1].revents) return errc::cancelled;
        const ssize_t n = ::recv(fd, into.data(), into.size(), MSG_DONTWAIT);
        if (n > 0) into = into.subspan(static_cast<std::size_t>(n));
        else if (n == 0) return errc::end_of_stream;
        else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return posix::last_error();
    }
    return {};
}

}  // namespace

// After the server's end closed: the client has been sent everything, its
// disconnect marker last. Closing now, with its writes still coming, would
// reset the connection and could lose the marker before it is read; so what
// it sends is read and dropped until it closes (or a while has passed).
void Gateway::Impl::linger(int fd) const {
    const detail::Deadline until(options.request_timeout);
    std::array<std::byte, 4096> sink;
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_event.get(), POLLIN, 0}};
        if (::poll(p, 2, static_cast<int>(std::max<std::int64_t>(until.remaining_ms(), 0))) <= 0 || p[1].revents) return;
        const ssize_t n = ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
}

void Gateway::Impl::reap_locked() {
    for (auto it = connections.begin(); it != connections.end();) {
        if (!it->done) {
            ++it;
            continue;
        }
        it->thread.join();
        it = connections.erase(it);
    }
}

void Gateway::Impl::accept_loop() {
    for (;;) {
        sockaddr_storage peer{};
        socklen_t size = sizeof peer;
        const int fd = ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &size, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (!accepting.load()) {
            if (fd >= 0) ::close(fd);
            return;
        }
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EINVAL) return;  // shut down
            std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: rest, never spin
            continue;
        }
        const std::string who = posix::address_text(peer);
        const bool allowed_peer = std::any_of(allowed.begin(), allowed.end(), [&](const auto& n) { return n.contains(peer); });
        if (!allowed_peer) {
            log("refused " + who + ": not on the allow-list");
            send_reply(fd, errc::access_denied);  // the same answer whatever it would have asked
            ::close(fd);
            continue;
        }
        std::lock_guard lock(mutex);
        reap_locked();
        if (live >= options.max_connections) {
            log("refused " + who + ": " + std::to_string(live) + " connections already");
            send_reply(fd, errc::resource_exhausted);
            ::close(fd);
            continue;
        }
        auto& c = connections.emplace_back();
        ++live;
        try {
            c.thread = std::thread([this, fd, who, &c] {
                serve(fd, who);
                std::lock_guard done_lock(mutex);
                c.done = true;
                --live;
                changed.notify_all();
            });
        } catch (const std::system_error&) {
            connections.pop_back();
            --live;
            log("refused " + who + ": no thread for it");
            send_reply(fd, errc::resource_exhausted);
            ::close(fd);
        }
    }
}

void Gateway::Impl::serve(int raw_fd, const std::string& who) {
    posix::Fd fd(raw_fd);
    posix::notice_dead_peer(fd.get(), options.dead_peer_timeout);
    const detail::Deadline deadline(options.request_timeout);
    std::array<std::byte, detail::frame_header_size + detail::max_gateway_open_payload> request{};
    auto ec = read_request_bytes(fd.get(), stop_event.get(), std::span(request).first(detail::frame_header_size), deadline);
    std::optional<detail::FrameHeader> header;
    if (!ec) {
        header = detail::decode_header(std::span<const std::byte, detail::frame_header_size>(request.data(), detail::frame_header_size));
        if (!header || header->kind != detail::FrameKind::gateway_open) {
            log("refused " + who + ": not a pipeslot gateway request");
            return send_reply(fd.get(), errc::protocol_error);
        }
        ec = read_request_bytes(fd.get(), stop_event.get(), std::span(request).subspan(detail::frame_header_size, header->length),
                                deadline);
    }
    if (ec == errc::timed_out) return log("closed " + who + ": no request within the request timeout");
    if (ec) return;  // gone, or the gateway stops
    const auto open = detail::decode_gateway_open(std::span<const std::byte>(request).subspan(detail::frame_header_size, header->length));
    if (!open) {
        log("refused " + who + ": a malformed request");
        return send_reply(fd.get(), errc::protocol_error);
    }
    if (open->version != detail::gateway_version) {
        log("refused " + who + ": gateway protocol version " + std::to_string(open->version) + ", this gateway speaks " +
            std::to_string(detail::gateway_version));
        return send_reply(fd.get(), errc::not_supported);
    }
    std::error_code name_error;
    const auto name = PipeName::parse("\\\\.\\pipe\\" + open->name, name_error);
    if (name_error) return send_reply(fd.get(), errc::invalid_name);

    ClientOptions local;
    local.access = open->request.access;
    if (open->request.message_read_mode) local.read_mode = ReadMode::message;
    local.use_server_default_wait = open->request.use_server_default_wait;
    const bool forever = open->request.wait_ms == detail::wait_forever_ms;
    local.wait = forever ? Timeout::forever() : Timeout(std::chrono::milliseconds(open->request.wait_ms));
    const detail::Deadline wait(local.wait);
    const posix::GatewayCall call{stop_event.get(), fd.get()};

    if (open->request.query || open->request.wait_only) {
        detail::OpenReply reply;
        unsigned count = 0;
        const auto result = open->request.query ? posix::count_instances(name, {}, count, &call)
                                                : posix::wait_for_pipe(name, local, wait, &call);
        if (result == errc::cancelled) return;
        reply.result = result ? static_cast<errc>(result.value()) : errc{};
        if (result && result.category() != pipeslot::category()) reply.result = errc::resource_exhausted;
        reply.current_instances = static_cast<std::uint16_t>(std::min(count, 0xFFFFu));
        reply.max_instances = 1;
        const auto frame = detail::encode_open_reply(reply);
        (void)!::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        return;
    }

    posix::OpenedChannel opened;
    if (auto result = posix::open_pipe(name, local, wait, opened, &call)) {
        if (result == errc::cancelled) return;
        return send_reply(fd.get(), result.category() == pipeslot::category() ? static_cast<errc>(result.value())
                                                                           : errc::resource_exhausted);
    }
    posix::Fd pipe(opened.fd);
    const auto frame = detail::encode_open_reply(opened.reply);
    if (::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) {
        opened.flow->stop_reading();
        return;
    }
    if (posix::set_nonblocking(pipe.get(), true)) return opened.flow->stop_reading();
    posix::SocketTransport network(fd.get()), channel(pipe.get());
    const auto end = posix::relay(network, channel, *opened.flow, stop_event.get());
    if (end == posix::RelayEnd::malformed || end == posix::RelayEnd::network_failed)
        log("ended " + who + " on " + open->name + ": " + posix::relay_end_text(end));
    opened.flow->stop_reading();  // as a local client's close: a flush at the server has its answer
    pipe.reset();
    if (end == posix::RelayEnd::server_closed) linger(fd.get());
}

Gateway::Gateway() noexcept = default;
Gateway::~Gateway() { stop(); }
Gateway::Gateway(Gateway&&) noexcept = default;
Gateway& Gateway::operator=(Gateway&& other) noexcept {
    if (this != &other) {
        stop();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

Gateway Gateway::start(const GatewayOptions& options, std::error_code& ec) {
    ec.clear();
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    for (const auto& text : options.allowed_clients) {
        const auto network = posix::Network::parse(text);
        if (!network) {
            ec = errc::invalid_argument;
            return {};
        }
        impl->allowed.push_back(*network);
    }
    if (impl->allowed.empty()) impl->allowed = {*posix::Network::parse("127.0.0.0/8"), *posix::Network::parse("::1/128")};
    const auto address = posix::Network::parse(options.address);
    if (!address || options.address.find('/') != std::string::npos || options.max_connections == 0 ||
        options.request_timeout.count() <= 0 || options.dead_peer_timeout.count() <= 0) {
        ec = errc::invalid_argument;
        return {};
    }
    sockaddr_storage bound{};
    socklen_t bound_size;
    const std::uint16_t port = options.port ? *options.port : posix::gateway_port(0);
    if (address->family == AF_INET) {
        auto& a = reinterpret_cast<sockaddr_in&>(bound);
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        std::memcpy(&a.sin_addr, address->bytes, 4);
        bound_size = sizeof a;
    } else {
        auto& a = reinterpret_cast<sockaddr_in6&>(bound);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        std::memcpy(&a.sin6_addr, address->bytes, 16);
        bound_size = sizeof a;
    }
    impl->listener.reset(::socket(address->family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    impl->stop_event.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (impl->listener.get() < 0 || impl->stop_event.get() < 0) {
        ec = posix::last_error();
        return {};
    }
    const int one = 1;  // a restarted gateway binds while its old connections linger in TIME_WAIT
    ::setsockopt(impl->listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(impl->listener.get(), reinterpret_cast<sockaddr*>(&bound), bound_size) != 0 ||
        ::listen(impl->listener.get(), 128) != 0) {
        ec = errno == EMFILE || errno == ENFILE || errno == ENOMEM ? posix::last_error() : make_error_code(errc::network_error);
        return {};
    }
    bound_size = sizeof bound;
    ::getsockname(impl->listener.get(), reinterpret_cast<sockaddr*>(&bound), &bound_size);
    impl->port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(bound).sin_port
                                                  : reinterpret_cast<sockaddr_in6&>(bound).sin6_port);
    try {
        impl->acceptor = std::thread([p = impl.get()] { p->accept_loop(); });
    } catch (const std::system_error&) {
        ec = errc::resource_exhausted;
        return {};
    }
    Gateway g;
    g.impl_ = std::move(impl);
    return g;
}

Gateway Gateway::start(const GatewayOptions& options) {
    std::error_code ec;
    auto g = start(options, ec);
    detail::throw_if(ec, "pipeslot gateway");
    return g;
}

std::uint16_t Gateway::port() const noexcept { return impl_ ? impl_->port : 0; }

std::size_t Gateway::connections() const noexcept {
    if (!impl_) return 0;
    std::lock_guard lock(impl_->mutex);
    return impl_->live;
}

void Gateway::stop_accepting() noexcept {
    if (!impl_ || !impl_->accepting.exchange(false)) return;
    ::shutdown(impl_->listener.get(), SHUT_RDWR);  // accept() returns
    impl_->acceptor.join();
    impl_->listener.reset();
}

bool Gateway::wait_idle(Timeout timeout) noexcept {
    if (!impl_) return true;
    std::unique_lock lock(impl_->mutex);
    const auto idle = [&] { return impl_->live == 0; };
    if (timeout.is_forever()) {
        impl_->changed.wait(lock, idle);
        return true;
    }
    return impl_->changed.wait_for(lock, timeout.value(), idle);
}

void Gateway::stop() noexcept {
    if (!impl_) return;
    stop_accepting();
    const std::uint64_t one = 1;
    (void)!::write(impl_->stop_event.get(), &one, sizeof one);
    {
        std::unique_lock lock(impl_->mutex);
        impl_->changed.wait(lock, [&] { return impl_->live == 0; });
        impl_->reap_locked();
    }
    impl_.reset();
}

}  // namespace pipeslot
