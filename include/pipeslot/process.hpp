// Child processes with their standard streams bound to pipe ends, and
// pipelines (prog1 | prog2 | ...) in one call.
//
// A child receives exactly the handles given as its stdin, stdout and stderr
// and no other: every handle pipeslot creates is close-on-exec/non-inheritable,
// and the spawn passes an explicit list (Win32 PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
// POSIX posix_spawn file actions that close everything else).
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/handle.hpp>
#include <pipeslot/pipe.hpp>
#include <pipeslot/timeout.hpp>

#include <cstdint>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

namespace pipeslot {

// Where one of the child's standard streams goes.
class PIPESLOT_API Stdio {
public:
    Stdio() noexcept = default;                    // inherit the parent's stream
    static Stdio inherit() noexcept { return {}; }
    static Stdio null() noexcept;                  // the null device
    // The child gets this end; the parent's copy is closed once it is spawned.
    static Stdio from(PipeReadEnd&& end) noexcept;
    static Stdio from(PipeWriteEnd&& end) noexcept;

    struct Null {};
    using Target = std::variant<std::monostate, Null, PipeReadEnd, PipeWriteEnd>;
    const Target& target() const noexcept { return target_; }
    Target& target() noexcept { return target_; }

private:
    Target target_;
};

struct Command {
    std::string program;            // looked up in PATH when it has no directory part
    std::vector<std::string> args;  // the arguments after the program name, UTF-8
    Stdio std_in, std_out, std_err;
    std::string working_directory;  // empty: the parent's
};

class PIPESLOT_API Process {
public:
    Process() noexcept = default;
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    // Does not wait or kill: a child that is still running keeps running.
    ~Process();

    static Process spawn(Command command, std::error_code& ec);
    static Process spawn(Command command);  // throws std::system_error

    // Waits for the child to exit and returns its exit code; a POSIX child
    // killed by signal N reports 128 + N, as shells do.
    int wait(Timeout timeout, std::error_code& ec);
    int wait();  // throws std::system_error
    // Terminates the child forcibly (its exit code becomes 128 + 9 = 137).
    void kill(std::error_code& ec);

    bool valid() const noexcept { return pid_ >= 0; }
    std::int64_t id() const noexcept { return pid_; }

private:
    void reset() noexcept;
    native_handle_type handle_ = invalid_native_handle;  // Win32 process handle / Linux pidfd
    std::int64_t pid_ = -1;
    bool exited_ = false;
    int exit_code_ = 0;
};

// Spawns commands[0] | commands[1] | ... : each command's stdout feeds the
// next one's stdin. The first command's std_in and the last one's std_out are
// used as given; the std_out of every other command must be left to inherit.
// On failure no child is left running.
PIPESLOT_API std::vector<Process> spawn_pipeline(std::vector<Command> commands,
                                                 std::error_code& ec);

// The program's arguments as UTF-8, on Windows taken from the UTF-16 command line.
PIPESLOT_API std::vector<std::string> command_line_arguments(int argc, char** argv);

}  // namespace pipeslot
