// The pipe gateway (pipeslot/gateway.hpp): a TCP listener, and a thread per
// connection that reads the client's request, opens the pipe through the
// local path as a remote client, answers, and relays (relay.hpp).
#include "../common/gateway_protocol.hpp"
#include "../common/throw.hpp"
#include "fd.hpp"
#include "flow_page.hpp"
#include "hand_off.hpp"
#include "name_client.hpp"
#include "relay.hpp"
#include "tcp.hpp"
#include "tls.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/gateway.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
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
    std::shared_ptr<posix::TlsContext> tls;  // null: plaintext on loopback only
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
    // Plaintext connections an instance of this process took over (hand_off.hpp).
    // Set at start, with the log.
    std::shared_ptr<posix::HandedConnections> handed;

    void log(const std::string& line) const {
        if (options.log) options.log(line);
    }
    void accept_loop();
    // True if the connection went to an instance of this process (hand_off.hpp).
    bool serve(int fd, const sockaddr_storage& peer);
    // `handed_over`, if given: the connection may go to an instance of this
    // process, and is set if it went (it is not the gateway's to close then).
    void serve_request(posix::Transport& network, const std::string& who, const std::string& identity,
                       bool* handed_over = nullptr);
    void linger(int fd) const;
    void reap_locked();
};

namespace {

// An answer is short and the client waits for it: a moment is enough.
constexpr auto reply_time = std::chrono::seconds(2);

void send_reply(posix::Transport& network, const detail::OpenReply& reply) {
    auto frame = detail::encode_open_reply(reply);
    (void)posix::transfer_exactly(network, frame, false, detail::Deadline(reply_time));
}

void send_reply(posix::Transport& network, errc result) {
    detail::OpenReply reply;
    reply.result = result;
    send_reply(network, reply);
}

// The first byte of a connection, within `deadline` (false: none came).
bool first_byte_came(int fd, int stop_fd, const detail::Deadline& deadline) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    return ::poll(p, 2, static_cast<int>(std::max<std::int64_t>(deadline.remaining_ms(), 0))) > 0 && !p[1].revents &&
           (p[0].revents & POLLIN);
}

// Before anything is read: the answer in plaintext (to a TLS client it is
// no ServerHello, so its handshake fails: refused all the same). What it
// sent already is read first, so the close is no reset that could lose it.
void refuse(int fd, errc why) {
    posix::SocketTransport plain(fd);
    std::array<std::byte, 4096> sink;
    for (int i = 0; i < 16 && plain.read(sink).status == posix::Transport::Status::done; ++i) {
    }
    detail::OpenReply reply;
    reply.result = why;
    const auto frame = detail::encode_open_reply(reply);
    (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
}

errc portable(const std::error_code& ec) {
    if (!ec) return errc{};
    return ec.category() == pipeslot::category() ? static_cast<errc>(ec.value()) : errc::resource_exhausted;
}

}  // namespace

// After the server's end closed: the client has been sent everything, its
// disconnect marker last. Closing now, with its writes still coming, would
// reset the connection and could lose the marker before it is read; so what
// it sends is read and dropped until it closes (or a while has passed).
void Gateway::Impl::linger(int fd) const {
    const detail::Deadline until(options.request_timeout);
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_event.get(), POLLIN, 0}};
        if (::poll(p, 2, static_cast<int>(std::max<std::int64_t>(until.remaining_ms(), 0))) <= 0 || p[1].revents) return;
        if (posix::drain_to_end(fd)) return;
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
            refuse(fd, errc::access_denied);  // the same answer whatever it asked: it learns nothing
            continue;
        }
        std::lock_guard lock(mutex);
        reap_locked();
        const auto now = handed->total_with(live);  // handed over: still the gateway's clients
        if (now >= options.max_connections) {
            log("refused " + who + ": " + std::to_string(now) + " connections already");
            refuse(fd, errc::resource_exhausted);
            continue;
        }
        auto& c = connections.emplace_back();
        ++live;
        try {
            c.thread = std::thread([this, fd, peer, &c] {
                const bool handed_over = serve(fd, peer);
                std::lock_guard done_lock(mutex);
                c.done = true;
                --live;
                if (handed_over) handed->acknowledge();  // counted there alone from now
                changed.notify_all();
            });
        } catch (const std::system_error&) {
            connections.pop_back();
            --live;
            log("refused " + who + ": no thread for it");
            refuse(fd, errc::resource_exhausted);
        }
    }
}

bool Gateway::Impl::serve(int raw_fd, const sockaddr_storage& peer) {
    posix::Fd fd(raw_fd);
    const std::string who = posix::address_text(peer);
    posix::notice_dead_peer(fd.get(), options.dead_peer_timeout);
    const detail::Deadline deadline(options.request_timeout);
    if (!first_byte_came(fd.get(), stop_event.get(), deadline)) {
        // Said only when it is so: not of a client that hung up, nor when the gateway stops.
        if (deadline.expired()) log("closed " + who + ": no request within the request timeout");
        return false;
    }
    posix::SocketTransport plain(fd.get());
    if (!posix::starts_tls(fd.get())) {
        if (options.plaintext_on_loopback && posix::is_loopback(peer)) {
            bool handed_over = false;
            serve_request(plain, who, {}, &handed_over);
            if (handed_over) (void)fd.release();
            return handed_over;
        }
        log("refused " + who + ": plaintext, and TLS is required" +
            (posix::is_loopback(peer) ? std::string() : std::string(" off loopback")));
        send_reply(plain, errc::access_denied);
        return false;
    }
    if (!tls) {
        log("refused " + who + ": TLS, and this gateway has no TLS credentials");
        return false;
    }
    std::error_code ec;
    std::string identity;
    const auto ssl = tls->accept(fd.get(), deadline, stop_event.get(), identity, ec);
    if (!ssl) {
        log("refused " + who + ": the TLS handshake failed (a wrong certificate or key, or none)");
        // TLS 1.3: a client's certificate is judged after its side is done, so
        // it is already sending; read that, so the alert is not lost to a reset.
        ::shutdown(fd.get(), SHUT_WR);
        linger(fd.get());
        return false;
    }
    posix::TlsTransport secure(ssl.get(), fd.get());
    serve_request(secure, who + " (" + identity + ")", identity);
    return false;
}

void Gateway::Impl::serve_request(posix::Transport& network, const std::string& who, const std::string& identity,
                                  bool* handed_over) {
    const detail::Deadline deadline(options.request_timeout);
    std::array<std::byte, detail::frame_header_size + detail::max_gateway_open_payload> request{};
    const auto read = [&](std::size_t at, std::size_t size) {
        return posix::transfer_exactly(network, std::span(request).subspan(at, size), true, deadline, stop_event.get());
    };
    const auto cut_short = [&] {  // the client hung up, or the gateway stops: no refusal, nothing to say
        if (deadline.expired()) log("closed " + who + ": no request within the request timeout");
    };
    if (!read(0, detail::frame_header_size)) return cut_short();
    const auto header =
        detail::decode_header(std::span<const std::byte, detail::frame_header_size>(request.data(), detail::frame_header_size));
    if (!header || header->kind != detail::FrameKind::gateway_open) {
        log("refused " + who + ": not a pipeslot gateway request");
        return send_reply(network, errc::protocol_error);
    }
    if (!read(detail::frame_header_size, header->length)) return cut_short();
    const auto open = detail::decode_gateway_open(std::span<const std::byte>(request).subspan(detail::frame_header_size, header->length));
    if (!open) {
        log("refused " + who + ": a malformed request");
        return send_reply(network, errc::protocol_error);
    }
    if (open->version != detail::gateway_version) {
        log("refused " + who + ": gateway protocol version " + std::to_string(open->version) + ", this gateway speaks " +
            std::to_string(detail::gateway_version));
        return send_reply(network, errc::not_supported);
    }
    std::error_code name_error;
    const auto name = PipeName::parse("\\\\.\\pipe\\" + open->name, name_error);
    if (name_error) return send_reply(network, errc::invalid_name);

    ClientOptions local;
    local.access = open->request.access;
    if (open->request.message_read_mode) local.read_mode = ReadMode::message;
    local.use_server_default_wait = open->request.use_server_default_wait;
    const bool forever = open->request.wait_ms == detail::wait_forever_ms;
    local.wait = forever ? Timeout::forever() : Timeout(std::chrono::milliseconds(open->request.wait_ms));
    const detail::Deadline wait(local.wait);
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    const auto computer = ::getpeername(network.fd(), reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0
                              ? posix::host_text(peer)
                              : std::string();
    posix::GatewayCall call{stop_event.get(), network.fd(), identity, 0, computer};

    if (open->request.query || open->request.wait_only) {
        detail::OpenReply reply;
        unsigned count = 0;
        const auto result = open->request.query ? posix::count_instances(name, {}, count, &call)
                                                : posix::wait_for_pipe(name, local, wait, &call);
        if (result == errc::cancelled) return;
        reply.result = portable(result);
        reply.current_instances = static_cast<std::uint16_t>(std::min(count, 0xFFFFu));
        reply.max_instances = 1;
        return send_reply(network, reply);
    }

    // A plaintext connection goes to the instance itself if it is one of this
    // process's (no hop here: docs/gateway.md); else, or with TLS, it is relayed.
    if (handed_over) call.hand_off = posix::offer_connection(network.fd(), handed, who + " on " + open->name);
    posix::OpenedChannel opened;
    const auto result = posix::open_pipe(name, local, wait, opened, &call);
    posix::Fd pipe(opened.fd);
    if (call.hand_off && !posix::withdraw_connection(call.hand_off)) {
        // The instance has the connection and has answered the client on it: not ours now.
        *handed_over = true;
        return;
    }
    if (result) {
        if (result != errc::cancelled) send_reply(network, portable(result));
        return;
    }
    auto frame = detail::encode_open_reply(opened.reply);
    if (!posix::transfer_exactly(network, frame, false, detail::Deadline(reply_time), stop_event.get()) ||
        posix::set_nonblocking(pipe.get(), true)) {
        opened.flow->stop_reading();
        return;
    }
    posix::SocketTransport channel(pipe.get());
    const auto end = posix::relay(network, channel, opened.flow.get(), stop_event.get());
    if (end == posix::RelayEnd::malformed || end == posix::RelayEnd::network_failed)
        log("ended " + who + " on " + open->name + ": " + posix::relay_end_text(end));
    opened.flow->stop_reading();  // as a local client's close: a flush at the server has its answer
    pipe.reset();
    if (end == posix::RelayEnd::server_closed) linger(network.fd());
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
    impl->handed = std::make_shared<posix::HandedConnections>(options.log);
    for (const auto& text : options.allowed_clients) {
        const auto network = posix::Network::parse(text);
        if (!network) {
            ec = errc::invalid_argument;
            return {};
        }
        impl->allowed.push_back(*network);
    }
    if (impl->allowed.empty()) impl->allowed = {*posix::Network::parse("127.0.0.0/8"), *posix::Network::parse("::1/128")};
    const bool has_tls = !options.certificate_file.empty() || !options.psks.empty();
    // TLS needs a way for clients to prove who they are: a CA for their certificates, or keys.
    if ((!has_tls && !options.plaintext_on_loopback) || (has_tls && options.client_ca_file.empty() && options.psks.empty()) ||
        options.certificate_file.empty() != options.private_key_file.empty()) {
        ec = errc::invalid_argument;
        return {};
    }
    if (has_tls && !(impl->tls = posix::TlsContext::for_gateway(options, ec))) return {};
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
    return impl_->handed->total_with(impl_->live);
}

void Gateway::stop_accepting() noexcept {
    if (!impl_ || !impl_->accepting.exchange(false)) return;
    ::shutdown(impl_->listener.get(), SHUT_RDWR);  // accept() returns
    impl_->acceptor.join();
    impl_->listener.reset();
}

bool Gateway::wait_idle(Timeout timeout) noexcept {
    if (!impl_) return true;
    std::optional<std::chrono::steady_clock::time_point> until;
    if (!timeout.is_forever()) until = std::chrono::steady_clock::now() + timeout.value();
    {
        std::unique_lock lock(impl_->mutex);
        const auto idle = [&] { return impl_->live == 0; };
        if (!until) impl_->changed.wait(lock, idle);
        else if (!impl_->changed.wait_until(lock, *until, idle)) return false;
    }
    // Then those an instance took over (none comes once no connection is served).
    return impl_->handed->wait_none(until);
}

void Gateway::stop() noexcept {
    if (!impl_) return;
    stop_accepting();
    const std::uint64_t one = 1;
    (void)!::write(impl_->stop_event.get(), &one, sizeof one);
    impl_->handed->shut_down_all();  // their servers see the clients go
    {
        std::unique_lock lock(impl_->mutex);
        impl_->changed.wait(lock, [&] { return impl_->live == 0; });
        impl_->reap_locked();
    }
    impl_.reset();
}

}  // namespace pipeslot
