#include "gateway_client.hpp"

#include "../common/gateway_protocol.hpp"
#include "../common/hex_file.hpp"
#include "fd.hpp"
#include "flow_page.hpp"
#include "relay.hpp"
#include "tcp.hpp"
#include "tls.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>

namespace pipeslot::posix {
namespace {

std::chrono::milliseconds from_environment(const char* variable, std::chrono::milliseconds otherwise) noexcept {
    const char* text = std::getenv(variable);
    if (!text) return otherwise;
    unsigned ms = 0;
    const auto [end, error] = std::from_chars(text, text + std::strlen(text), ms);
    return error == std::errc{} && *end == '\0' && ms >= 1 ? std::chrono::milliseconds(ms) : otherwise;
}

enum class Ask { open, wait_only, query };

// --- how this process reaches gateways (pipeslot/gateway.hpp) ------------------

GatewayClientOptions from_environment() {
    GatewayClientOptions o;
    const auto get = [](const char* name) { const char* v = std::getenv(name); return std::string(v ? v : ""); };
    o.ca_file = get("PIPESLOT_GATEWAY_CA_FILE");
    o.certificate_file = get("PIPESLOT_GATEWAY_CERTIFICATE_FILE");
    o.private_key_file = get("PIPESLOT_GATEWAY_KEY_FILE");
    o.psk_identity = get("PIPESLOT_GATEWAY_PSK_IDENTITY");
    if (!get("PIPESLOT_GATEWAY_PSK_FILE").empty()) o.psk = detail::read_hex_file(get("PIPESLOT_GATEWAY_PSK_FILE")).value_or(std::vector<std::byte>{});
    o.plaintext_on_loopback = get("PIPESLOT_GATEWAY_PLAINTEXT") == "loopback";
    return o;
}

struct ClientSettings {
    std::mutex mutex;
    bool set = false;
    GatewayClientOptions options;
    std::shared_ptr<TlsContext> tls;  // made once per setting; null without TLS credentials
    std::error_code tls_error;        // why none could be made from them
};

ClientSettings& settings() {
    static ClientSettings s;
    return s;
}

bool has_tls_credentials(const GatewayClientOptions& o) { return !o.ca_file.empty() || !o.psk_identity.empty(); }

std::error_code adopt_locked(ClientSettings& s, const GatewayClientOptions& o) {
    s.options = o;
    s.set = true;
    s.tls.reset();
    s.tls_error.clear();
    if (has_tls_credentials(o)) s.tls = TlsContext::for_client(o, s.tls_error);
    return s.tls_error;
}

// A copy of the settings and their TLS context, for one open.
std::pair<GatewayClientOptions, std::shared_ptr<TlsContext>> current(std::error_code& tls_error) {
    auto& s = settings();
    std::lock_guard lock(s.mutex);
    if (!s.set) (void)adopt_locked(s, from_environment());
    tls_error = s.tls_error;
    return {s.options, s.tls};
}

// --- one conversation with a gateway --------------------------------------------

// With TLS, the channel's socket is one end of a socket pair; this thread
// carries it to the gateway and back, and ends when either side does.
// Throws std::system_error (no thread), and then the caller keeps all three.
void start_tls_relay(SslPtr& ssl, Fd& network, Fd& pair_end) {
    std::thread relay_thread([session = ssl.get(), net = network.get(), pair = pair_end.get()] {
        const SslPtr owned_session(session);
        const Fd owned_net(net), owned_pair(pair);
        TlsTransport secure(session, net);
        SocketTransport local(pair);
        relay(secure, local, nullptr, -1);
    });
    (void)ssl.release();
    (void)network.release();
    (void)pair_end.release();
    relay_thread.detach();
}

std::error_code ask_gateway(const Name& name, const ClientOptions& options, const detail::Deadline& wait, Ask ask,
                            OpenedChannel& out) {
    std::error_code tls_error;
    const auto [settings_now, tls] = current(tls_error);
    if (tls_error) return tls_error;  // credentials that do not load
    // TLS on every connection off loopback; plaintext only to loopback, and
    // only when configured. Without TLS credentials nothing else is tried.
    if (!tls && !settings_now.plaintext_on_loopback) return errc::access_denied;
    const auto grace = gateway_connect_timeout();
    int raw = -1;
    if (auto ec = connect_tcp(name.server(), gateway_port(options.gateway_port), grace, !tls, raw)) return ec;
    Fd fd(raw);
    notice_dead_peer(fd.get(), gateway_dead_peer_timeout());
    if (auto ec = set_nonblocking(fd.get(), true)) return ec;
    SslPtr ssl;
    if (tls) {
        std::error_code ec;
        ssl = tls->connect(fd.get(), name.server(), detail::Deadline(grace), ec);
        if (!ssl) return ec;  // access_denied: a wrong certificate or key, or refused
    }
    SocketTransport plain(fd.get());
    std::optional<TlsTransport> secure;
    if (ssl) secure.emplace(ssl.get(), fd.get());
    Transport& network = ssl ? static_cast<Transport&>(*secure) : plain;

    detail::GatewayOpen open;
    open.name = name.name();
    open.request = detail::open_request_for(options, wait, ask == Ask::wait_only, ask == Ask::query);
    auto frame = detail::encode_gateway_open(open);
    if (!transfer_exactly(network, frame, false, detail::Deadline(grace))) return errc::not_found;  // gone at once

    // The answer comes once an instance is free or the wait is over; past
    // that and the grace, the gateway is taken for gone.
    const bool bounded = !wait.is_forever() && !options.use_server_default_wait;
    const detail::Deadline answer = bounded ? detail::Deadline(std::chrono::milliseconds(wait.remaining_ms() + grace.count()))
                                            : detail::Deadline(Timeout::forever());
    std::array<std::byte, detail::frame_header_size + detail::max_connect_payload> reply{};
    const auto receive = [&](std::size_t at, std::size_t count) -> std::error_code {
        Transport::Status last = Transport::Status::done;
        if (transfer_exactly(network, std::span(reply).subspan(at, count), true, answer, -1, &last)) return {};
        if (answer.expired()) return ask == Ask::wait_only ? errc::timed_out : errc::pipe_busy;  // no answer in time
        // TLS 1.3 checks a client's certificate after the client's handshake is
        // done: a refusal comes as an alert in place of the answer.
        if (ssl && last == Transport::Status::failed) return errc::access_denied;
        return errc::not_found;  // closed unanswered: no gateway there
    };
    if (auto ec = receive(0, detail::frame_header_size)) return ec;
    const auto header =
        detail::decode_header(std::span<const std::byte, detail::frame_header_size>(reply.data(), detail::frame_header_size));
    if (!header || header->kind != detail::FrameKind::open_reply || header->length < detail::open_reply_size)
        return errc::protocol_error;
    if (auto ec = receive(detail::frame_header_size, header->length)) return ec;
    const auto decoded = detail::decode_open_reply(std::span<const std::byte>(reply).subspan(detail::frame_header_size, header->length));
    if (!decoded) return errc::protocol_error;
    if (decoded->result != errc{}) return decoded->result;
    out.reply = *decoded;
    if (ask != Ask::open) return {};
    out.flow = FlowPage::unshared(false);  // no page across hosts: no quotas (docs/gateway.md)
    if (!ssl) {
        if (auto ec = set_nonblocking(fd.get(), false)) return ec;  // the channel's sockets block (socket_io.hpp)
        out.fd = fd.release();
        return {};
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return last_error();
    Fd channel_end(pair[0]), relay_end(pair[1]);
    if (auto ec = set_nonblocking(relay_end.get(), true)) return ec;
    try {
        start_tls_relay(ssl, fd, relay_end);
    } catch (const std::system_error&) {
        return errc::resource_exhausted;
    }
    out.fd = channel_end.release();
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

namespace pipeslot {

std::error_code set_gateway_client_options(const GatewayClientOptions& options) {
    if (options.certificate_file.empty() != options.private_key_file.empty() ||
        options.psk_identity.empty() != options.psk.empty())
        return errc::invalid_argument;
    auto& s = posix::settings();
    std::lock_guard lock(s.mutex);
    return posix::adopt_locked(s, options);
}

}  // namespace pipeslot
