// A pipe gateway: this host's named pipes for clients on other hosts, which
// open \\THIS-HOST\pipe\NAME, the way the SMB server fronts pipes on
// Windows. Each connection asks for one pipe; the gateway opens it through
// the local path (so busy, not found, access, instance limits and waiting are
// the local rules, and a pipe created with reject_remote_clients refuses it),
// answers with the same result, then carries the channel both ways.
// POSIX; on Windows the system's SMB server does this (start() gives
// not_supported). Wire format, port and security model: docs/gateway.md.
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/timeout.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pipeslot {

inline constexpr std::uint16_t default_gateway_port = 4455;

// TLS 1.3 (OpenSSL) protects every connection to a gateway that is not on
// loopback, in both directions. The gateway shows a certificate (or, with a
// pre-shared key, none is needed); a client authenticates with a certificate
// signed by the gateway's client CA, or with a TLS 1.3 external pre-shared
// key. Files are PEM. A key is 32 bytes (the SHA-256 suites).
struct GatewayOptions {
    // The gateway's certificate chain and private key.
    std::string certificate_file, private_key_file;
    // Client certificates are checked against this CA; the subject of a
    // client's certificate is what the pipe's server gets as client_user().
    std::string client_ca_file;
    // Pre-shared keys, by identity; the identity is the client's user.
    std::map<std::string, std::vector<std::byte>> psks;
    // Clients on loopback may skip TLS. Without TLS credentials above, the
    // gateway serves only such clients; with neither, start() refuses.
    bool plaintext_on_loopback = false;

    // Where to listen: an IPv4 or IPv6 address literal. Loopback unless told otherwise.
    std::string address = "127.0.0.1";
    // unset: PIPESLOT_GATEWAY_PORT, else default_gateway_port; 0: any free port (see Gateway::port()).
    std::optional<std::uint16_t> port;
    // Networks whose clients may connect ("198.51.100.0/24", "::1/128", or
    // one address); every other client is refused before it can ask for
    // anything. Empty: loopback only.
    std::vector<std::string> allowed_clients;
    // At most this many connections at once; more are refused.
    std::size_t max_connections = 256;
    // A connection that has not asked for a pipe within this is closed.
    std::chrono::milliseconds request_timeout{5000};
    // A client whose host is gone (no answer to keepalive probes, or data
    // unacknowledged) is noticed within this, and its instance freed.
    std::chrono::milliseconds dead_peer_timeout{10000};
    // Told why each refused connection was refused (one line, no newline).
    std::function<void(std::string_view)> log;
};

// How this process's clients reach gateways (\\SERVER\pipe\NAME on POSIX),
// for every open from now on. Until set, it is read once from the
// environment: PIPESLOT_GATEWAY_CA_FILE, PIPESLOT_GATEWAY_CERTIFICATE_FILE,
// PIPESLOT_GATEWAY_KEY_FILE, PIPESLOT_GATEWAY_PSK_IDENTITY,
// PIPESLOT_GATEWAY_PSK_FILE (the key in hex) and PIPESLOT_GATEWAY_PLAINTEXT=loopback.
struct GatewayClientOptions {
    // The gateway's certificate must be signed by this CA and name SERVER
    // (its DNS name, or its IP address for an address literal).
    std::string ca_file;
    // A client certificate and its key, for a gateway that asks for one.
    std::string certificate_file, private_key_file;
    // Or a TLS 1.3 external pre-shared key (then no certificate is needed).
    std::string psk_identity;
    std::vector<std::byte> psk;
    // A gateway on loopback is reached without TLS (when neither a CA nor a key is set).
    bool plaintext_on_loopback = false;
};
// invalid_argument for a half-given pair (a certificate without its key, a PSK without its identity).
PIPESLOT_API std::error_code set_gateway_client_options(const GatewayClientOptions& options);

class PIPESLOT_API Gateway {
public:
    Gateway() noexcept;
    ~Gateway();  // stop()
    Gateway(Gateway&&) noexcept;
    Gateway& operator=(Gateway&&) noexcept;

    // invalid_argument (an address, network or limit that does not parse),
    // network_error (the port is taken, the address is not this host's),
    // not_supported (Windows).
    static Gateway start(const GatewayOptions& options, std::error_code& ec);
    static Gateway start(const GatewayOptions& options);  // throws std::system_error

    bool is_running() const noexcept { return impl_ != nullptr; }
    std::uint16_t port() const noexcept;  // the one it listens on
    std::size_t connections() const noexcept;  // carried now
    // Takes no new connection; the ones it carries go on.
    void stop_accepting() noexcept;
    // Waits until it carries none (true), or the timeout.
    bool wait_idle(Timeout timeout) noexcept;
    // Ends every connection (each client gets broken_pipe) and stops.
    void stop() noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pipeslot
