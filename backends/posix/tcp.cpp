#include "tcp.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

namespace pipeslot::posix {
namespace {

// The address bytes of an IPv4 or IPv6 socket address (a v4-mapped v6 one as v4).
bool address_bytes(const sockaddr_storage& a, int& family, const unsigned char*& bytes) noexcept {
    if (a.ss_family == AF_INET) {
        family = AF_INET;
        bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in&>(a).sin_addr);
        return true;
    }
    if (a.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&v6)) {
            family = AF_INET;
            bytes = v6.s6_addr + 12;
        } else {
            family = AF_INET6;
            bytes = v6.s6_addr;
        }
        return true;
    }
    return false;
}

}  // namespace

std::optional<Network> Network::parse(std::string_view text) {
    Network n;
    const auto slash = text.find('/');
    const std::string address(text.substr(0, slash));
    if (::inet_pton(AF_INET, address.c_str(), n.bytes) == 1) n.family = AF_INET;
    else if (::inet_pton(AF_INET6, address.c_str(), n.bytes) == 1) n.family = AF_INET6;
    else return std::nullopt;
    const unsigned most = n.family == AF_INET ? 32 : 128;
    n.prefix = most;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), n.prefix);
        if (digits.empty() || error != std::errc{} || end != digits.data() + digits.size() || n.prefix > most)
            return std::nullopt;
    }
    return n;
}

bool Network::contains(const sockaddr_storage& a) const noexcept {
    int af = 0;
    const unsigned char* b = nullptr;
    if (!address_bytes(a, af, b) || af != family) return false;
    const unsigned whole = prefix / 8, rest = prefix % 8;
    if (std::memcmp(b, bytes, whole) != 0) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
    return (b[whole] & mask) == (bytes[whole] & mask);
}

bool is_loopback(const sockaddr_storage& a) noexcept {
    static const auto v4 = Network::parse("127.0.0.0/8"), v6 = Network::parse("::1/128");
    return v4->contains(a) || v6->contains(a);
}

std::string host_text(const sockaddr_storage& a) {
    char text[INET6_ADDRSTRLEN] = "?";
    int af = 0;
    const unsigned char* b = nullptr;
    if (address_bytes(a, af, b)) ::inet_ntop(af, b, text, sizeof text);
    return text;
}

std::string address_text(const sockaddr_storage& a) {
    const std::string text = host_text(a);
    if (text == "?") return text;
    const int af = a.ss_family == AF_INET6 ? AF_INET6 : AF_INET;
    const auto port = a.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(a).sin_port
                                             : reinterpret_cast<const sockaddr_in6&>(a).sin6_port;
    // Appended piece by piece: GCC 12 at -O3 takes "[" + text + "]" for an overlapping copy.
    std::string out;
    if (af == AF_INET6) out.push_back('[');
    out.append(text);
    if (af == AF_INET6) out.push_back(']');
    out.push_back(':');
    out.append(std::to_string(ntohs(port)));
    return out;
}

void notice_dead_peer(int fd, std::chrono::milliseconds dead_peer) noexcept {
    const int one = 1;
    const int seconds = static_cast<int>(std::max<std::int64_t>(dead_peer.count() / 1000, 3));
    // Probes a second apart after a second of silence; the kernel checks once
    // a probe, so aim a probe under the bound (measured: 3.0-3.4 s for 3 s before).
    const int idle = 1, interval = 1, count = seconds - idle - 1;
    const unsigned user_timeout = static_cast<unsigned>(seconds - 1) * 1000;  // sent data unacknowledged this long
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

std::uint16_t gateway_port(std::uint16_t explicit_port) noexcept {
    if (explicit_port != 0) return explicit_port;
    if (const char* text = std::getenv("PIPESLOT_GATEWAY_PORT")) {
        unsigned port = 0;
        const auto [end, error] = std::from_chars(text, text + std::strlen(text), port);
        if (error == std::errc{} && *end == '\0' && port >= 1 && port <= 65535) return static_cast<std::uint16_t>(port);
    }
    return 4455;  // pipeslot::default_gateway_port
}

std::error_code connect_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                            bool loopback_only, int& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int resolved = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (resolved == EAI_MEMORY) return errc::resource_exhausted;
    if (resolved != 0) return errc::not_found;
    const detail::Deadline deadline(timeout);
    std::error_code why = errc::not_found;
    bool tried = false;
    for (auto* a = found; a; a = a->ai_next) {
        sockaddr_storage target{};
        std::memcpy(&target, a->ai_addr, std::min<std::size_t>(a->ai_addrlen, sizeof target));
        if (loopback_only && !is_loopback(target)) continue;
        tried = true;
        Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        if (fd.get() < 0) {
            why = last_error();  // EMFILE: resource_exhausted
            if (why == errc::resource_exhausted) break;
            continue;
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) continue;
        pollfd p{fd.get(), POLLOUT, 0};
        int error = 0;
        socklen_t size = sizeof error;
        const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(deadline.remaining_ms(), 0)));
        if (ready != 1 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
            if (deadline.expired()) break;
            continue;
        }
        if (set_nonblocking(fd.get(), false)) continue;
        out = fd.release();
        why.clear();
        break;
    }
    ::freeaddrinfo(found);
    if (!tried) return errc::access_denied;  // plaintext, and the host is not this one
    return why;
}

}  // namespace pipeslot::posix
