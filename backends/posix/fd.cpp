#include "fd.hpp"

#include "../common/error_map.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

namespace pipeslot::posix {

std::error_code last_error() noexcept { return detail::error_from_errno(errno); }

bool wait_ready(int fd, short events, const detail::Deadline& deadline, std::error_code& ec) {
    for (;;) {
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(deadline.remaining_ms()));
        if (r > 0) return true;  // readiness, hang-up or error: the next call tells which
        if (r == 0) {
            ec = errc::timed_out;
            return false;
        }
        if (errno != EINTR) {
            ec = last_error();
            return false;
        }
    }
}

std::error_code set_nonblocking(int fd, bool nonblocking) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return last_error();
    const int wanted = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) return last_error();
    return {};
}

namespace {
sigset_t sigpipe_set() noexcept {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    return s;
}
}  // namespace

SigpipeBlock::SigpipeBlock() noexcept {
    const sigset_t pipe_only = sigpipe_set();
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    was_blocked_ = sigismember(&old, SIGPIPE) == 1;
    if (was_blocked_) {
        // Only then can a SIGPIPE be pending already; it is not ours to consume.
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
}

SigpipeBlock::~SigpipeBlock() {
    const sigset_t pipe_only = sigpipe_set();
    if (epipe_ && !was_pending_) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    if (!was_blocked_) pthread_sigmask(SIG_UNBLOCK, &pipe_only, nullptr);
}

}  // namespace pipeslot::posix
