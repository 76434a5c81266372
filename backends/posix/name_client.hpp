// A client's open of a named pipe: connect to the name's broker, ask for an
// instance (connect_protocol.hpp), get the answer; on success the same
// connection is the channel, its other end now in the instance's process.
#pragma once

#include "flow_page.hpp"
#include "../common/connect_protocol.hpp"
#include "../common/deadline.hpp"

#include <pipeslot/message_channel.hpp>

#include <system_error>

namespace pipeslot::posix {

struct OpenedChannel {
    int fd = -1;  // blocking, close-on-exec
    detail::OpenReply reply;
    std::shared_ptr<FlowPage> flow;  // the quotas' counters, sent with the reply (flow_page.hpp)
    // SO_SNDTIMEO and SO_RCVTIMEO as the open left them (µs; 0: none), for
    // the channel to take over rather than reset.
    std::int64_t send_timeout_us = 0, receive_timeout_us = 0;
};

// Set when a network gateway asks for its client: the pipe then takes it for
// a remote client (a reject-remote pipe refuses it), and a wait ends
// (cancelled) once the gateway stops or the client's connection closes.
struct GatewayCall {
    int stop_fd = -1;    // readable once the gateway stops
    int client_fd = -1;  // the network client's connection
    std::string client_user;  // who it proved to be (the server's client_user()); empty on plaintext
    std::uint64_t hand_off = 0;  // client_fd on offer to this process's instances (hand_off.hpp); 0: none
    std::string client_computer;  // where it connected from (the server's client_computer_name())
};

// not_found (no such pipe, or not this user's / not the asked user's),
// pipe_busy, access_denied, invalid_argument, resource_exhausted, ...
std::error_code open_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                          OpenedChannel& out, const GatewayCall* gateway = nullptr);

// WaitNamedPipe: returns once an instance of the name is free, taking none.
// not_found (no instance), timed_out (none freed up within the wait).
std::error_code wait_for_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                              const GatewayCall* gateway = nullptr);

// The name's current number of instances, as its broker counts them (0 if none).
std::error_code count_instances(const Name& name, const std::string& server_user, unsigned& count,
                                const GatewayCall* gateway = nullptr);

}  // namespace pipeslot::posix
