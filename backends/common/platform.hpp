// The narrow contract every backend directory implements (backends/posix,
// backends/win32). The public classes in backends/common validate arguments
// once and then call only these functions; nothing here names an OS header.
#pragma once

#include "deadline.hpp"

#include <pipeslot/handle.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace pipeslot::platform {

// --- text ---------------------------------------------------------------
// Simple (one-to-one) upper-casing of one code point, as the Windows object
// namespace does it: the identity outside the Basic Multilingual Plane.
char32_t simple_upper(char32_t c) noexcept;

// --- handles --------------------------------------------------------------
void close_handle(native_handle_type h) noexcept;
std::error_code set_inheritable(native_handle_type h, bool inheritable);

// --- anonymous pipes --------------------------------------------------------
struct PipeHandles {
    native_handle_type read = invalid_native_handle;
    native_handle_type write = invalid_native_handle;
};
// `for_children` ends are only ever handed to child processes, never read or
// written in this process (Win32: synchronous handles, as children expect).
std::error_code create_pipe(std::size_t buffer_size, bool for_children, PipeHandles& out);
std::error_code pipe_buffer_size(native_handle_type h, std::size_t& size);
// `h` as an event loop can wait on it (a POSIX descriptor), else invalid.
native_handle_type pollable_descriptor(native_handle_type h) noexcept;
// Blocks until at least one byte; errc::end_of_stream when every writer is gone.
std::size_t read(native_handle_type h, std::span<std::byte> buffer, const Deadline& deadline,
                 std::error_code& ec);
// Writes everything unless the deadline passes or the reader is gone.
std::size_t write(native_handle_type h, std::span<const std::byte> data, const Deadline& deadline,
                  std::error_code& ec);

// --- processes --------------------------------------------------------------
struct ChildStdio {
    enum class Kind { inherit, null, handle } kind = Kind::inherit;
    native_handle_type handle = invalid_native_handle;
};
struct SpawnRequest {
    const std::string& program;
    const std::vector<std::string>& args;
    const std::string& working_directory;
    ChildStdio stdio[3];
};
struct ProcessHandles {
    native_handle_type handle = invalid_native_handle;
    std::int64_t pid = -1;
};
std::error_code spawn(const SpawnRequest& request, ProcessHandles& out);
// Waits for exit; on success stores the exit code (128 + signal for a signal).
std::error_code wait(const ProcessHandles& process, const Deadline& deadline, int& exit_code);
std::error_code kill(const ProcessHandles& process);
void release(ProcessHandles& process) noexcept;

std::vector<std::string> command_line_arguments(int argc, char** argv);

}  // namespace pipeslot::platform

// --- named pipes --------------------------------------------------------------
#include <pipeslot/message_channel.hpp>

namespace pipeslot::platform {

struct Channel;  // one end of a named pipe, defined by each backend
struct ChannelDeleter {
    void operator()(Channel* c) const noexcept;
};
using ChannelPtr = std::unique_ptr<Channel, ChannelDeleter>;

// Arguments arrive validated: a local pipe name, options in range.
std::error_code create_instance(const PipeName& name, const ServerOptions& options, ChannelPtr& out);
// WaitNamedPipe: not_found, timed_out.
std::error_code wait_for_instance(const PipeName& name, const ClientOptions& options, const Deadline& wait);
std::error_code open_channel(const PipeName& name, const ClientOptions& options, const Deadline& wait,
                             ChannelPtr& out);
std::error_code accept(Channel& c, const Deadline& deadline);
std::error_code disconnect(Channel& c);
// FlushFileBuffers: waits until the other end has taken all this end sent.
std::error_code flush(Channel& c);
std::size_t receive(Channel& c, std::span<std::byte> buffer, const Deadline& deadline, std::error_code& ec);
std::size_t send(Channel& c, std::span<const std::byte> data, const Deadline& deadline, std::error_code& ec);
// send() as in WaitMode::wait whatever the channel's mode (Win32: not_supported on a nowait handle).
std::size_t send_waiting(Channel& c, std::span<const std::byte> data, const Deadline& deadline, std::error_code& ec);
// Returns how many messages were sent whole.
std::size_t send_messages(Channel& c, std::span<const std::span<const std::byte>> messages, const Deadline& deadline,
                          std::error_code& ec);
PeekResult peek(Channel& c, std::span<std::byte> buffer, std::error_code& ec);
std::size_t transact(Channel& c, std::span<const std::byte> request, std::span<std::byte> reply,
                     const Deadline& deadline, std::error_code& ec);
std::error_code set_read_mode(Channel& c, ReadMode mode);
std::error_code set_wait_mode(Channel& c, WaitMode mode);
ChannelInfo info(const Channel& c, std::error_code& ec);
void cancel(Channel& c) noexcept;
std::error_code client_process_id(const Channel& c, std::int64_t& pid);
std::error_code client_user(const Channel& c, std::string& user);
// GetNamedPipeClientComputerName: pipe_local unless the client came over a network.
std::error_code client_computer_name(const Channel& c, std::string& name);
std::error_code server_process_id(const Channel& c, std::int64_t& pid);
std::error_code server_user(const Channel& c, std::string& user);
std::string current_user();
// For event loops (pipeslot/asio/): POSIX, a descriptor readable when an
// operation that found nothing to do in nowait mode may go on; Windows, the
// overlapped handle the loop starts its operations on.
EventSource event_source(const Channel& c, ChannelEvent event) noexcept;

// Many listening instances of one server waited on by a pool of threads
// (PipeServer). The thread that began waiting last is woken first, so a
// server of 64 instances serves a client with a thread still warm, while the
// client still gets the instance that has listened longest (the broker's
// choice); where the platform can, that thread also accepts the client
// itself. Null where the platform has none: then a thread waits on each.
struct AcceptGroup;
struct AcceptGroupDeleter {
    void operator()(AcceptGroup* g) const noexcept;
};
using AcceptGroupPtr = std::unique_ptr<AcceptGroup, AcceptGroupDeleter>;
AcceptGroupPtr make_accept_group(std::span<Channel* const> instances, std::error_code& ec);
// Blocks until an instance of the group may have a client, and returns its
// index: the calling thread has it to itself until its rearm(). Returns the group's size
// once stop() was called (or on an error, in ec).
std::size_t wait_any(AcceptGroup& g, std::error_code& ec);
void rearm(AcceptGroup& g, std::size_t index) noexcept;
void stop(AcceptGroup& g) noexcept;  // every wait_any() returns, now and later

}  // namespace pipeslot::platform

// --- mailslots ------------------------------------------------------------------
#include <pipeslot/mailslot.hpp>

namespace pipeslot::platform {

struct MailslotReader;
struct MailslotWriter;
struct MailslotReaderDeleter {
    void operator()(MailslotReader* m) const noexcept;
};
struct MailslotWriterDeleter {
    void operator()(MailslotWriter* m) const noexcept;
};
using MailslotReaderPtr = std::unique_ptr<MailslotReader, MailslotReaderDeleter>;
using MailslotWriterPtr = std::unique_ptr<MailslotWriter, MailslotWriterDeleter>;

std::error_code create_mailslot(const MailslotName& name, const MailslotOptions& options, MailslotReaderPtr& out);
// Waits up to the mailslot's read timeout.
std::size_t receive(MailslotReader& m, std::span<std::byte> buffer, std::error_code& ec);
MailslotInfo info(MailslotReader& m, std::error_code& ec);
std::error_code set_read_timeout(MailslotReader& m, Timeout timeout);
void cancel(MailslotReader& m) noexcept;

std::error_code open_broadcaster(const MailslotName& name, MailslotWriterPtr& out);
std::error_code send(MailslotWriter& w, std::span<const std::byte> message, const Deadline& deadline);

}  // namespace pipeslot::platform

namespace pipeslot::platform {
std::string host_name();  // this computer's name, UTF-8
}
