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
};

// not_found (no such pipe, or not this user's / not the asked user's),
// pipe_busy, access_denied, invalid_argument, resource_exhausted, ...
std::error_code open_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                          OpenedChannel& out);

// WaitNamedPipe: returns once an instance of the name is free, taking none.
// not_found (no instance), timed_out (none freed up within the wait).
std::error_code wait_for_pipe(const Name& name, const ClientOptions& options, const detail::Deadline& wait);

// The name's current number of instances, as its broker counts them (0 if none).
std::error_code count_instances(const Name& name, const std::string& server_user, unsigned& count);

}  // namespace pipeslot::posix
