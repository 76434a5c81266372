#include "error_map.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <string>

namespace pipeslot {
namespace {

class PipeslotCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "pipeslot"; }

    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::broken_pipe: return "broken pipe: the other end has closed";
        case errc::end_of_stream: return "end of stream: every writer has closed";
        case errc::pipe_busy: return "all instances of the pipe are busy";
        case errc::more_data: return "more data: the message continues in the next read";
        case errc::no_data: return "no data: the pipe is being closed";
        case errc::not_connected: return "no process is on the other end of the pipe";
        case errc::not_found: return "not found";
        case errc::timed_out: return "the operation timed out";
        case errc::invalid_name: return "invalid pipe or mailslot name";
        case errc::name_in_use: return "the name is already in use";
        case errc::message_too_large: return "the message is too large";
        case errc::access_denied: return "access denied";
        case errc::cancelled: return "the operation was cancelled";
        case errc::invalid_argument: return "invalid argument";
        case errc::buffer_too_small: return "the buffer is too small for the message";
        case errc::too_many_instances: return "the maximum number of pipe instances is reached";
        case errc::not_supported: return "not supported";
        case errc::resource_exhausted: return "out of handles, descriptors or memory";
        case errc::protocol_error: return "malformed data from the peer";
        case errc::network_error: return "the network part of the operation failed";
        case errc::already_connected: return "a client was connected before the server waited for one";
        case errc::pipe_listening: return "the pipe instance is waiting for its first client";
        case errc::pipe_closing: return "the pipe is being closed: the other end has closed";
        case errc::bad_pipe: return "the pipe's state does not allow the operation";
        case errc::pipe_local: return "the pipe's client is on this computer";
        }
        return "unknown pipeslot error " + std::to_string(value);
    }

    // The std::errc of the same meaning, so that `ec == std::errc::timed_out` holds.
    std::error_condition default_error_condition(int value) const noexcept override {
        const auto generic = [](std::errc e) { return std::make_error_condition(e); };
        switch (static_cast<errc>(value)) {
        case errc::broken_pipe:
        case errc::pipe_closing: return generic(std::errc::broken_pipe);
        case errc::not_connected: return generic(std::errc::not_connected);
        case errc::not_found: return generic(std::errc::no_such_file_or_directory);
        case errc::timed_out: return generic(std::errc::timed_out);
        case errc::name_in_use: return generic(std::errc::file_exists);
        case errc::message_too_large: return generic(std::errc::message_size);
        case errc::access_denied: return generic(std::errc::permission_denied);
        case errc::cancelled: return generic(std::errc::operation_canceled);
        case errc::invalid_name:
        case errc::invalid_argument: return generic(std::errc::invalid_argument);
        case errc::not_supported: return generic(std::errc::not_supported);
        case errc::resource_exhausted: return generic(std::errc::not_enough_memory);
        case errc::pipe_busy: return generic(std::errc::device_or_resource_busy);
        case errc::protocol_error: return generic(std::errc::protocol_error);
        default: return {value, *this};
        }
    }
};

bool in_family(errc e, condition c) noexcept {
    switch (c) {
    case condition::peer_gone:
        return e == errc::broken_pipe || e == errc::end_of_stream || e == errc::pipe_closing || e == errc::not_connected;
    case condition::busy: return e == errc::pipe_busy || e == errc::too_many_instances;
    case condition::no_client: return e == errc::pipe_listening || e == errc::bad_pipe || e == errc::not_connected;
    case condition::bad_input:
        return e == errc::invalid_argument || e == errc::invalid_name || e == errc::message_too_large ||
               e == errc::buffer_too_small || e == errc::protocol_error;
    }
    return false;
}

class ConditionCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "pipeslot-condition"; }
    std::string message(int value) const override {
        switch (static_cast<condition>(value)) {
        case condition::peer_gone: return "the other end has closed or disconnected";
        case condition::busy: return "no pipe instance is free";
        case condition::no_client: return "the server end has no client";
        case condition::bad_input: return "invalid input";
        }
        return "unknown pipeslot condition " + std::to_string(value);
    }
    bool equivalent(const std::error_code& code, int value) const noexcept override {
        return code.category() == category() && in_family(static_cast<errc>(code.value()), static_cast<condition>(value));
    }
};

}  // namespace

const std::error_category& category() noexcept {
    static const PipeslotCategory instance;
    return instance;
}

const std::error_category& condition_category() noexcept {
    static const ConditionCategory instance;
    return instance;
}

namespace detail {

std::error_code error_from_errno(int e) noexcept {
    switch (e) {
    case 0: return {};
    case EPIPE:
    case ECONNRESET: return errc::broken_pipe;
    case ENOTCONN: return errc::not_connected;
    case ENOENT:
    case ENOTDIR:
    case ECONNREFUSED: return errc::not_found;  // a socket path without a listener
    case ETIMEDOUT: return errc::timed_out;
    case ENAMETOOLONG: return errc::invalid_name;
    case EEXIST:
    case EADDRINUSE: return errc::name_in_use;
    case EMSGSIZE: return errc::message_too_large;
    case EACCES:
    case EPERM: return errc::access_denied;
    case ECANCELED: return errc::cancelled;
    case EINVAL:
    case EBADF:
    case E2BIG: return errc::invalid_argument;
    case ENOSYS:
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
        return errc::not_supported;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EFBIG: return errc::resource_exhausted;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return errc::no_data;
    default: return {e, std::system_category()};
    }
}

namespace {
// The Win32 error numbers this table knows; values from winerror.h.
enum : std::uint32_t {
    win_file_not_found = 2,
    win_path_not_found = 3,
    win_too_many_open_files = 4,
    win_access_denied = 5,
    win_invalid_handle = 6,
    win_not_enough_memory = 8,
    win_outofmemory = 14,
    win_not_supported = 50,
    win_bad_netpath = 53,
    win_bad_net_name = 67,
    win_file_exists = 80,
    win_invalid_parameter = 87,
    win_broken_pipe = 109,
    win_call_not_implemented = 120,
    win_sem_timeout = 121,
    win_insufficient_buffer = 122,
    win_invalid_name = 123,
    win_bad_pathname = 161,
    win_already_exists = 183,
    win_filename_exced_range = 206,
    win_invalid_function = 1,
    win_sharing_violation = 32,
    win_handle_eof = 38,
    win_pipe_local = 229,
    win_bad_pipe = 230,
    win_pipe_busy = 231,
    win_no_data = 232,
    win_pipe_not_connected = 233,
    win_more_data = 234,
    win_pipe_connected = 535,
    win_pipe_listening = 536,
    win_wait_timeout = 258,
    win_directory = 267,
    win_operation_aborted = 995,
    win_no_system_resources = 1450,
    win_not_found = 1168,
    win_cancelled = 1223,
    win_not_enough_quota = 1816,
    win_timeout = 1460,
};
}  // namespace

std::error_code error_from_win32(std::uint32_t e) noexcept {
    switch (e) {
    case 0: return {};
    case win_broken_pipe: return errc::broken_pipe;
    case win_no_data: return errc::no_data;
    case win_pipe_not_connected: return errc::not_connected;
    case win_pipe_busy: return errc::pipe_busy;
    case win_more_data: return errc::more_data;
    case win_pipe_connected: return errc::already_connected;
    case win_pipe_listening: return errc::pipe_listening;
    case win_bad_pipe: return errc::bad_pipe;
    case win_pipe_local: return errc::pipe_local;
    case win_handle_eof: return errc::end_of_stream;
    case win_not_found: return errc::not_found;  // e.g. the client process id of a disconnected instance
    case win_sharing_violation: return errc::access_denied;
    case win_file_not_found:
    case win_path_not_found:
    case win_bad_netpath:
    case win_bad_net_name:
    case win_directory: return errc::not_found;
    case win_sem_timeout:
    case win_wait_timeout:
    case win_timeout: return errc::timed_out;
    case win_invalid_name:
    case win_bad_pathname:
    case win_filename_exced_range: return errc::invalid_name;
    case win_already_exists:
    case win_file_exists: return errc::name_in_use;
    case win_access_denied: return errc::access_denied;
    case win_operation_aborted:
    case win_cancelled: return errc::cancelled;
    case win_invalid_handle:
    case win_invalid_parameter: return errc::invalid_argument;
    case win_insufficient_buffer: return errc::buffer_too_small;
    case win_invalid_function:
    case win_not_supported:
    case win_call_not_implemented: return errc::not_supported;
    case win_too_many_open_files:
    case win_not_enough_memory:
    case win_outofmemory:
    case win_no_system_resources:
    case win_not_enough_quota: return errc::resource_exhausted;
    default: return {static_cast<int>(e), std::system_category()};
    }
}

}  // namespace detail
}  // namespace pipeslot
