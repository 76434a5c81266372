#include "../common/platform.hpp"
#include "fd.hpp"
#include "../common/error_map.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <algorithm>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace pipeslot::platform {
namespace {

// posix_spawn's C objects, destroyed on every path.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    std::vector<int> temporary_fds;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attributes);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
        for (int fd : temporary_fds) ::close(fd);
    }
};

std::error_code bind_stdio(SpawnSetup& setup, const ChildStdio (&stdio)[3]) {
    for (int target = 0; target < 3; ++target) {
        const ChildStdio& s = stdio[target];
        if (s.kind == ChildStdio::Kind::null) {
            const int mode = target == 0 ? O_RDONLY : O_WRONLY;
            if (int e = posix_spawn_file_actions_addopen(&setup.actions, target, "/dev/null", mode, 0))
                return detail::error_from_errno(e);
            continue;
        }
        if (s.kind != ChildStdio::Kind::handle) continue;
        int source = static_cast<int>(s.handle);
        // A child expects blocking stdio; the parent's copy is closed after the spawn.
        if (auto ec = posix::set_nonblocking(source, false)) return ec;
        if (source < 3 && source != target) {
            // An earlier dup2 onto 0..2 could overwrite it: move it out of the way.
            source = ::fcntl(source, F_DUPFD_CLOEXEC, 3);
            if (source < 0) return posix::last_error();
            setup.temporary_fds.push_back(source);
        }
        // dup2 onto itself clears close-on-exec (glibc >= 2.29, POSIX.1-2024).
        if (int e = posix_spawn_file_actions_adddup2(&setup.actions, source, target))
            return detail::error_from_errno(e);
    }
    return {};
}

int pidfd_for(pid_t pid) {
#ifdef SYS_pidfd_open
    const long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
        return static_cast<int>(fd);
    }
#else
    (void)pid;
#endif
    return -1;  // older kernel: wait() falls back to polling
}

int exit_code_from_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

std::error_code spawn(const SpawnRequest& request, ProcessHandles& out) {
    SpawnSetup setup;
    if (auto ec = bind_stdio(setup, request.stdio)) return ec;
#if PIPESLOT_HAVE_ADDCLOSEFROM_NP
    // Belt and braces: descriptors someone else opened without close-on-exec stay out too.
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
#endif
    if (!request.working_directory.empty()) {
#if PIPESLOT_HAVE_ADDCHDIR_NP
        posix_spawn_file_actions_addchdir_np(&setup.actions, request.working_directory.c_str());
#else
        return errc::not_supported;
#endif
    }
    // The child starts with default SIGPIPE handling and an empty signal mask,
    // whatever this process chose for itself.
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigemptyset(&empty);
    posix_spawnattr_setsigdefault(&setup.attributes, &defaults);
    posix_spawnattr_setsigmask(&setup.attributes, &empty);
    posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> argv;
    argv.reserve(request.args.size() + 2);
    argv.push_back(const_cast<char*>(request.program.c_str()));
    for (const auto& a : request.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    pid_t pid = -1;
    const bool search_path = request.program.find('/') == std::string::npos;
    const int e = search_path
                      ? posix_spawnp(&pid, request.program.c_str(), &setup.actions, &setup.attributes,
                                     argv.data(), environ)
                      : posix_spawn(&pid, request.program.c_str(), &setup.actions, &setup.attributes,
                                    argv.data(), environ);
    if (e != 0) return detail::error_from_errno(e);
    out.pid = pid;
    out.handle = pidfd_for(pid);
    return {};
}

std::error_code wait(const ProcessHandles& process, const Deadline& deadline, int& exit_code) {
    const auto pid = static_cast<pid_t>(process.pid);
    int status = 0;
    if (process.handle != invalid_native_handle) {
        std::error_code ec;
        if (!posix::wait_ready(static_cast<int>(process.handle), POLLIN, deadline, ec)) return ec;
    } else {
        // No pidfd: poll with a backoff capped at 10 ms.
        auto pause = std::chrono::microseconds(100);
        for (;;) {
            const pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r == pid) {
                exit_code = exit_code_from_status(status);
                return {};
            }
            if (r < 0 && errno != EINTR) return posix::last_error();
            if (deadline.expired()) return errc::timed_out;
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::microseconds(10'000));
        }
    }
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return posix::last_error();
    }
    exit_code = exit_code_from_status(status);
    return {};
}

std::error_code kill(const ProcessHandles& process) {
    if (::kill(static_cast<pid_t>(process.pid), SIGKILL) < 0 && errno != ESRCH) return posix::last_error();
    return {};
}

void release(ProcessHandles& process) noexcept {
    // Reap it if it is already gone; a child still running is left to run.
    int status;
    ::waitpid(static_cast<pid_t>(process.pid), &status, WNOHANG);
    if (process.handle != invalid_native_handle) ::close(static_cast<int>(process.handle));
    process = {};
}

std::vector<std::string> command_line_arguments(int argc, char** argv) {
    return std::vector<std::string>(argv, argv + argc);
}

}  // namespace pipeslot::platform
