// The portable error model: one enum, one std::error_category, the same code
// for the same situation on every backend.
#pragma once

#include <pipeslot/export.hpp>

#include <system_error>

namespace pipeslot {

enum class errc {
    // 0 is reserved for success, as std::error_code requires.
    broken_pipe = 1,    // write with no reader left, or the peer closed the channel
    end_of_stream,      // read after every writer closed and the buffer drained
    pipe_busy,          // every instance of the name is taken
    more_data,          // a message was larger than the buffer: the rest follows
    no_data,            // nothing to read in non-blocking mode / the pipe is closing
    not_connected,      // the instance has no client (disconnected or not yet connected)
    not_found,          // no such name, program or file
    timed_out,          // the operation's timeout expired
    invalid_name,       // a pipe or mailslot name that fails validation
    name_in_use,        // the name exists and the operation needs it not to
    message_too_large,  // the message exceeds the limit for that channel
    access_denied,      // permissions, or the wrong direction on a one-way end
    cancelled,          // cancel() was called from another thread
    invalid_argument,   // a bad size, timeout, empty buffer, closed handle, ...
    buffer_too_small,   // a whole-message receive needs a larger buffer
    too_many_instances, // the name's maximum number of instances is reached
    not_supported,      // the backend or platform cannot do this
    resource_exhausted, // out of descriptors, handles or memory
    protocol_error,     // malformed bytes from a peer
    network_error,      // the network part of an operation failed (a port, an interface)
    already_connected,  // accept(): a client connected before it was called (ERROR_PIPE_CONNECTED)
    pipe_listening,     // I/O on an instance that has not had a client yet (ERROR_PIPE_LISTENING)
};

// The category of every error pipeslot reports. An error_code of another
// category is an operating-system error that has no portable meaning; it is
// passed through untouched so its message stays precise.
PIPESLOT_API const std::error_category& category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace pipeslot

template <>
struct std::is_error_code_enum<pipeslot::errc> : std::true_type {};
