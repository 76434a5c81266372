// The network side of POSIX mailslots: UDP on one port shared by every reader
// on the host. Where datagrams go is configuration, read from the environment
// once per process (see docs/mailslots.md):
//   PIPESLOT_MAILSLOT_PORT        the UDP port (default 13838)
//   PIPESLOT_MAILSLOT_INTERFACES  interfaces whose broadcast address \\* and
//                                 \\DOMAIN use: "all" (default), or a list such
//                                 as "lo" or "veth0,veth1"; "none" sends nothing
//   PIPESLOT_MAILSLOT_NETWORK     "off": readers do not listen on the network
//   PIPESLOT_DOMAIN               this host's domain (default WORKGROUP)
#pragma once

#include <netinet/in.h>
#include <string>
#include <system_error>
#include <vector>

namespace pipeslot::posix {

struct MailslotNetwork {
    std::uint16_t port = 13838;
    std::vector<std::string> interfaces;  // empty: all
    bool send_nowhere = false;
    bool listen = true;
    std::string domain = "WORKGROUP";  // upper-cased
};
const MailslotNetwork& mailslot_network();

// A UDP socket bound to the mailslot port, shared with this user's other
// readers on the host (SO_REUSEPORT), reporting each datagram's destination (IP_PKTINFO).
int open_listening_socket(std::error_code& ec);
// Whether a datagram whose IP destination was `destination` reached one
// listener only (an address of this host), not every one (a broadcast or
// multicast address).
bool sent_to_this_host_alone(in_addr destination);
// The broadcast addresses of the configured interfaces (127.255.255.255 for loopback).
std::vector<sockaddr_in> broadcast_targets();
// The IPv4 addresses of `host`; empty if it does not resolve.
std::vector<sockaddr_in> host_targets(const std::string& host);

}  // namespace pipeslot::posix
