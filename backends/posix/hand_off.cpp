#include "hand_off.hpp"

#include "fd.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <map>
#include <poll.h>
#include <random>
#include <system_error>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace pipeslot::posix {

// How many leased connections still have their client: one whose client
// has hung up is over for the gateway, as a relay ends at its client's close,
// even while the server has not yet accepted or read it. Under mutex_ (a
// leased descriptor stays open while it is listed).
std::size_t HandedConnections::with_client_locked() const {
    std::vector<pollfd> all;
    all.reserve(fds_.size());
    for (const int fd : fds_) all.push_back({fd, POLLRDHUP, 0});
    if (all.empty() || ::poll(all.data(), all.size(), 0) < 0) return all.size();
    return static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [](const pollfd& p) {
        return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0;
    }));
}

std::size_t HandedConnections::total_with(std::size_t relaying) const {
    std::lock_guard lock(mutex_);
    // Each unacknowledged claim is one of `relaying` (acknowledged with its
    // thread's end, under the gateway's lock), whether or not still leased
    // or its client still there.
    const auto with_client = with_client_locked();
    return relaying + with_client - std::min(unacknowledged_, with_client);
}

void HandedConnections::acknowledge() {
    std::lock_guard lock(mutex_);
    --unacknowledged_;
}

void HandedConnections::shut_down_all() {
    {
        std::lock_guard lock(log_mutex_);
        log_stopped_ = true;
    }
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // Under the lock: a lease ends (and its descriptor may close) only after it.
    for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
}

bool HandedConnections::wait_none(std::optional<std::chrono::steady_clock::time_point> until) const {
    std::unique_lock lock(mutex_);
    // A lease's end is notified; a client's hang-up is not: looked at each slice.
    constexpr auto slice = std::chrono::milliseconds(50);
    for (;;) {
        if (with_client_locked() == 0) return true;
        auto next = std::chrono::steady_clock::now() + slice;
        if (until && *until <= next) next = *until;
        released_.wait_until(lock, next);
        if (until && std::chrono::steady_clock::now() >= *until) return with_client_locked() == 0;
    }
}

HandedConnections::Lease::Lease(std::shared_ptr<HandedConnections> owner, int fd, std::string label)
    : owner_(std::move(owner)), fd_(fd), label_(std::move(label)) {}

std::shared_ptr<HandedConnections::Lease> HandedConnections::lease(const std::shared_ptr<HandedConnections>& owner, int fd,
                                                                   std::string label) {
    std::lock_guard lock(owner->mutex_);
    if (owner->stopping_) return nullptr;
    owner->fds_.reserve(owner->fds_.size() + 1);  // may throw: before a lease exists whose end takes this lock
    std::shared_ptr<Lease> made(new Lease(owner, fd, std::move(label)));
    owner->fds_.push_back(fd);
    ++owner->unacknowledged_;
    return made;
}

HandedConnections::Lease::~Lease() {
    std::lock_guard lock(owner_->mutex_);
    auto& fds = owner_->fds_;
    fds.erase(std::find(fds.begin(), fds.end(), fd_));
    owner_->released_.notify_all();
}

void HandedConnections::Lease::ended(std::string_view reason) {
    if (reported_.exchange(true) || !owner_->log_) return;
    // Never after the gateway's stop(): the callback may capture what outlives it no longer.
    std::lock_guard lock(owner_->log_mutex_);
    if (!owner_->log_stopped_) owner_->log_("ended " + label_ + ": " + std::string(reason));
}

namespace {

struct Offer {
    int fd;
    std::shared_ptr<HandedConnections> owner;
    std::string label;
};

std::mutex offers_mutex;
std::map<std::uint64_t, Offer>& offers() {
    static auto* all = new std::map<std::uint64_t, Offer>;  // lives to the process's end (a detached relay may look)
    return *all;
}
// Tokens start at a random point: one of another process never matches
// this one's by chance (the broker checks the requester's pid as well).
std::uint64_t last_token = [] {
    std::random_device random;
    return (std::uint64_t{random()} << 32) ^ random();
}();

}  // namespace

std::uint64_t offer_connection(int fd, std::shared_ptr<HandedConnections> owner, std::string label) {
    std::lock_guard lock(offers_mutex);
    auto token = ++last_token;
    if (token == 0) token = ++last_token;  // 0 means none on the wire
    offers().emplace(token, Offer{fd, std::move(owner), std::move(label)});
    return token;
}

bool withdraw_connection(std::uint64_t token) {
    std::lock_guard lock(offers_mutex);
    return offers().erase(token) == 1;
}

bool claim_connection(std::uint64_t token, Offered& out) {
    std::lock_guard lock(offers_mutex);
    const auto it = offers().find(token);
    if (it == offers().end()) return false;
    // The lease is taken before the offer ends, so the gateway never sees the
    // connection as neither its own nor counted.
    out.lease = HandedConnections::lease(it->second.owner, it->second.fd, it->second.label);
    if (!out.lease) return false;  // the gateway is stopping: it keeps its connection
    out.fd = it->second.fd;
    offers().erase(it);
    (void)set_nonblocking(out.fd, false);  // the channel's calls block (socket_io.hpp)
    return true;
}

namespace {

// How long a closed server end waits for its network client to hang up.
constexpr auto linger_bound = std::chrono::seconds(3);
// How long the lingering thread outlives its last connection: a burst of
// closes shares one thread, and a process with none left keeps neither a
// thread nor a descriptor for it.
constexpr auto idle_bound = std::chrono::milliseconds(20);

// The network connections whose server end is closed, each until its client
// hangs up: one thread at a time, while there are any.
class Lingerer {
public:
    // False if it cannot linger (no thread or descriptor for it).
    bool add(int fd) {
        std::lock_guard lock(mutex_);
        if (!round_ && !start_locked()) return false;
        epoll_event e{};
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.fd = fd;
        if (::epoll_ctl(round_->epoll.get(), EPOLL_CTL_ADD, fd, &e) != 0) return false;
        const bool was_empty = round_->until.empty();
        round_->until[fd] = std::chrono::steady_clock::now() + linger_bound;
        const std::uint64_t one = 1;
        if (was_empty) (void)!::write(round_->wake.get(), &one, sizeof one);  // it may sleep out its idle time
        return true;
    }

private:
    // One thread's: its own descriptors, closed as it ends.
    struct Round {
        Fd epoll{::epoll_create1(EPOLL_CLOEXEC)};
        Fd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
        std::map<int, std::chrono::steady_clock::time_point> until;  // guarded by the Lingerer's mutex
    };

    bool start_locked() {
        auto round = std::make_shared<Round>();
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = round->wake.get();
        if (round->epoll.get() < 0 || round->wake.get() < 0 ||
            ::epoll_ctl(round->epoll.get(), EPOLL_CTL_ADD, round->wake.get(), &e) != 0)
            return false;
        try {
            std::thread([this, round] { run(*round); }).detach();
        } catch (const std::system_error&) {
            return false;
        }
        round_ = std::move(round);
        return true;
    }

    void run(Round& round) {
        std::array<epoll_event, 16> events;
        auto busy_until = std::chrono::steady_clock::now();
        for (;;) {
            int timeout = -1;
            {
                std::lock_guard lock(mutex_);
                const auto now = std::chrono::steady_clock::now();
                for (auto it = round.until.begin(); it != round.until.end();) {
                    if (it->second > now) {
                        timeout = std::min(timeout < 0 ? INT32_MAX : timeout, ms_until(it->second, now));
                        ++it;
                    } else {
                        forget(round, it->first);
                        it = round.until.erase(it);
                    }
                }
                if (!round.until.empty()) {
                    busy_until = now;
                } else if (now - busy_until >= idle_bound) {
                    round_.reset();  // the next close starts a new round
                    return;
                } else {
                    timeout = ms_until(busy_until + idle_bound, now);
                }
            }
            const int n = ::epoll_wait(round.epoll.get(), events.data(), static_cast<int>(events.size()), timeout);
            for (int i = 0; i < n; ++i) {
                const int fd = events[static_cast<std::size_t>(i)].data.fd;
                if (fd == round.wake.get()) {
                    std::uint64_t count;
                    (void)!::read(fd, &count, sizeof count);
                    continue;
                }
                if (drain_to_end(fd)) {
                    std::lock_guard lock(mutex_);
                    round.until.erase(fd);
                    forget(round, fd);
                }
            }
        }
    }

    static int ms_until(std::chrono::steady_clock::time_point when, std::chrono::steady_clock::time_point now) {
        return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(when - now).count());
    }

    // Out of the set before it is closed: a forked child may still hold the
    // socket, and its events would then come under a number reused meanwhile.
    static void forget(const Round& round, int fd) {
        ::epoll_ctl(round.epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
    }

    std::mutex mutex_;
    std::shared_ptr<Round> round_;  // the thread's, while one runs
};

}  // namespace

bool drain_to_end(int fd) noexcept {
    std::array<std::byte, 4096> sink;
    for (;;) {
        const ssize_t n = ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
        if (n > 0) continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

void close_network_connection(int fd) noexcept {
    try {
        static auto* lingerer = new Lingerer;  // no thread or descriptor while idle
        if (lingerer->add(fd)) return;
    } catch (...) {  // no memory for it: close at once
    }
    ::close(fd);
}

}  // namespace pipeslot::posix
