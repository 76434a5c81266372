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

// True while the handler is still ours: an application that took the signal
// since would be sent one it does not expect (or, with SIG_DFL, be killed).
bool interrupt_handler_installed(int signal) noexcept {
    struct sigaction current{};
    return signal != 0 && ::sigaction(signal, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
           current.sa_handler == on_interrupt_signal;
}

// A signal can land just before its thread enters the call and be lost, so
// cancel() repeats it, backing off, until the call has left; this long at most.
constexpr auto max_interrupting = std::chrono::seconds(5);
constexpr auto first_repeat = std::chrono::milliseconds(1), longest_repeat = std::chrono::milliseconds(64);

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
    // Calls that started after this cancel (a newer ticket) are not its to end.
    const auto any_started_before = [&] {
        return std::any_of(blocked_.begin(), blocked_.end(), [&](const Blocked& b) { return b.ticket < generation; });
    };
    if (!any_started_before() || !interrupt_handler_installed(interrupt_signal())) return;
    const auto give_up = std::chrono::steady_clock::now() + max_interrupting;
    auto repeat = first_repeat;
    for (;;) {
        for (const auto& b : blocked_)
            if (b.ticket < generation) ::pthread_kill(b.thread, interrupt_signal());
        const auto next = std::min(std::chrono::steady_clock::now() + repeat, give_up);
        if (blocked_left_.wait_until(lock, next, [&] { return !any_started_before(); })) return;
        if (std::chrono::steady_clock::now() >= give_up) return;
        repeat = std::min(repeat * 2, longest_repeat);
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
        if (it != c_.blocked_.end()) c_.blocked_.erase(it);
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
