// Cancellation of blocking calls from another thread (CancelIoEx for the
// POSIX backend), two ways:
// - wait(): poll on the descriptor and the thread's wake-up eventfd, which
//   cancel() signals. One eventfd per thread, shared by all channels, so an
//   idle channel costs no descriptor for this.
// - Blocking: the call sleeps inside the kernel (a socket call bounded by
//   SO_RCVTIMEO/SO_SNDTIMEO) and cancel() interrupts its thread with a signal.
//   A thread woken inside recv() resumes sooner than one woken in poll(), a
//   fifth of a round trip on the machines measured (docs/performance.md).
#pragma once

#include "../common/deadline.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <span>
#include <system_error>
#include <vector>

namespace pipeslot::posix {

class Canceller {
public:
    // Taken when a call starts: a cancel() after this point cancels it.
    std::uint64_t ticket() const noexcept { return generation_.load(std::memory_order_acquire); }
    bool cancelled_since(std::uint64_t ticket) const noexcept { return this->ticket() != ticket; }
    void cancel() noexcept;

    // Waits for `events` on `fd`, the deadline, or a cancel() since `ticket`.
    // False with ec = timed_out or cancelled (or a poll error).
    bool wait(int fd, short events, std::uint64_t ticket, const detail::Deadline& deadline, std::error_code& ec);
    // The same for several descriptors; their revents tell which are ready.
    bool wait_any(std::span<pollfd> fds, std::uint64_t ticket, const detail::Deadline& deadline,
                  std::error_code& ec);

    // True when this thread can be interrupted: the process's interrupt
    // signal is installed (PIPESLOT_INTERRUPT_SIGNAL: a number, or "off") and
    // not blocked in this thread. Otherwise use wait().
    static bool can_interrupt_this_thread() noexcept;

    // While it lives, cancel() interrupts this thread's blocking call (which
    // then fails with EINTR). Empty, with ec = cancelled, when a cancel()
    // since `ticket` came first.
    class Blocking {
    public:
        Blocking(Canceller& c, std::uint64_t ticket, std::error_code& ec);
        ~Blocking();
        Blocking(const Blocking&) = delete;
        Blocking& operator=(const Blocking&) = delete;
        explicit operator bool() const noexcept { return entered_; }

    private:
        Canceller& c_;
        bool entered_ = false;
    };

private:
    struct Waiter {
        int wake_fd;
        bool signalled;
    };
    struct Blocked {
        pthread_t thread;
        std::uint64_t ticket;
    };
    std::atomic<std::uint64_t> generation_{0};
    std::mutex mutex_;
    std::vector<Waiter> waiters_;
    std::vector<Blocked> blocked_;
    std::condition_variable blocked_left_;
};

}  // namespace pipeslot::posix
