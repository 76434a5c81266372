#include "name_node.hpp"

#include "hand_off.hpp"

#include "../common/error_map.hpp"
#include "accept_group.hpp"
#include "broker.hpp"
#include "control_link.hpp"
#include "fd.hpp"
#include "name_files.hpp"
#include "runtime_dir.hpp"
#include "test_hooks.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace pipeslot::posix {
namespace {
// How long a create or close waits for the broker's answer before giving up
// (a broker that is alive but stopped answers nothing; a dead one is replaced).
constexpr auto broker_answer_bound = std::chrono::seconds(10);
}  // namespace

// One instance, as its server channel and its node share it.
struct InstanceSlot {
    explicit InstanceSlot(std::uint64_t id_) : id(id_) {}
    ~InstanceSlot() {
        close_client(std::move(client));
        if (doorbell >= 0) ::close(doorbell);
    }
    const std::uint64_t id;
    std::mutex mutex;
    // An eventfd, made when someone waits for a client and closed once one
    // is taken (unless pinned, for an accept group), so that a connected
    // instance holds no descriptor for it: thousands of them are served.
    int doorbell = -1;
    bool doorbell_pinned = false;
    // With `mutex` held: the doorbell, made if need be; rung at once if a
    // client is already here. -1 if no descriptor can be made.
    int doorbell_locked() {
        if (doorbell < 0) {
            doorbell = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            const std::uint64_t one = 1;
            if (doorbell >= 0 && client.fd >= 0) (void)!::write(doorbell, &one, sizeof one);
        }
        return doorbell;
    }
    HandedClient client;  // handed over, not yet taken by the channel
    const std::shared_ptr<FlowPage::Spare> spare_flow = FlowPage::new_spare();  // the last connection's
    bool gone = false;   // removed: a client handed over late is turned away
    // The node thread's own.
    detail::InstanceParams params;
    detail::InstanceParams pipe;  // what the name's first instance fixed
    Nanos listening_since = -1;
    bool registered = false;  // the broker knows it
};

namespace {

struct Command {
    enum Kind { add, remove, listen } kind;
    std::shared_ptr<InstanceSlot> slot;
    Nanos since = 0;
    std::uint32_t request = 0;
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false, abandoned = false;
    std::error_code result;
    detail::InstanceParams pipe;

    // True if the caller had given up (an add that succeeded must then be undone).
    bool complete(std::error_code ec, const detail::InstanceParams& p) {
        std::lock_guard lock(mutex);
        done = true;
        result = ec;
        pipe = p;
        finished.notify_all();
        return abandoned;
    }
    bool wait(std::chrono::steady_clock::duration bound) {
        std::unique_lock lock(mutex);
        if (finished.wait_for(lock, bound, [&] { return done; })) return true;
        abandoned = true;
        return false;
    }
};

std::error_code as_portable(errc e) { return e == errc{} ? std::error_code{} : make_error_code(e); }

// Set while a server thread accepts for its group (accept_waiting()).
thread_local ClientCatcher* catching_here = nullptr;

}  // namespace

class NameNode {
public:
    NameNode() = default;
    ~NameNode() { stop(); }

    std::error_code start(const Name& name) {
        if (auto ec = files_.join(name)) return ec;
        test_stop_point("create-joined");
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (epoll_fd_ < 0 || wake_fd_ < 0) return last_error();
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.u64 = event_tag(EventKind::wake);
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &e) < 0) return last_error();
        accept_epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        accept_wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (accept_epoll_fd_ < 0 || accept_wake_fd_ < 0) return last_error();
        if (::epoll_ctl(accept_epoll_fd_, EPOLL_CTL_ADD, accept_wake_fd_, &e) < 0) return last_error();
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error&) {
            return errc::resource_exhausted;
        }
        return {};
    }

    void stop() {
        if (thread_.joinable()) {
            {
                std::lock_guard lock(mutex_);
                stopping_ = true;
            }
            wake();
            thread_.join();
        }
        for (int fd : {epoll_fd_, wake_fd_, accept_epoll_fd_, accept_wake_fd_})
            if (fd >= 0) ::close(fd);
        epoll_fd_ = wake_fd_ = accept_epoll_fd_ = accept_wake_fd_ = -1;
    }

    std::error_code add(const std::shared_ptr<InstanceSlot>& slot, detail::InstanceParams& pipe) {
        auto cmd = post(Command::add, slot);
        if (!cmd->wait(broker_answer_bound)) return errc::timed_out;
        pipe = cmd->pipe;
        return cmd->result;
    }

    void remove(const std::shared_ptr<InstanceSlot>& slot) {
        {
            std::lock_guard lock(slot->mutex);
            slot->gone = true;
        }
        // Bounded: if the broker never answers, it drops this process's instances when it leaves.
        post(Command::remove, slot)->wait(broker_answer_bound);
    }

    void listen(const std::shared_ptr<InstanceSlot>& slot) { post(Command::listen, slot); }

private:
    std::shared_ptr<Command> post(Command::Kind kind, const std::shared_ptr<InstanceSlot>& slot) {
        auto cmd = std::make_shared<Command>();
        cmd->kind = kind;
        cmd->slot = slot;
        cmd->since = steady_now_ns();
        {
            // The broker's own process runs it here, under the state's lock:
            // no trip through the node's thread (one wake-up less per accept()).
            std::lock_guard state(state_mutex_);
            std::unique_lock queue(mutex_);
            if (role_ == Role::broker && commands_.empty() && (kind != Command::add || broker_->settled())) {
                queue.unlock();
                run_as_broker(cmd);
                return cmd;
            }
            commands_.push_back(cmd);
        }
        wake();
        return cmd;
    }

    void wake() noexcept {
        const std::uint64_t one = 1;
        (void)!::write(wake_fd_, &one, sizeof one);
    }

    // --- the node's thread ---------------------------------------------------------

    void run() {
        ::pthread_setname_np(::pthread_self(), "pipeslot-name");  // seen in ps -L, gdb, /proc/PID/task
        epoll_event events[64];
        std::unique_lock state(state_mutex_);
        for (;;) {
            if (role_ == Role::none && steady_now_ns() >= retry_at_) establish();
            run_commands();
            {
                std::lock_guard lock(mutex_);
                if (stopping_ && commands_.empty()) break;
            }
            int timeout = broker_ ? broker_->timeout_ms() : -1;
            if (role_ == Role::none) {
                const Nanos left = retry_at_ - steady_now_ns();
                const int retry = left <= 0 ? 0 : static_cast<int>(left / 1'000'000 + 1);
                timeout = timeout < 0 ? retry : std::min(timeout, retry);
            }
            state.unlock();
            const int n = ::epoll_wait(epoll_fd_, events, 64, timeout);
            state.lock();
            for (int i = 0; i < n; ++i) {
                const auto tag = events[i].data.u64;
                if (event_kind(tag) == EventKind::wake) {
                    std::uint64_t count;
                    (void)!::read(wake_fd_, &count, sizeof count);
                } else if (role_ == Role::member && event_kind(tag) == EventKind::link && event_id(tag) == 0) {
                    on_link_event(events[i].events);
                } else if (broker_) {
                    broker_->on_event(tag, events[i].events);
                }
            }
            if (broker_) broker_->on_timeout();
        }
        stop_acceptor(state);
        shut_down();
    }

    // --- the acceptor's thread: in the broker's process, it accepts the
    // name's clients and runs the broker's decision on each itself, under the
    // state's lock; the node's thread keeps everything else. Without accept
    // groups it sleeps inside accept(): a thread woken there resumes sooner
    // than one woken in epoll (docs/performance.md). With them the listening
    // socket is non-blocking and in each group's epoll set ahead of the
    // acceptor's own: Linux hands a new client to the first of those sets
    // that has a thread waiting, so the acceptor takes only what no idle
    // server thread can.

    void accept_loop(int listen_fd) {
        ::pthread_setname_np(::pthread_self(), "pipeslot-accept");
        while (!acceptor_stopping_.load()) {
            if (!groups_listening_.load() && make_listener_blocking(listen_fd)) accept_one_blocking(listen_fd);
            else accept_when_told(listen_fd);
        }
    }

    // True once the listening socket blocks (unless a group joined meanwhile).
    bool make_listener_blocking(int listen_fd) {
        if (!listener_nonblocking_.load()) return true;
        std::lock_guard state(state_mutex_);
        if (groups_listening_.load() || set_nonblocking(listen_fd, false)) return false;
        listener_nonblocking_ = false;
        return true;
    }

    void accept_one_blocking(int listen_fd) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        const int error = errno;
        if (acceptor_stopping_.load()) {
            if (fd >= 0) ::close(fd);
            return;
        }
        if (fd >= 0) {
            std::lock_guard state(state_mutex_);
            return adopt(fd);
        }
        // EAGAIN: a group joined, and took the client.
        if (error == EINTR || error == ECONNABORTED || error == EAGAIN || error == EWOULDBLOCK) return;
        (void)after_failed_accept(listen_fd, error, -1);
    }

    // Woken for a client no group thread took (or told to look): accepts all that wait.
    void accept_when_told(int listen_fd) {
        epoll_event events[2];
        if (::epoll_wait(accept_epoll_fd_, events, 2, -1) < 0 && errno != EINTR) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            return;
        }
        std::uint64_t count;
        (void)!::read(accept_wake_fd_, &count, sizeof count);
        for (;;) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            const int error = errno;
            if (acceptor_stopping_.load()) {
                if (fd >= 0) ::close(fd);
                return;
            }
            if (fd >= 0) {
                std::lock_guard state(state_mutex_);
                adopt(fd);
                continue;
            }
            if (error == EINTR || error == ECONNABORTED) continue;
            if (error == EAGAIN || error == EWOULDBLOCK || !after_failed_accept(listen_fd, error, 0)) return;
        }
    }

    // After accept() failed with `error`: out of descriptors, a client that
    // waits (within `wait_ms`) is accepted or told so. False if none waited.
    bool after_failed_accept(int listen_fd, int error, int wait_ms) {
        if (error == EMFILE || error == ENFILE) {
            // accept() fails at once without a descriptor, whether or not a client waits.
            pollfd p{listen_fd, POLLIN, 0};
            const int ready = ::poll(&p, 1, wait_ms);
            if (ready == 0 || acceptor_stopping_.load()) return false;
            if (ready > 0) {
                std::lock_guard state(state_mutex_);
                // The node's thread has had its turn (closing connections that have
                // gone frees descriptors): try once more before refusing.
                const int again = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);  // one waits: no block
                if (again >= 0) {
                    adopt(again);
                    return true;
                }
                if (broker_->refuse_for_lack_of_descriptors(listen_fd)) return true;
            }
        }
        // Out of memory or descriptors with none in reserve: rest rather than spin.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return true;
    }

    // With the state's lock held: a client for the broker; the node's thread
    // may then have a new deadline to keep, or adds to run.
    void adopt(int fd) {
        if (broker_->adopt(fd, false)) wake();
    }

    void poke_acceptor() noexcept {
        const std::uint64_t one = 1;
        (void)!::write(accept_wake_fd_, &one, sizeof one);
    }

    // Under the state's lock, which it lets go while the acceptor finishes.
    void stop_acceptor(std::unique_lock<std::mutex>& state) {
        if (!acceptor_.joinable()) return;
        acceptor_stopping_ = true;
        ::shutdown(broker_->listen_fd(), SHUT_RD);  // accept() returns (EINVAL)
        poke_acceptor();                            // and so does its epoll_wait()
        state.unlock();
        acceptor_.join();
        state.lock();
    }

    // --- accept groups: a PipeServer's idle threads accept its clients ----------------

public:
    std::error_code join_group(int epoll, std::uint64_t tag) noexcept {
        std::lock_guard state(state_mutex_);
        try {
            groups_.push_back({epoll, tag});
        } catch (const std::bad_alloc&) {
            return errc::resource_exhausted;
        }
        if (role_ == Role::broker) attach_listener();
        return {};
    }

    void leave_group(int epoll) noexcept {
        std::lock_guard state(state_mutex_);
        std::erase_if(groups_, [&](const Group& g) { return g.epoll == epoll; });
        if (role_ != Role::broker) return;
        ::epoll_ctl(epoll, EPOLL_CTL_DEL, broker_->listen_fd(), nullptr);
        if (groups_.empty()) groups_listening_ = false;
        poke_acceptor();  // a client whose wake-up went to the group's set is its now
    }

    void accept_waiting(ClientCatcher& catcher) noexcept {
        std::lock_guard state(state_mutex_);
        if (role_ != Role::broker || !groups_listening_.load() || acceptor_stopping_.load()) return;
        const int listen_fd = broker_->listen_fd();
        catching_here = &catcher;
        for (;;) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) {
                adopt(fd);
                continue;
            }
            if (errno == EINTR || errno == ECONNABORTED) continue;
            // All taken; or out of descriptors, which the acceptor deals with.
            if (errno != EAGAIN && errno != EWOULDBLOCK) poke_acceptor();
            break;
        }
        catching_here = nullptr;
    }

private:
    // With the state's lock, as broker: the listening socket in every group's
    // set, then in the acceptor's, last (a set's place is where it was added).
    // Undone whole if any step fails: the acceptor then accepts everything.
    void attach_listener() {
        const int fd = broker_->listen_fd();
        const auto add = [fd](int epoll, std::uint64_t tag) {
            epoll_event e{};
            e.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;
            e.data.u64 = tag;
            return ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &e) == 0 || errno == EEXIST;
        };
        bool ok = !groups_.empty();
        if (ok && !listener_nonblocking_.load()) {
            ok = !set_nonblocking(fd, true);
            if (ok) listener_nonblocking_ = true;
        }
        for (const auto& g : groups_) ok = ok && add(g.epoll, g.tag);
        ::epoll_ctl(accept_epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        const bool acceptor_listens = add(accept_epoll_fd_, 0);
        if (ok && acceptor_listens) {
            groups_listening_ = true;
            return;
        }
        for (const auto& g : groups_) ::epoll_ctl(g.epoll, EPOLL_CTL_DEL, fd, nullptr);
        groups_listening_ = false;
        poke_acceptor();
    }

    // No role yet, or the broker went away: become the broker, or join it.
    void establish() {
        if (files_.try_become_broker()) {
            test_stop_point("broker-locked");
            auto broker = std::make_unique<Broker>(files_, epoll_fd_,
                                                   [this](std::uint64_t id, int fd, const std::string& user, std::uint64_t hand_off,
                                                          const std::string& computer) { deliver(id, fd, user, hand_off, computer); });
            if (auto ec = broker->start()) {
                files_.release_broker();
                return setback(ec);
            }
            for (auto& [id, slot] : slots_)
                if (slot->registered) broker->restore_local(id, slot->params, slot->listening_since);
            broker_ = std::move(broker);
            listener_nonblocking_ = false;  // as the broker's start left it
            attach_listener();
            try {
                acceptor_ = std::thread([this, fd = broker_->listen_fd()] { accept_loop(fd); });
            } catch (const std::system_error&) {
                broker_.reset();
                groups_listening_ = false;
                files_.release_broker();
                return setback(errc::resource_exhausted);
            }
            role_ = Role::broker;
            // What a dead broker never answered is decided here now, first, once
            // this broker has heard from the other server processes.
            {
                std::lock_guard queue(mutex_);
                for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) commands_.push_front(it->second);
            }
            in_flight_.clear();
            return;
        }
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return setback(last_error());
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const auto path = files_.broker_socket_address();
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
            const int error = errno;
            ::close(fd);
            // The broker is starting, or has just died and another server is taking over.
            const bool passing = error == ENOENT || error == ECONNREFUSED || error == EAGAIN;
            return setback(passing ? std::error_code{} : detail::error_from_errno(error));
        }
        uid_t uid;
        pid_t pid;
        if (!peer_credentials(fd, uid, pid) || uid != ::geteuid()) {
            ::close(fd);
            return setback(errc::access_denied);
        }
        test_stop_point("member-connected");
        link_ = ControlLink(fd);
        epoll_event e{};
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.u64 = event_tag(EventKind::link, 0);
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) < 0) {  // unwatched, its end would go unseen
            link_ = ControlLink();
            return setback(last_error());
        }
        role_ = Role::member;
        backoff_ms_ = 1;
        setback_ = {};
        std::uint32_t restores = 0;
        for (auto& [id, slot] : slots_) restores += slot->registered ? 1 : 0;
        bool ok = link_.send(control(detail::ControlOp::join, restores, 0, {}));  // request: how many restores follow
        for (auto& [id, slot] : slots_) {
            if (!slot->registered) continue;
            auto c = control(detail::ControlOp::restore, 0, id, slot->params);
            c.listening_since = slot->listening_since;
            ok = ok && link_.send(c);
        }
        for (auto& [request, cmd] : in_flight_) {  // sent to a broker that died: ask this one
            const auto op = cmd->kind == Command::add ? detail::ControlOp::add : detail::ControlOp::remove;
            ok = ok && link_.send(control(op, request, cmd->slot->id, cmd->slot->params));
        }
        if (!ok) lose_broker();
        update_link_interest();
    }

    void setback(std::error_code ec) {
        setback_ = ec;
        retry_at_ = steady_now_ns() + backoff_ms_ * 1'000'000LL;
        backoff_ms_ = std::min(backoff_ms_ * 2, 20);
    }

    static detail::Control control(detail::ControlOp op, std::uint32_t request, std::uint64_t instance,
                                   const detail::InstanceParams& params) {
        detail::Control c;
        c.op = op;
        c.request = request;
        c.instance = instance;
        c.params = params;
        return c;
    }

    void run_commands() {
        for (;;) {
            std::shared_ptr<Command> cmd;
            {
                std::lock_guard lock(mutex_);
                if (commands_.empty()) return;
                cmd = commands_.front();
                // With no broker yet, an add waits, unless the way to one failed for a reason of its own;
                // and while a new broker hears from the other server processes, too.
                // (Not when stopping: the add's caller has given up.)
                if (role_ == Role::none && cmd->kind == Command::add && !setback_ && !stopping_) return;
                if (role_ == Role::broker && cmd->kind == Command::add && !stopping_ && !broker_->settled()) return;
                commands_.pop_front();
            }
            switch (role_) {
            case Role::broker: run_as_broker(cmd); break;
            case Role::member: run_as_member(cmd); break;
            case Role::none: run_without_broker(cmd); break;
            }
        }
    }

    void run_as_broker(const std::shared_ptr<Command>& cmd) {
        auto& slot = cmd->slot;
        switch (cmd->kind) {
        case Command::add: {
            // Known before the broker can hand it a waiting client (add_local serves them at once).
            slots_[slot->id] = slot;
            slot->listening_since = cmd->since;
            slot->pipe = slot->params;
            detail::InstanceParams pipe = slot->params;
            const auto ec = broker_->add_local(slot->id, slot->params, cmd->since, pipe);
            if (!ec) {
                slot->registered = true;
                slot->pipe = pipe;
            } else {
                slots_.erase(slot->id);
            }
            if (cmd->complete(ec, pipe) && !ec) undo(slot);
            break;
        }
        case Command::remove:
            broker_->remove_local(slot->id);
            slots_.erase(slot->id);
            cmd->complete({}, {});
            break;
        case Command::listen:
            slot->listening_since = cmd->since;
            broker_->listen_local(slot->id, cmd->since);
            break;
        }
    }

    void run_as_member(const std::shared_ptr<Command>& cmd) {
        auto& slot = cmd->slot;
        bool ok = true;
        switch (cmd->kind) {
        case Command::add:
            cmd->request = next_request_++;
            in_flight_[cmd->request] = cmd;
            slots_[slot->id] = slot;
            ok = link_.send(control(detail::ControlOp::add, cmd->request, slot->id, slot->params));
            test_stop_point("member-adding");
            break;
        case Command::remove:
            slots_.erase(slot->id);
            cmd->request = next_request_++;
            in_flight_[cmd->request] = cmd;
            ok = link_.send(control(detail::ControlOp::remove, cmd->request, slot->id, slot->params));
            break;
        case Command::listen: {
            slot->listening_since = cmd->since;
            auto c = control(detail::ControlOp::listen, 0, slot->id, slot->params);
            c.listening_since = cmd->since;
            ok = link_.send(c);
            break;
        }
        }
        if (!ok) lose_broker();
        else update_link_interest();
    }

    void run_without_broker(const std::shared_ptr<Command>& cmd) {
        auto& slot = cmd->slot;
        switch (cmd->kind) {
        case Command::add:  // no broker can be reached, for a reason (or this node is stopping)
            cmd->complete(setback_ ? setback_ : make_error_code(errc::timed_out), {});
            break;
        case Command::remove:
            slots_.erase(slot->id);  // never restored to the next broker
            cmd->complete({}, {});
            break;
        case Command::listen: slot->listening_since = cmd->since; break;
        }
    }

    // An add whose caller gave up: take it back.
    void undo(const std::shared_ptr<InstanceSlot>& slot) {
        auto cmd = std::make_shared<Command>();
        cmd->kind = Command::remove;
        cmd->slot = slot;
        if (role_ == Role::broker) run_as_broker(cmd);
        else if (role_ == Role::member) run_as_member(cmd);
        else slots_.erase(slot->id);
    }

    void on_link_event(std::uint32_t events) {
        if ((events & EPOLLOUT) && !link_.flush()) return lose_broker();
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
            const bool alive = link_.receive([&](const detail::Control& c, int fd) { on_broker_frame(c, fd); });
            if (!alive) return lose_broker();
        }
        update_link_interest();
    }

    void on_broker_frame(const detail::Control& c, int fd) {
        if (c.op == detail::ControlOp::client) {
            test_stop_point("member-got-client");
            return deliver(c.instance, fd, c.remote_user, c.hand_off, c.remote_computer);
        }
        if (fd >= 0) ::close(fd);
        if (c.op != detail::ControlOp::reply) return;
        const auto it = in_flight_.find(c.request);
        if (it == in_flight_.end()) return;
        const auto cmd = it->second;
        in_flight_.erase(it);
        const auto ec = as_portable(c.result);
        if (cmd->kind == Command::add) {
            if (ec) {
                slots_.erase(cmd->slot->id);
            } else {
                cmd->slot->registered = true;
                cmd->slot->listening_since = c.listening_since;
                cmd->slot->pipe = c.params;
            }
        }
        if (cmd->complete(ec, c.params) && cmd->kind == Command::add && !ec) undo(cmd->slot);
    }

    void update_link_interest() {
        if (role_ != Role::member) return;
        epoll_event e{};
        e.events = EPOLLIN | EPOLLRDHUP | (link_.wants_to_write() ? EPOLLOUT : 0u);
        e.data.u64 = event_tag(EventKind::link, 0);
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, link_.fd(), &e);
    }

    // The broker's process exited or died: take over, or join whoever does.
    void lose_broker() {
        link_ = ControlLink();  // closing it leaves the epoll set
        role_ = Role::none;
        retry_at_ = 0;
        backoff_ms_ = 1;
    }

    // A client for one of this process's instances. This process answers it,
    // with the instance published under its lock, so the client's open
    // returns only once accept() can see it. `fd` is the client's connection;
    // with `hand_off`, a gateway's of this process, whose own network
    // connection the instance then takes and answers instead (hand_off.hpp).
    void deliver(std::uint64_t instance, int fd, const std::string& remote_user, std::uint64_t hand_off,
                 const std::string& remote_computer) {
        const auto it = slots_.find(instance);
        if (it == slots_.end()) {
            ::close(fd);  // removed meanwhile: the client asks again
            return;
        }
        const auto held = it->second;  // its doorbell is rung after its lock is let go
        auto& slot = *held;
        const auto& pipe = role_ == Role::broker ? broker_->pipe() : slot.pipe;
        detail::OpenReply reply;
        reply.type = pipe.type;
        reply.max_instances = pipe.max_instances;
        reply.in_buffer = slot.params.in_buffer;
        reply.out_buffer = slot.params.out_buffer;
        reply.server_pid = static_cast<std::uint32_t>(::getpid());
        reply.server_uid = ::geteuid();
        HandedClient client;
        client.remote_user = remote_user;
        client.remote_computer = remote_computer;
        if (hand_off && deliver_network(slot, fd, reply, hand_off, client)) return;
        int page = -1;  // the flow page's, sent with the reply
        uid_t uid = 0;
        pid_t pid = 0;
        if (!peer_credentials(fd, uid, pid) || FlowPage::for_client(slot.spare_flow, pid, uid, client.flow, page)) {
            // Out of descriptors or memory: the client is told so; the instance listens on.
            (void)send_all_now(fd, detail::encode_open_reply({errc::resource_exhausted}));
            ::close(fd);
            fd = -1;
        }
        if (fd >= 0) {
            std::unique_lock lock(slot.mutex);
            if (slot.gone) {
                ::close(fd);
                return;
            }
            if (slot.client.fd < 0 && send_all_now(fd, detail::encode_open_reply(reply), page)) {
                client.flow->sent_to_client();
                client.fd = fd;
                slot.client = std::move(client);
                slot.listening_since = -1;
                lock.unlock();
                return ring(slot);
            }
        }
        if (fd >= 0) ::close(fd);  // the client left before its answer: the instance listens on, in its place
        listen_on(instance, slot);
    }

    // The hand-off (hand_off.hpp): the gateway's network connection is claimed
    // only by an instance that can serve it at once, since from the claim on it
    // is the instance's to close. The gateway's own connection `fd` hears the
    // same answer and ends; with none claimed (the slot busy or gone, or the
    // offer withdrawn) false, and `fd` is served as any client's.
    bool deliver_network(InstanceSlot& slot, int fd, const detail::OpenReply& reply, std::uint64_t hand_off,
                         HandedClient& client) {
        Offered network;
        bool taken = false;
        // No page across hosts: the network connection has no quota (docs/gateway.md).
        // Made first: nothing may fail between the claim and the socket's new owner.
        client.flow = FlowPage::unshared(true);
        {
            std::unique_lock lock(slot.mutex);
            if (slot.gone || slot.client.fd >= 0 || !claim_connection(hand_off, network)) return false;
            client.network = std::move(network.lease);
            client.fd = network.fd;
            if (send_all_now(network.fd, detail::encode_open_reply(reply))) {
                slot.client = std::exchange(client, HandedClient{});
                slot.listening_since = -1;
                taken = true;
            }
        }
        if (!taken) close_client(std::exchange(client, HandedClient{}));  // its client went before the answer
        (void)send_all_now(fd, detail::encode_open_reply(reply));        // the gateway finds its offer taken
        ::close(fd);
        if (taken) ring(slot);
        else listen_on(slot.id, slot);
        return true;
    }

    // The instance has its client: the thread that serves it is told.
    void ring(InstanceSlot& slot) {
        std::unique_lock lock(slot.mutex);
        // A server thread accepting for its group serves it itself: no thread woken.
        if (catching_here && slot.doorbell_pinned) {
            const int pinned = slot.doorbell;
            lock.unlock();
            if (catching_here->take(pinned)) return;
            lock.lock();
        }
        // Nobody waits without a doorbell: one made later is rung as it is made.
        const std::uint64_t one = 1;
        if (slot.doorbell >= 0) (void)!::write(slot.doorbell, &one, sizeof one);
    }

    // A client that left before its answer: the instance listens on, in its place.
    void listen_on(std::uint64_t instance, InstanceSlot& slot) {
        if (role_ == Role::broker) {
            broker_->listen_local(instance, slot.listening_since);
        } else if (role_ == Role::member) {
            auto c = control(detail::ControlOp::listen, 0, instance, slot.params);
            c.listening_since = slot.listening_since;
            if (!link_.send(c)) lose_broker();
        }
    }

    void shut_down() {
        if (role_ == Role::broker) {
            // The last server process removes the name; otherwise another takes over.
            const bool last = !broker_->serves_other_processes() && files_.only_member();
            broker_.reset();
            if (last) {
                files_.remove();
            } else {
                files_.release_broker();
                if (files_.last_to_leave()) files_.remove();  // the others left meanwhile
            }
        } else if (files_.last_to_leave()) {
            files_.remove();  // the last to leave, or no broker to be had: a dead one's leftovers
        }
        link_ = ControlLink();
        role_ = Role::none;
    }

public:
    // A node whose start failed: what it made of the name goes, unless another server has it.
    void forget_files() noexcept {
        if (files_.joined() && files_.only_member()) files_.remove();
    }

private:

    NameFiles files_;
    int epoll_fd_ = -1, wake_fd_ = -1;
    std::thread thread_;
    std::thread acceptor_;  // while broker
    std::atomic<bool> acceptor_stopping_{false};
    int accept_epoll_fd_ = -1, accept_wake_fd_ = -1;  // the acceptor waits there while groups listen
    struct Group {
        int epoll;
        std::uint64_t tag;
    };
    std::vector<Group> groups_;                    // under the state's lock
    std::atomic<bool> groups_listening_{false};    // written under it
    std::atomic<bool> listener_nonblocking_{false};  // written under it
    // The role and everything below it: the node's thread holds it but while
    // it waits in epoll; the broker's own process runs commands under it too.
    std::mutex state_mutex_;
    std::mutex mutex_;  // commands_, stopping_ (taken after state_mutex_)
    std::deque<std::shared_ptr<Command>> commands_;
    bool stopping_ = false;

    // The thread's own.
    enum class Role { none, broker, member } role_ = Role::none;
    std::unique_ptr<Broker> broker_;
    ControlLink link_;
    std::map<std::uint64_t, std::shared_ptr<InstanceSlot>> slots_;
    std::map<std::uint32_t, std::shared_ptr<Command>> in_flight_;
    std::uint32_t next_request_ = 1;
    Nanos retry_at_ = 0;
    int backoff_ms_ = 1;
    std::error_code setback_;  // why the last try to reach a broker failed, if for a reason of its own
};


// --- the process's nodes: one per name ----------------------------------------------------

namespace {

struct Registry {
    std::mutex mutex;
    struct Entry {
        std::shared_ptr<NameNode> node;
        std::size_t users = 0;
    };
    std::map<std::string, Entry> nodes;
};

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed: instances may outlive static destruction
    return *r;
}

std::error_code acquire(const Name& name, std::shared_ptr<NameNode>& out) {
    auto& r = registry();
    const std::string key = name_key(name);
    std::lock_guard lock(r.mutex);
    auto& entry = r.nodes[key];
    if (!entry.node) {
        auto node = std::make_shared<NameNode>();
        if (auto ec = node->start(name)) {
            node->stop();
            node->forget_files();
            r.nodes.erase(key);
            return ec;
        }
        entry.node = std::move(node);
    }
    ++entry.users;
    out = entry.node;
    return {};
}

void release(std::shared_ptr<NameNode>& node, const std::string& key) {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    const auto it = r.nodes.find(key);
    if (it != r.nodes.end() && it->second.node == node && --it->second.users == 0) {
        it->second.node->stop();  // under the lock: a new create of the name waits for it
        r.nodes.erase(it);
    }
    node.reset();
}

std::atomic<std::uint64_t> next_instance_id{1};

}  // namespace

// --- InstanceRegistration -----------------------------------------------------------------

InstanceRegistration::InstanceRegistration() noexcept = default;
InstanceRegistration::InstanceRegistration(InstanceRegistration&& o) noexcept { *this = std::move(o); }
InstanceRegistration& InstanceRegistration::operator=(InstanceRegistration&& o) noexcept {
    if (this != &o) {
        reset();
        node_ = std::move(o.node_);
        slot_ = std::move(o.slot_);
        key_ = std::move(o.key_);
        pipe_ = o.pipe_;
        registered_ = std::exchange(o.registered_, false);
    }
    return *this;
}
InstanceRegistration::~InstanceRegistration() { reset(); }

void InstanceRegistration::reset() noexcept {
    if (!node_) return;
    if (slot_ && registered_) node_->remove(slot_);
    release(node_, key_);
    slot_.reset();
    registered_ = false;
}

std::error_code InstanceRegistration::create(const Name& name, const detail::InstanceParams& params,
                                             InstanceRegistration& out) {
    out.reset();
    out.key_ = name_key(name);
    if (auto ec = acquire(name, out.node_)) return ec;
    out.slot_ = std::make_shared<InstanceSlot>(next_instance_id++);
    out.slot_->params = params;
    if (auto ec = out.node_->add(out.slot_, out.pipe_)) {
        out.reset();
        return ec;
    }
    out.registered_ = true;
    return {};
}

int InstanceRegistration::doorbell() const noexcept {
    if (!slot_) return -1;
    std::lock_guard lock(slot_->mutex);
    return slot_->doorbell_locked();
}

int InstanceRegistration::pinned_doorbell() const noexcept {
    if (!slot_) return -1;
    std::lock_guard lock(slot_->mutex);
    slot_->doorbell_pinned = true;
    return slot_->doorbell_locked();
}

bool InstanceRegistration::take_client(HandedClient& out) noexcept {
    if (!slot_) return false;
    std::lock_guard lock(slot_->mutex);
    out = std::exchange(slot_->client, HandedClient{});
    if (slot_->doorbell >= 0) {
        if (out.fd >= 0 && !slot_->doorbell_pinned) {
            ::close(slot_->doorbell);  // made again when the instance next waits
            slot_->doorbell = -1;
        } else {
            std::uint64_t count;
            (void)!::read(slot_->doorbell, &count, sizeof count);
        }
    }
    return out.fd >= 0;
}

void close_client(HandedClient client) noexcept {
    if (client.fd < 0) return;
    if (!client.network) {
        ::close(client.fd);
        return;
    }
    client.network.reset();  // before the descriptor may be reused (hand_off.hpp)
    ::shutdown(client.fd, SHUT_WR);
    close_network_connection(client.fd);
}

std::error_code InstanceRegistration::join_group(int epoll, std::uint64_t tag) noexcept {
    return node_ ? node_->join_group(epoll, tag) : make_error_code(errc::invalid_argument);
}
void InstanceRegistration::leave_group(int epoll) noexcept {
    if (node_) node_->leave_group(epoll);
}
void InstanceRegistration::accept_waiting(ClientCatcher& catcher) noexcept {
    if (node_) node_->accept_waiting(catcher);
}

void InstanceRegistration::listen_again() noexcept {
    if (node_ && slot_) node_->listen(slot_);
}

}  // namespace pipeslot::posix
