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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pipeslot {

inline constexpr std::uint16_t default_gateway_port = 4455;

struct GatewayOptions {
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
