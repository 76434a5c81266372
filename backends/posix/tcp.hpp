// TCP for networked pipes (\\server\pipe\name): addresses, the allow-list's
// networks, connecting with a bound, and the socket options that notice a
// peer whose host has gone.
#pragma once

#include "../common/deadline.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <system_error>

namespace pipeslot::posix {

// An IPv4 or IPv6 network: "198.51.100.0/24", "::1/128", or one address.
struct Network {
    int family = AF_INET;
    unsigned char bytes[16]{};
    unsigned prefix = 0;
    static std::optional<Network> parse(std::string_view text);
    bool contains(const sockaddr_storage& address) const noexcept;
};
bool is_loopback(const sockaddr_storage& address) noexcept;
std::string address_text(const sockaddr_storage& address);  // "198.51.100.7:51234", "[::1]:4455"
std::string host_text(const sockaddr_storage& address);     // "198.51.100.7", "::1"

// Keepalive probes after a second of silence, and a bound on unacknowledged
// data, so that a vanished peer is noticed within `dead_peer` (at least 3 s).
void notice_dead_peer(int fd, std::chrono::milliseconds dead_peer) noexcept;

// PIPESLOT_GATEWAY_PORT, else the default; 0 in `explicit_port`: use those.
std::uint16_t gateway_port(std::uint16_t explicit_port) noexcept;

// A blocking, close-on-exec TCP connection to `host` (a name or an address
// literal) within `timeout`, trying each address it resolves to, loopback
// ones only if `loopback_only` (then nothing else is sent a byte). not_found:
// no such host, or nothing answers there (Windows: ERROR_BAD_NETPATH);
// access_denied: only addresses it may not try.
std::error_code connect_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                            bool loopback_only, int& fd);

}  // namespace pipeslot::posix
