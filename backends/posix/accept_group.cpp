// PipeServer's instances waited on together (platform.hpp): one epoll set
// holds each instance's doorbell, one-shot, and every idle server thread
// waits in epoll_wait on it. Linux queues epoll waiters last-in first-out,
// so a client wakes the thread that finished its last client most recently
// (its stack and caches still warm), where a thread per instance would wake
// the one idle longest: on a 64-instance server that doubled the CPU time of
// a connection (docs/performance.md).
//
// Where this process is the name's broker, the set also holds the name's
// listening socket: the idle thread that Linux wakes for a new client
// accepts it and runs the broker's decision itself, and when the client is
// handed to an instance of this group, serves it at once. No other thread
// is woken for the connection.
#include "../common/platform.hpp"
#include "accept_group.hpp"
#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

namespace pipeslot::platform {

struct AcceptGroup {
    posix::Fd epoll;
    posix::Fd stopped;  // an eventfd, readable (level) from stop() on
    std::vector<int> doorbells;
    // Which thread has an instance: one that its doorbell woke, or one that
    // took it while accepting. Claimed with acquire, given back with release
    // (so what the last thread did with the instance is the next one's to see).
    std::unique_ptr<std::atomic<bool>[]> taken;
    Channel* listener = nullptr;  // the instance through which the group joined its name's node

    std::size_t size() const noexcept { return doorbells.size(); }
    std::uint64_t stop_tag() const noexcept { return size(); }
    std::uint64_t listen_tag() const noexcept { return size() + 1; }
    bool claim(std::size_t i) noexcept { return !taken[i].exchange(true, std::memory_order_acquire); }

    ~AcceptGroup() {
        if (listener) posix::leave_accept_group(*listener, epoll.get());
    }
};

void AcceptGroupDeleter::operator()(AcceptGroup* g) const noexcept { delete g; }

namespace {

bool arm(const AcceptGroup& g, std::size_t index, int op) noexcept {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = index;
    return ::epoll_ctl(g.epoll.get(), op, g.doorbells[index], &e) == 0;
}

// The first instance of its own group that a client is handed to while this
// thread accepts: this thread serves it.
class Catcher final : public posix::ClientCatcher {
public:
    explicit Catcher(AcceptGroup& g) : g_(g) {}
    bool take(int doorbell) noexcept override {
        if (caught_ != g_.size()) return false;
        const auto it = std::find(g_.doorbells.begin(), g_.doorbells.end(), doorbell);
        if (it == g_.doorbells.end()) return false;
        const auto i = static_cast<std::size_t>(it - g_.doorbells.begin());
        // Still another thread's (between its disconnect and its rearm): rung, it sees the client.
        if (!g_.claim(i)) return false;
        caught_ = i;
        return true;
    }
    std::size_t caught() const noexcept { return caught_; }

private:
    AcceptGroup& g_;
    std::size_t caught_ = g_.size();
};

}  // namespace

AcceptGroupPtr make_accept_group(std::span<Channel* const> instances, std::error_code& ec) {
    ec.clear();
    AcceptGroupPtr g(new AcceptGroup);
    g->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    g->stopped.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (g->epoll.get() < 0 || g->stopped.get() < 0) {
        ec = posix::last_error();
        return nullptr;
    }
    for (Channel* c : instances) g->doorbells.push_back(posix::instance_doorbell(*c));
    g->taken = std::make_unique<std::atomic<bool>[]>(g->size());
    for (std::size_t i = 0; i < g->size(); ++i) {
        if (g->doorbells[i] < 0 || !arm(*g, i, EPOLL_CTL_ADD)) {
            ec = g->doorbells[i] < 0 ? make_error_code(errc::invalid_argument) : posix::last_error();
            return nullptr;
        }
    }
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = g->stop_tag();
    if (::epoll_ctl(g->epoll.get(), EPOLL_CTL_ADD, g->stopped.get(), &e) != 0) {
        ec = posix::last_error();
        return nullptr;
    }
    // Instances of one name share its node: joining through one is enough.
    if (!instances.empty()) {
        if ((ec = posix::join_accept_group(*instances.front(), g->epoll.get(), g->listen_tag()))) return nullptr;
        g->listener = instances.front();
    }
    return g;
}

std::size_t wait_any(AcceptGroup& g, std::error_code& ec) {
    ec.clear();
    for (;;) {
        epoll_event events[8];
        const int n = ::epoll_wait(g.epoll.get(), events, 8, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            ec = posix::last_error();
            return g.size();
        }
        bool stopped = false, clients_wait = false;
        for (int k = 0; k < n; ++k) {
            stopped = stopped || events[k].data.u64 == g.stop_tag();
            clients_wait = clients_wait || events[k].data.u64 == g.listen_tag();
        }
        std::size_t mine = g.size();
        if (clients_wait) {
            // Accepted whatever happens next: Linux woke this thread alone for them.
            Catcher catcher(g);
            posix::accept_waiting_clients(*g.listener, catcher);
            mine = catcher.caught();
        }
        for (int k = 0; k < n; ++k) {
            const auto i = static_cast<std::size_t>(events[k].data.u64);
            if (i >= g.size()) continue;
            // A doorbell this thread cannot serve now goes back to the set for
            // another; one whose instance is taken is its taker's to see.
            if (mine == g.size() && !stopped && g.claim(i)) mine = i;
            else if (!g.taken[i].load(std::memory_order_relaxed)) (void)arm(g, i, EPOLL_CTL_MOD);
        }
        if (stopped) return g.size();
        if (mine != g.size()) return mine;
    }
}

void rearm(AcceptGroup& g, std::size_t index) noexcept {
    if (index >= g.size()) return;
    g.taken[index].store(false, std::memory_order_release);
    // Fails only for want of kernel memory; then the instance stays out of
    // the group, and stop() still ends every wait.
    (void)arm(g, index, EPOLL_CTL_MOD);
}

void stop(AcceptGroup& g) noexcept {
    const std::uint64_t one = 1;
    (void)!::write(g.stopped.get(), &one, sizeof one);
}

}  // namespace pipeslot::platform
