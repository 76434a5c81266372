// Helpers shared by the test files: the child helper program, byte buffers,
// reading a stream to its end.
#pragma once

#include <pipeslot/pipeslot.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace pipeslot::test {

// The system the conformance suite runs against: native_ipc(), or the
// in-memory fake when the runner is started with --fake.
IpcSystem& ipc();
bool using_fake();
void use_fake();
// --remote (POSIX): the native system with every client opening its pipe
// as \\127.0.0.1\pipe\NAME, through a gateway the runner starts.
bool using_remote_clients();
void use_remote_clients();
// Who a remote client is to its server (its certificate's subject); empty: its user, as locally.
std::string remote_client_user();
void set_remote_client_user(std::string user);
// ipc()'s factories, throwing on error (an exception fails the test).
PipeInstance create_instance(std::string_view name, const ServerOptions& options = {});
MessageChannel open_channel(std::string_view name, const ClientOptions& options = {});

// A connected pair on a fresh name: the server's instance and a client.
struct Connected {
    std::string name;
    PipeInstance server;
    MessageChannel client;
};
Connected connect_pair(const std::string& purpose, ServerOptions server_options = {},
                       ClientOptions client_options = {});
Mailslot create_mailslot(std::string_view name, const MailslotOptions& options = {});
Broadcaster open_broadcaster(std::string_view name);
PipeStreams create_pipe(const PipeOptions& options = {});

// For tests of what only real processes (or native handles) can show.
#define PIPESLOT_SKIP_UNDER_FAKE(what) \
    if (::pipeslot::test::using_fake()) GTEST_SKIP() << "the in-memory fake has no " what
// For what a client across the network cannot see as a local one does (docs/gateway.md).
#define PIPESLOT_SKIP_FOR_REMOTE_CLIENTS(why) \
    if (::pipeslot::test::using_remote_clients()) GTEST_SKIP() << "remote clients: " why

// Every blocking call in a test has a bound; this one is for calls that
// should succeed at once (so it is generous on a loaded machine).
inline constexpr auto generous = std::chrono::seconds(30);

// The path of pipeslot-test-child, built next to the test binary.
std::string child_program();
// The path of a tool built by tools/ (name without ".exe").
std::string tool_program(const std::string& name);
// A Command running the child helper in `mode` with `args`.
Command child(std::string mode, std::vector<std::string> args = {});

// The helper's byte pattern (see helpers/child.cpp).
std::vector<std::byte> pattern_bytes(std::size_t count);

std::span<const std::byte> as_bytes(const std::string& s);
// Reads until end of stream; on another error, records a test failure.
std::string read_all(ByteReader& reader, Timeout timeout = generous);

// Runs `command` to its end with its stdout (or stderr) captured.
struct Finished {
    int status = -1;
    std::string output;
};
enum class Capture { std_out, std_err };
Finished run_capturing(Command command, Capture which = Capture::std_out);

// A pipe name no other test (or test run) uses: \\.\pipe\pipeslot-test-PID-N-purpose.
std::string unique_pipe_name(const std::string& purpose);
// A mailslot name no other test (or run) uses: \\.\mailslot\pipeslot-test\PID-N-purpose.
std::string unique_mailslot_name(const std::string& purpose);
// Bytes of a string, and back.
std::vector<std::byte> bytes_of(const std::string& s);
std::string text_of(std::span<const std::byte> bytes);
// The path of pipeslot-test-peer, the helper that links pipeslot.
std::string peer_program();
Command peer(std::string mode, std::vector<std::string> args = {});

// What this process holds now: open descriptors/handles, and threads.
std::size_t open_handle_count();
std::size_t thread_count();
// The count once threads of earlier tests that are on their way out have gone:
// the same for 50 ms in a row (at most 2 s), to compare against afterwards.
std::size_t settled_thread_count();
// The count once it has come down to `expected` (at most 2 s): a joined thread
// is still listed by the kernel for a moment after pthread_join returns.
std::size_t thread_count_back_to(std::size_t expected);
// The same for descriptors/handles: a network connection's server end closes
// once its client has hung up (a moment later, on a thread of its own).
std::size_t settled_handle_count();
std::size_t handle_count_back_to(std::size_t expected);
std::string thread_names();  // for a failure's message (POSIX: each thread's name)

// A helper process whose stdout is read line by line (it prints "ready" first).
struct Helper {
    Process process;
    PipeReadEnd out;
    PipeWriteEnd in;  // closing it ends helpers that wait for their stdin
    std::string line(Timeout timeout = generous);  // the next line, without its newline
};
Helper start_helper(Command command);

// True when the tests run on the Win32 backend under Wine (not on Windows).
bool running_under_wine();
// The native system under Wine: what Wine cannot show is skipped (not on the fake).
inline bool native_under_wine() { return running_under_wine() && !using_fake(); }

}  // namespace pipeslot::test
