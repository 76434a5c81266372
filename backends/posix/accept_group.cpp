// PipeServer's instances waited on together (platform.hpp): one epoll set
// holds each instance's doorbell, one-shot, and every idle server thread
// waits in epoll_wait on it. Linux queues epoll waiters last-in first-out,
// so a client wakes the thread that finished its last client most recently
// (its stack and caches still warm), where a thread per instance would wake
// the one idle longest: on a 64-instance server that doubled the CPU time of
// a connection (docs/performance.md).
#include "../common/platform.hpp"
#include "accept_group.hpp"
#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

namespace pipeslot::platform {

struct AcceptGroup {
    posix::Fd epoll;
    posix::Fd stopped;  // an eventfd, readable (level) from stop() on
    std::vector<int> doorbells;
};

void AcceptGroupDeleter::operator()(AcceptGroup* g) const noexcept { delete g; }

namespace {
bool arm(const AcceptGroup& g, std::size_t index, int op) noexcept {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = index;
    return ::epoll_ctl(g.epoll.get(), op, g.doorbells[index], &e) == 0;
}
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
    for (std::size_t i = 0; i < g->doorbells.size(); ++i) {
        if (g->doorbells[i] < 0 || !arm(*g, i, EPOLL_CTL_ADD)) {
            ec = g->doorbells[i] < 0 ? make_error_code(errc::invalid_argument) : posix::last_error();
            return nullptr;
        }
    }
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = g->doorbells.size();
    if (::epoll_ctl(g->epoll.get(), EPOLL_CTL_ADD, g->stopped.get(), &e) != 0) {
        ec = posix::last_error();
        return nullptr;
    }
    return g;
}

std::size_t wait_any(AcceptGroup& g, std::error_code& ec) {
    ec.clear();
    for (;;) {
        epoll_event e{};
        const int n = ::epoll_wait(g.epoll.get(), &e, 1, -1);
        if (n == 1) return static_cast<std::size_t>(e.data.u64);
        if (n < 0 && errno != EINTR) {
            ec = posix::last_error();
            return g.doorbells.size();
        }
    }
}

void rearm(AcceptGroup& g, std::size_t index) noexcept {
    // Fails only for want of kernel memory; then the instance stays out of
    // the group, and stop() still ends every wait.
    if (index < g.doorbells.size()) (void)arm(g, index, EPOLL_CTL_MOD);
}

void stop(AcceptGroup& g) noexcept {
    const std::uint64_t one = 1;
    (void)!::write(g.stopped.get(), &one, sizeof one);
}

}  // namespace pipeslot::platform
