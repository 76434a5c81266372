// A client's side of \\SERVER\pipe\NAME: the same answers as a local open
// (name_client.hpp), from SERVER's gateway over TCP. The channel's frames then
// run on the TCP socket itself, so a remote channel is a local one in all but
// its transport (the buffer quotas excepted: see docs/gateway.md).
#pragma once

#include "name_client.hpp"

namespace pipeslot::posix {

// How long a client waits for a gateway's TCP connection and answer beyond
// its wait for an instance; PIPESLOT_GATEWAY_CONNECT_TIMEOUT_MS overrides it.
std::chrono::milliseconds gateway_connect_timeout() noexcept;
// How soon a vanished gateway host is noticed on an open channel;
// PIPESLOT_GATEWAY_DEAD_PEER_MS overrides it.
std::chrono::milliseconds gateway_dead_peer_timeout() noexcept;

std::error_code open_remote_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                                 OpenedChannel& out);
std::error_code wait_for_remote_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait);
std::error_code count_remote_instances(const Name& name, const ClientOptions& options, unsigned& count);

}  // namespace pipeslot::posix
