#include "canceller.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iterator>
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

extern "C" void on_interrupt_signal(int) {}  // only there to cut a blocking call short

// The signal that interrupts blocking calls, installed on first use; 0 when
// there is none to use (turned off, or the application has its own handler).
int interrupt_signal() noexcept {
    static const int chosen = [] {
        int signal = SIGRTMAX - 5;
        if (const char* setting = std::getenv("PIPESLOT_INTERRUPT_SIGNAL")) {
            if (std::strcmp(setting, "off") == 0) return 0;
            signal = std::atoi(setting);
            if (signal < SIGRTMIN || signal > SIGRTMAX) return 0;
        }
        struct sigaction current{};
        if (::sigaction(signal, nullptr, &current) != 0) return 0;
        if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO)) return 0;  // not ours to take
        struct sigaction ours{};
        ours.sa_handler = on_interrupt_signal;
        sigemptyset(&ours.sa_mask);
        // Socket calls with a timeout set fail with EINTR even so; anything
        // else a late signal reaches is restarted.
        ours.sa_flags = SA_RESTART;
        return ::sigaction(signal, &ours, nullptr) == 0 ? signal : 0;
    }();
    return chosen;
}

// A signal can land just before its thread enters the call and be lost, so
// cancel() repeats it every millisecond until the call has left, this long at most.
constexpr int max_interrupt_rounds = 2000;

void drain(int fd) {
    std::uint64_t value;
    while (::read(fd, &value, sizeof value) < 0 && errno == EINTR) {
    }
}

}  // namespace

void Canceller::cancel() noexcept {
    std::unique_lock lock(mutex_);
    const auto generation = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
    for (auto& w : waiters_) {
        if (w.signalled) continue;
        const std::uint64_t one = 1;
        (void)!::write(w.wake_fd, &one, sizeof one);
        w.signalled = true;
    }
    for (int round = 0; round < max_interrupt_rounds; ++round) {
        bool any = false;
        for (const auto& b : blocked_) {
            if (b.ticket >= generation) continue;  // started after this cancel
            ::pthread_kill(b.thread, interrupt_signal());
            any = true;
        }
        if (!any) return;
        blocked_left_.wait_for(lock, std::chrono::milliseconds(1));
    }
}

bool Canceller::can_interrupt_this_thread() noexcept {
    const int signal = interrupt_signal();
    if (signal == 0) return false;
    sigset_t current;
    return ::pthread_sigmask(SIG_BLOCK, nullptr, &current) == 0 && sigismember(&current, signal) == 0;
}

Canceller::Blocking::Blocking(Canceller& c, std::uint64_t ticket, std::error_code& ec) : c_(c) {
    std::lock_guard lock(c.mutex_);
    if (c.generation_.load(std::memory_order_acquire) != ticket) {
        ec = errc::cancelled;
        return;
    }
    c.blocked_.push_back({::pthread_self(), ticket});
    entered_ = true;
}

Canceller::Blocking::~Blocking() {
    if (!entered_) return;
    const int saved_errno = errno;  // the blocking call's outcome, for the caller
    {
        std::lock_guard lock(c_.mutex_);
        const auto self = ::pthread_self();
        const auto it = std::find_if(c_.blocked_.begin(), c_.blocked_.end(),
                                     [&](const Blocked& b) { return ::pthread_equal(b.thread, self); });
        c_.blocked_.erase(it);
    }
    c_.blocked_left_.notify_all();
    errno = saved_errno;
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
