#include "canceller.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <iterator>
#include <cerrno>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace pipeslot::posix {
namespace {

struct ThreadWakeFd {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ~ThreadWakeFd() {
        if (fd >= 0) ::close(fd);
    }
};

int thread_wake_fd() {
    thread_local ThreadWakeFd wake;
    return wake.fd;
}

void drain(int fd) {
    std::uint64_t value;
    while (::read(fd, &value, sizeof value) < 0 && errno == EINTR) {
    }
}

}  // namespace

void Canceller::cancel() noexcept {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    for (auto& w : waiters_) {
        if (w.signalled) continue;
        const std::uint64_t one = 1;
        (void)!::write(w.wake_fd, &one, sizeof one);
        w.signalled = true;
    }
}

bool Canceller::wait(int fd, short events, std::uint64_t ticket, const detail::Deadline& deadline,
                     std::error_code& ec) {
    pollfd p{fd, events, 0};
    return wait_any(std::span(&p, 1), ticket, deadline, ec);
}

bool Canceller::wait_any(std::span<pollfd> fds, std::uint64_t ticket, const detail::Deadline& deadline,
                         std::error_code& ec) {
    const int wake = thread_wake_fd();
    {
        std::lock_guard lock(mutex_);
        if (generation_.load(std::memory_order_acquire) != ticket) {
            ec = errc::cancelled;
            return false;
        }
        if (wake >= 0) waiters_.push_back({wake, false});
    }
    // On the stack for the usual one or two descriptors: this runs for every wait.
    pollfd small[8];
    std::vector<pollfd> large;
    const std::size_t count = fds.size() + (wake >= 0 ? 1 : 0);
    pollfd* all = small;
    if (count > std::size(small)) {
        large.resize(count);
        all = large.data();
    }
    std::copy(fds.begin(), fds.end(), all);
    if (wake >= 0) all[count - 1] = {wake, POLLIN, 0};  // without an eventfd: not cancellable, still bounded
    bool ready = false;
    for (;;) {
        for (std::size_t i = 0; i < count; ++i) all[i].revents = 0;
        const int r = ::poll(all, count, static_cast<int>(deadline.remaining_ms()));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) ec = last_error();
        else if (wake >= 0 && all[count - 1].revents) ec = errc::cancelled;
        else if (r == 0) ec = errc::timed_out;
        else ready = true;
        break;
    }
    for (std::size_t i = 0; i < fds.size(); ++i) fds[i].revents = all[i].revents;
    if (wake < 0) return ready;
    std::lock_guard lock(mutex_);
    const auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](const Waiter& w) { return w.wake_fd == wake; });
    if (it->signalled) drain(wake);  // leave the thread's descriptor quiet for its next wait
    waiters_.erase(it);
    return ready;
}

}  // namespace pipeslot::posix
