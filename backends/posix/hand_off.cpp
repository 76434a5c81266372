#include "hand_off.hpp"

#include "fd.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace pipeslot::posix {

std::size_t HandedConnections::total_with(std::size_t relaying) const {
    std::lock_guard lock(mutex_);
    // Each unacknowledged claim is one of `relaying` (acknowledged with its
    // thread's end, under the gateway's lock), whether or not still leased.
    return relaying + fds_.size() - unacknowledged_;
}

void HandedConnections::acknowledge() {
    std::lock_guard lock(mutex_);
    --unacknowledged_;
}

void HandedConnections::shut_down_all() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // Under the lock: a lease ends (and its descriptor may close) only after it.
    for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
}

bool HandedConnections::wait_none(std::optional<std::chrono::steady_clock::time_point> until) const {
    std::unique_lock lock(mutex_);
    const auto none = [&] { return fds_.empty(); };
    if (!until) {
        released_.wait(lock, none);
        return true;
    }
    return released_.wait_until(lock, *until, none);
}

HandedConnections::Lease::Lease(std::shared_ptr<HandedConnections> owner, int fd, std::string label)
    : owner_(std::move(owner)), fd_(fd), label_(std::move(label)) {}

std::shared_ptr<HandedConnections::Lease> HandedConnections::lease(const std::shared_ptr<HandedConnections>& owner, int fd,
                                                                   std::string label) {
    std::lock_guard lock(owner->mutex_);
    if (owner->stopping_) return nullptr;
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
    owner_->log_("ended " + label_ + ": " + std::string(reason));
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
std::uint64_t last_token = 0;

}  // namespace

std::uint64_t offer_connection(int fd, std::shared_ptr<HandedConnections> owner, std::string label) {
    std::lock_guard lock(offers_mutex);
    const auto token = ++last_token;
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

// One thread for the process, started by the first lingering close.
class Lingerer {
public:
    Lingerer() : epoll_(::epoll_create1(EPOLL_CLOEXEC)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = wake_.get();
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &e);
        std::thread([this] { run(); }).detach();
    }

    bool add(int fd) {
        std::lock_guard lock(mutex_);
        epoll_event e{};
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.fd = fd;
        if (epoll_.get() < 0 || wake_.get() < 0 || ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0) return false;
        const bool was_empty = until_.empty();
        until_[fd] = std::chrono::steady_clock::now() + linger_bound;
        const std::uint64_t one = 1;
        if (was_empty) (void)!::write(wake_.get(), &one, sizeof one);  // the thread sleeps without a deadline
        return true;
    }

private:
    void run() {
        std::array<epoll_event, 16> events;
        for (;;) {
            int timeout = -1;
            {
                std::lock_guard lock(mutex_);
                const auto now = std::chrono::steady_clock::now();
                for (auto it = until_.begin(); it != until_.end();) {
                    if (it->second > now) {
                        const auto left = std::chrono::ceil<std::chrono::milliseconds>(it->second - now).count();
                        timeout = timeout < 0 ? static_cast<int>(left) : std::min(timeout, static_cast<int>(left));
                        ++it;
                    } else {
                        forget(it->first);
                        it = until_.erase(it);
                    }
                }
            }
            const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
            for (int i = 0; i < n; ++i) {
                const int fd = events[static_cast<std::size_t>(i)].data.fd;
                if (fd == wake_.get()) {
                    std::uint64_t count;
                    (void)!::read(fd, &count, sizeof count);
                    continue;
                }
                if (drained_to_end(fd)) {
                    std::lock_guard lock(mutex_);
                    until_.erase(fd);
                    forget(fd);
                }
            }
        }
    }

    // Out of the set before it is closed: a forked child may still hold the
    // socket, and its events would then come under a number reused meanwhile.
    void forget(int fd) const {
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
    }

    // True once the client has closed (or the connection failed).
    static bool drained_to_end(int fd) {
        std::array<std::byte, 4096> sink;
        for (;;) {
            const ssize_t n = ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
            if (n > 0) continue;
            return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        }
    }

    Fd epoll_, wake_;
    std::mutex mutex_;
    std::map<int, std::chrono::steady_clock::time_point> until_;
};

}  // namespace

void close_network_connection(int fd) noexcept {
    try {
        static auto* lingerer = new Lingerer;  // its thread runs to the process's end
        if (lingerer->add(fd)) return;
    } catch (...) {  // no thread or memory for it: close at once
    }
    ::close(fd);
}

}  // namespace pipeslot::posix
