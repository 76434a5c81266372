// Cancellation of blocking calls from another thread (CancelIoEx for the
// POSIX backend). A call that must block registers its thread's wake-up
// descriptor; cancel() signals every registered one. One eventfd per thread,
// shared by all channels, so an idle channel costs no descriptor for this.
#pragma once

#include "../common/deadline.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <poll.h>
#include <span>
#include <system_error>
#include <vector>

namespace pipeslot::posix {

class Canceller {
public:
    // Taken when a call starts: a cancel() after this point cancels it.
    std::uint64_t ticket() const noexcept { return generation_.load(std::memory_order_acquire); }
    void cancel() noexcept;

    // Waits for `events` on `fd`, the deadline, or a cancel() since `ticket`.
    // False with ec = timed_out or cancelled (or a poll error).
    bool wait(int fd, short events, std::uint64_t ticket, const detail::Deadline& deadline, std::error_code& ec);
    // The same for several descriptors; their revents tell which are ready.
    bool wait_any(std::span<pollfd> fds, std::uint64_t ticket, const detail::Deadline& deadline,
                  std::error_code& ec);

private:
    struct Waiter {
        int wake_fd;
        bool signalled;
    };
    std::atomic<std::uint64_t> generation_{0};
    std::mutex mutex_;
    std::vector<Waiter> waiters_;
};

}  // namespace pipeslot::posix
