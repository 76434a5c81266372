#include "mailslot_network.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sstream>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pipeslot::posix {

const MailslotNetwork& mailslot_network() {
    static const MailslotNetwork config = [] {
        MailslotNetwork c;
        if (const char* port = std::getenv("PIPESLOT_MAILSLOT_PORT"); port && *port) {
            const long p = std::strtol(port, nullptr, 10);
            if (p > 0 && p < 65536) c.port = static_cast<std::uint16_t>(p);
        }
        if (const char* list = std::getenv("PIPESLOT_MAILSLOT_INTERFACES"); list && *list && std::strcmp(list, "all") != 0) {
            if (std::strcmp(list, "none") == 0) c.send_nowhere = true;
            std::stringstream split(list);
            for (std::string name; std::getline(split, name, ',');)
                if (!name.empty()) c.interfaces.push_back(name);
        }
        if (const char* network = std::getenv("PIPESLOT_MAILSLOT_NETWORK"); network && std::strcmp(network, "off") == 0)
            c.listen = false;
        if (const char* domain = std::getenv("PIPESLOT_DOMAIN"); domain && *domain) {
            c.domain = domain;
            for (auto& ch : c.domain) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
        return c;
    }();
    return config;
}

int open_listening_socket(std::error_code& ec) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        ec = last_error();
        return -1;
    }
    const int one = 1;
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_port = htons(mailslot_network().port);
    any.sin_addr.s_addr = htonl(INADDR_ANY);  // broadcasts arrive only on a wildcard bind
    // SO_REUSEPORT, which Linux grants only to sockets of the same user, and
    // no SO_REUSEADDR: no other user can bind the port beside us, on any
    // address, and one who holds it makes this bind fail (network_error).
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) < 0) {
        ::close(fd);
        ec = errc::network_error;
        return -1;
    }
    return fd;
}

std::vector<sockaddr_in> broadcast_targets() {
    const auto& config = mailslot_network();
    std::vector<sockaddr_in> out;
    if (config.send_nowhere) return out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) < 0) return out;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) continue;
        if (!config.interfaces.empty() &&
            std::find(config.interfaces.begin(), config.interfaces.end(), i->ifa_name) == config.interfaces.end())
            continue;
        sockaddr_in target{};
        target.sin_family = AF_INET;
        target.sin_port = htons(config.port);
        if (i->ifa_flags & IFF_LOOPBACK) target.sin_addr.s_addr = htonl(0x7FFFFFFF);  // 127.255.255.255
        else if (i->ifa_flags & IFF_BROADCAST) {
            const auto address = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
            const auto* broadcast = reinterpret_cast<const sockaddr_in*>(i->ifa_broadaddr);
            if (broadcast && broadcast->sin_addr.s_addr != 0 && broadcast->sin_addr.s_addr != address) {
                target.sin_addr = broadcast->sin_addr;
            } else if (i->ifa_netmask) {
                // None configured (ip addr add without brd; glibc then reports the
                // address itself): derive it from the netmask.
                const auto mask = reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
                target.sin_addr.s_addr = address | ~mask;
            } else {
                continue;
            }
        } else {
            continue;
        }
        const bool seen = std::any_of(out.begin(), out.end(), [&](const sockaddr_in& t) {
            return t.sin_addr.s_addr == target.sin_addr.s_addr;
        });
        if (!seen) out.push_back(target);
    }
    ::freeifaddrs(list);
    return out;
}

bool sent_to_this_host_alone(in_addr destination) {
    const auto address = ntohl(destination.s_addr);
    if (IN_MULTICAST(address) || address == INADDR_BROADCAST) return false;
    if ((address >> 24) == 127) return (address & 0x00FFFFFF) != 0x00FFFFFF && (address & 0x00FFFFFF) != 0;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) < 0) return false;  // then each listener keeps its own: never twice
    bool local = false;
    for (ifaddrs* i = list; i && !local; i = i->ifa_next)
        local = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == destination.s_addr;
    ::freeifaddrs(list);
    return local;
}

std::vector<sockaddr_in> host_targets(const std::string& host) {
    std::vector<sockaddr_in> out;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST;  // an address needs no lookup
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) {
        hints.ai_flags = 0;
        const char* lookup = strcasecmp(host.c_str(), "localhost") == 0 ? "127.0.0.1" : host.c_str();
        if (::getaddrinfo(lookup, nullptr, &hints, &found) != 0) return out;
    }
    for (addrinfo* a = found; a; a = a->ai_next) {
        auto target = *reinterpret_cast<sockaddr_in*>(a->ai_addr);
        target.sin_port = htons(mailslot_network().port);
        out.push_back(target);
        break;  // one host, one datagram
    }
    ::freeaddrinfo(found);
    return out;
}

}  // namespace pipeslot::posix
