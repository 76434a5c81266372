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
    pipe_closing,       // a write after the other end closed (ERROR_NO_DATA on a write: "the pipe is being closed")
    bad_pipe,           // the pipe's state does not allow the operation (ERROR_BAD_PIPE): a peek or
                        // transact on a server end without a client, a transact in byte read mode
    pipe_local,         // the client is on this computer: it has no computer name (ERROR_PIPE_LOCAL)
    // (A new code goes here, last: the wire's open reply checks a code against the last one.)
};

// Families of codes, for code that handles a whole family at once:
//     if (ec == pipeslot::condition::peer_gone) reconnect();
enum class condition {
    peer_gone = 1,  // the other end closed or disconnected this one: broken_pipe, end_of_stream,
                    // pipe_closing, not_connected
    busy,           // no instance to be had now: pipe_busy, too_many_instances
    no_client,      // a server end without a client: pipe_listening, bad_pipe, not_connected
    bad_input,      // the caller's or the peer's input: invalid_argument, invalid_name,
                    // message_too_large, buffer_too_small, protocol_error
};

// The category of every error pipeslot reports. An error_code of another
// category is an operating-system error that has no portable meaning; it is
// passed through untouched so its message stays precise.
PIPESLOT_API const std::error_category& category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

// The category of the families. Codes of pipeslot's category are also
// equivalent to the std::errc of the same meaning (timed_out, broken_pipe,
// permission_denied, ...), so `ec == std::errc::timed_out` holds too.
PIPESLOT_API const std::error_category& condition_category() noexcept;

inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

}  // namespace pipeslot

template <>
struct std::is_error_code_enum<pipeslot::errc> : std::true_type {};
template <>
struct std::is_error_condition_enum<pipeslot::condition> : std::true_type {};
