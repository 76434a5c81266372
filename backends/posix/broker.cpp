#include "broker.hpp"

#include "fd.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <limits>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pipeslot::posix {
namespace {

// Connections that have not sent their first frame: past this many the oldest
// is closed, so idle connects can never lock anyone out.
constexpr std::size_t max_handshaking = 1024;
// Clients waiting for a free instance; past this, pipe_busy at once.
constexpr std::size_t max_waiting = 4096;
// How long a new broker waits for the other server processes to tell it their instances.
constexpr Nanos settle_patience_ns = 2'000'000'000;

}  // namespace

std::int64_t handshake_timeout_ms() noexcept {
    if (const char* text = std::getenv("PIPESLOT_HANDSHAKE_TIMEOUT_MS"); text && *text) {
        char* end = nullptr;
        const long long value = std::strtoll(text, &end, 10);
        if (end && *end == '\0' && value > 0 && value <= 3'600'000) return value;
    }
    return 5000;
}

Broker::Broker(NameFiles& files, int epoll_fd, Deliver deliver)
    : files_(files), epoll_fd_(epoll_fd), deliver_(std::move(deliver)),
      handshake_timeout_ns_(handshake_timeout_ms() * 1'000'000) {
    // Held back for the moment descriptors run out: freed to accept and refuse one client.
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Broker::~Broker() {
    // Clients still connecting see their connection close before a reply and
    // ask again, of the next broker; server processes take over the name.
    for (auto& [id, c] : connections_) ::close(c.fd);
    members_.clear();
    for (int fd : {listen_fd_, door_fd_, reserve_fd_})
        if (fd >= 0) ::close(fd);
}

void Broker::watch(int fd, std::uint64_t tag, std::uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) < 0 && errno == EEXIST)
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &e);
}

std::error_code Broker::start() {
    settle_by_ = steady_now_ns() + settle_patience_ns;
    if (auto ec = files_.bind_broker_socket(listen_fd_)) return ec;
    // Its node's acceptor thread sleeps inside accept() on it, unless accept
    // groups listen too: then the node makes it non-blocking (name_node.cpp).
    const int flags = ::fcntl(listen_fd_, F_GETFL);
    if (flags < 0 || ::fcntl(listen_fd_, F_SETFL, flags & ~O_NONBLOCK) < 0) return last_error();
    return {};
}

std::error_code Broker::open_door_if_needed() {
    if (door_fd_ >= 0 || !state_.params().allow_other_users || state_.empty()) return {};
    if (auto ec = files_.bind_door(door_fd_)) return ec;
    watch(door_fd_, event_tag(EventKind::door), EPOLLIN);
    return {};
}

// --- this process's instances --------------------------------------------------------

std::error_code Broker::add_local(std::uint64_t id, const detail::InstanceParams& wanted, Nanos since,
                                  detail::InstanceParams& pipe) {
    const InstanceKey key{0, id};
    if (auto ec = add_instance(key, wanted, since)) return ec;
    if (auto ec = open_door_if_needed()) {
        state_.remove(key);
        return ec;
    }
    pipe = state_.params();
    serve_waiting();
    reap_members();
    return {};
}

void Broker::restore_local(std::uint64_t id, const detail::InstanceParams& params, Nanos listening_since) {
    state_.restore({0, id}, params, listening_since);
    (void)open_door_if_needed();  // best effort: the instance itself is not refused
}

void Broker::remove_local(std::uint64_t id) {
    state_.remove({0, id});
    expire(steady_now_ns());
}

void Broker::listen_local(std::uint64_t id, Nanos since) {
    state_.listen({0, id}, since);
    serve_waiting();
    reap_members();
}

// --- events ---------------------------------------------------------------------------------

void Broker::on_event(std::uint64_t tag, std::uint32_t events) {
    handle_event(tag, events);
    reap_members();
}

void Broker::handle_event(std::uint64_t tag, std::uint32_t events) {
    const auto id = event_id(tag);
    switch (event_kind(tag)) {
    case EventKind::door: accept_all(door_fd_, true); break;
    case EventKind::connection: {
        const auto it = connections_.find(id);
        if (it == connections_.end()) break;
        // A waiting client sends nothing: any event means it left (or misbehaves).
        if (it->second.waiting) close_connection(id);
        else read_first_frame(id);
        break;
    }
    case EventKind::link: {
        Member* m = live_member(id);
        if (!m) break;
        if ((events & EPOLLOUT) && !m->link.flush()) return drop_member(id);
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
            // The callbacks may drop this member (its link stays until reap_members()).
            const bool alive =
                m->link.receive([&](const detail::Control& control, int fd) { on_member_frame(id, control, fd); });
            if (!alive) return drop_member(id);
        }
        update_member_interest(id);
        break;
    }
    case EventKind::wake: break;
    }
}

void Broker::accept_all(int listen_fd, bool via_door) {
    for (;;) {
        // Blocking, as the channel it becomes wants it; the broker's own calls on it never wait (MSG_DONTWAIT).
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            adopt(fd, via_door);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
            if (refuse_for_lack_of_descriptors(listen_fd)) continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_listener(listen_fd);
        return;  // EAGAIN: all taken
    }
}

bool Broker::refuse_for_lack_of_descriptors(int listen_fd) {
    if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // lost to another thread last time
    if (reserve_fd_ < 0) return false;
    // Out of descriptors: tell one client so, rather than leave it hanging.
    ::close(reserve_fd_);
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
        (void)send_all_now(fd, detail::encode_open_reply({errc::resource_exhausted}));
        ::close(fd);
    }
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

bool Broker::adopt(int fd, bool via_door) {
    Connection c;
    c.fd = fd;
    c.via_door = via_door;
    // Only this user reaches the private socket; checked anyway.
    if (!peer_credentials(fd, c.uid, c.pid) || (!via_door && c.uid != ::geteuid())) {
        ::close(fd);
        return false;
    }
    std::size_t handshaking = 0;
    std::uint64_t oldest = 0;
    for (const auto& [cid, other] : connections_) {
        if (other.waiting) continue;
        if (handshaking++ == 0) oldest = cid;
    }
    if (handshaking >= max_handshaking) close_connection(oldest);
    c.handshake_until = steady_now_ns() + handshake_timeout_ns_;
    const auto id = next_id_++;
    connections_.emplace(id, std::move(c));
    // Usually there already: then decided at once, and never watched (adding a
    // readable socket to the epoll set would wake the node's thread for nothing).
    read_first_frame(id);
    const auto it = connections_.find(id);
    if (it != connections_.end()) {
        it->second.watched = true;
        watch(fd, event_tag(EventKind::connection, id), EPOLLIN | EPOLLRDHUP);
    }
    reap_members();
    // Still held, or now a member (its join may have settled a new broker:
    // the node's thread then has adds to run).
    return it != connections_.end() || members_.count(id) != 0;
}

// Reads exactly the first frame (what follows is the channel's, for the server).
void Broker::read_first_frame(std::uint64_t id) {
    auto& c = connections_.at(id);
    detail::FrameKind kind{};
    for (;;) {
        const std::size_t have = c.bytes.size();
        // Before its header is in, as much as an open frame with an empty
        // remote user, the usual first frame (one recv for it all). An older
        // peer's open is a byte shorter: that recv returns what there is, as
        // the peer sends nothing more before its answer.
        std::size_t want = detail::frame_header_size + detail::open_request_size + 1;
        if (have >= detail::frame_header_size) {
            const auto header = detail::decode_header(
                std::span<const std::byte, detail::frame_header_size>(c.bytes.data(), detail::frame_header_size));
            const bool expected = header && (header->kind == detail::FrameKind::open ||
                                             (header->kind == detail::FrameKind::control && !c.via_door));
            if (!expected) return close_connection(id);
            kind = header->kind;
            want = detail::frame_header_size + header->length;
            if (have > want) return close_connection(id);  // too short for its kind
            if (have == want) break;
        }
        c.bytes.resize(want);
        const ssize_t n = ::recv(c.fd, c.bytes.data() + have, want - have, MSG_DONTWAIT);
        if (n <= 0) {
            c.bytes.resize(have);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;  // more later
            return close_connection(id);
        }
        c.bytes.resize(have + static_cast<std::size_t>(n));
        if (c.bytes.size() < detail::frame_header_size) return;  // the rest later (a header is judged at once)
    }
    const auto payload = std::span<const std::byte>(c.bytes).subspan(detail::frame_header_size);
    if (kind == detail::FrameKind::control) {
        const auto control = detail::decode_control(payload);
        if (!control || control->op != detail::ControlOp::join) return close_connection(id);
        return promote_to_member(id, control->request);
    }
    auto request = detail::decode_open(payload);
    if (!request) return close_connection(id);
    decide(id, *request);
}

void Broker::decide(std::uint64_t id, detail::OpenRequest request) {
    auto& connection = connections_.at(id);
    // Through the door, a pipe that is not open to others does not exist.
    if (connection.via_door && !state_.params().allow_other_users) return refuse(id, errc::not_found);
    // Only this user's own processes (a gateway) may say who a remote client is.
    if (request.remote && !connection.via_door) {
        connection.remote_user = request.remote_user;
        connection.hand_off = request.hand_off;
        connection.remote_computer = request.remote_computer;
    }
    if (request.query) return answer_free(id);  // the count rides in every such answer
    if (state_.waiting_count() >= max_waiting) {  // no room to wait: as if it had asked not to
        request.wait_ms = 0;
        request.use_server_default_wait = false;
    }
    const auto d = state_.open(id, request, steady_now_ns());
    switch (d.kind) {
    case NameState::Decision::connect: return hand_over(id, d.instance);
    case NameState::Decision::free: return answer_free(id);
    case NameState::Decision::refuse: return refuse(id, d.error);
    case NameState::Decision::wait: connections_.at(id).waiting = true; return;
    }
}

// The instance's own process answers the client (name_node.cpp), so that the
// client's open returns only once the instance has it: its accept() then
// reports the client as already connected, as on Windows.
void Broker::hand_over(std::uint64_t client, InstanceKey key) {
    auto node = connections_.extract(client);
    const int fd = node.mapped().fd;
    if (node.mapped().watched) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    // A gateway's own connection goes only to an instance of the gateway's
    // process (hand_off.hpp): its token means nothing anywhere else.
    const auto& asked = node.mapped();
    if (key.member == 0)
        return deliver_(key.instance, fd, asked.remote_user,
                        asked.hand_off && asked.pid > 0 && asked.pid == ::getpid() ? asked.hand_off : 0, asked.remote_computer);
    Member* m = live_member(key.member);
    if (!m) {
        ::close(fd);  // its process went meanwhile: the client asks again
        return;
    }
    detail::Control control;
    control.op = detail::ControlOp::client;
    control.instance = key.instance;
    control.params = state_.params();
    control.remote_user = asked.remote_user;
    control.remote_computer = asked.remote_computer;
    control.hand_off = asked.pid > 0 && asked.pid == m->pid ? asked.hand_off : 0;  // pid 0: not seen from here
    if (!m->link.send(control, fd)) return drop_member(key.member);
    update_member_interest(key.member);
}

// A wait only (WaitNamedPipe): "an instance is free"; or a query: how many
// there are. Then goodbye.
void Broker::answer_free(std::uint64_t client) {
    const auto it = connections_.find(client);
    if (it == connections_.end()) return;
    if (state_.empty()) return refuse(client, errc::not_found);
    detail::OpenReply reply;
    reply.type = state_.params().type;
    reply.max_instances = state_.params().max_instances;
    reply.current_instances = static_cast<std::uint16_t>(std::min<std::size_t>(state_.instance_count(), 0xFFFF));
    (void)send_all_now(it->second.fd, detail::encode_open_reply(reply));
    close_connection(client);
}

void Broker::refuse(std::uint64_t client, errc why) {
    const auto it = connections_.find(client);
    if (it == connections_.end()) return;
    (void)send_all_now(it->second.fd, detail::encode_open_reply({why}));
    close_connection(client);
}

void Broker::close_connection(std::uint64_t id) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) return;
    ::close(it->second.fd);  // leaves the epoll set with it
    state_.forget_client(id);
    connections_.erase(it);
}

void Broker::serve_waiting() {
    for (const auto& [client, instance, refused] : state_.serve_waiting()) {
        if (instance) hand_over(client, *instance);
        else if (refused != errc{}) refuse(client, refused);
        else answer_free(client);
    }
}

void Broker::expire(Nanos now) {
    for (const auto& [client, why] : state_.expire_waiting(now)) refuse(client, why);
}

int Broker::timeout_ms() const {
    Nanos first = std::numeric_limits<Nanos>::max();
    for (const auto& [id, c] : connections_)
        if (!c.waiting) first = std::min(first, c.handshake_until);
    if (const auto expiry = state_.next_expiry()) first = std::min(first, *expiry);
    if (!settled_) first = std::min(first, settle_by_);
    if (listener_paused_until_ != 0) first = std::min(first, listener_paused_until_);
    if (first == std::numeric_limits<Nanos>::max()) return -1;
    const Nanos left = first - steady_now_ns();
    if (left <= 0) return 0;
    return static_cast<int>(std::min<Nanos>((left + 999'999) / 1'000'000, 3'600'000));
}

void Broker::on_timeout() {
    (void)settled();
    const Nanos now = steady_now_ns();
    if (listener_paused_until_ != 0 && now >= listener_paused_until_) {
        listener_paused_until_ = 0;
        if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (door_fd_ >= 0) watch(door_fd_, event_tag(EventKind::door), EPOLLIN);
    }
    std::vector<std::uint64_t> late;
    for (const auto& [id, c] : connections_)
        if (!c.waiting && c.handshake_until <= now) late.push_back(id);
    for (const auto id : late) close_connection(id);  // never touched an instance
    expire(now);
    reap_members();
}

// --- the name's other server processes --------------------------------------------------

void Broker::promote_to_member(std::uint64_t id, std::uint32_t restores_due) {
    auto node = connections_.extract(id);
    Member m;
    m.link = ControlLink(node.mapped().fd);
    m.uid = node.mapped().uid;
    m.pid = node.mapped().pid;
    m.restores_due = restores_due;
    members_.emplace(id, std::move(m));
    watch(members_.at(id).link.fd(), event_tag(EventKind::link, id), EPOLLIN | EPOLLRDHUP);
    handle_event(event_tag(EventKind::link, id), EPOLLIN);  // its restores usually came with the join
}

bool Broker::settled() {
    if (settled_) return true;
    std::size_t complete = 1;  // this process
    for (const auto& [id, m] : members_) complete += !m.dead && m.restores_due == 0 ? 1 : 0;
    if (steady_now_ns() < settle_by_ && complete < files_.member_count()) return false;
    settled_ = true;
    auto deferred = std::move(deferred_adds_);
    deferred_adds_.clear();
    for (const auto& [member, control] : deferred)
        if (live_member(member)) add_for_member(member, control);
    return true;
}

void Broker::add_for_member(std::uint64_t member, const detail::Control& control) {
    const InstanceKey key{member, control.instance};
    detail::Control reply;
    reply.op = detail::ControlOp::reply;
    reply.request = control.request;
    reply.listening_since = steady_now_ns();
    if (auto ec = add_instance(key, control.params, reply.listening_since)) {
        reply.result = static_cast<errc>(ec.value());
    } else if (auto door = open_door_if_needed()) {
        state_.remove(key);
        reply.result = door.category() == category() ? static_cast<errc>(door.value()) : errc::resource_exhausted;
    }
    reply.params = state_.empty() ? control.params : state_.params();
    send_to_member(member, reply);
    serve_waiting();
}

Broker::Member* Broker::live_member(std::uint64_t id) {
    const auto it = members_.find(id);
    return it == members_.end() || it->second.dead ? nullptr : &it->second;
}

void Broker::send_to_member(std::uint64_t member, const detail::Control& control) {
    if (Member* m = live_member(member); m && !m->link.send(control)) drop_member(member);
}

void Broker::reap_members() {
    std::erase_if(members_, [](const auto& entry) { return entry.second.dead; });  // links close, leave epoll
}

void Broker::on_member_frame(std::uint64_t member, const detail::Control& control, int fd) {
    if (fd >= 0) ::close(fd);  // members pass no descriptors
    if (!live_member(member)) return;  // dropped while its frames were being read
    const InstanceKey key{member, control.instance};
    detail::Control reply;
    reply.op = detail::ControlOp::reply;
    reply.request = control.request;
    switch (control.op) {
    case detail::ControlOp::add:
        if (!settled()) return deferred_adds_.emplace_back(member, control), void();
        return add_for_member(member, control);
    case detail::ControlOp::restore: {
        auto& due = live_member(member)->restores_due;
        if (due > 0) --due;
        state_.restore(key, control.params, control.listening_since);
        (void)open_door_if_needed();
        (void)settled();
        return serve_waiting();
    }
    case detail::ControlOp::listen: state_.listen(key, control.listening_since); return serve_waiting();
    case detail::ControlOp::remove:
        state_.remove(key);
        reply.params = state_.empty() ? control.params : state_.params();
        send_to_member(member, reply);
        return expire(steady_now_ns());
    default: return;  // join twice, or a broker's frame: ignored
    }
}

std::error_code Broker::add_instance(InstanceKey key, const detail::InstanceParams& params, Nanos since) {
    auto ec = state_.add(key, params, since);
    if (ec == errc::too_many_instances && drop_dead_members()) ec = state_.add(key, params, since);
    return ec;
}

bool Broker::drop_dead_members() {
    std::vector<std::uint64_t> dead;
    for (const auto& [id, m] : members_) {
        if (m.dead) continue;
        pollfd p{m.link.fd(), POLLRDHUP, 0};
        if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) dead.push_back(id);
    }
    for (const auto id : dead) drop_member(id);
    return !dead.empty();
}

void Broker::drop_member(std::uint64_t member) {
    Member* m = live_member(member);
    if (!m) return;
    m->dead = true;
    std::erase_if(deferred_adds_, [&](const auto& d) { return d.first == member; });
    state_.remove_member(member);
    expire(steady_now_ns());
}

void Broker::update_member_interest(std::uint64_t member) {
    const Member* m = live_member(member);
    if (!m) return;
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP | (m->link.wants_to_write() ? EPOLLOUT : 0u);
    e.data.u64 = event_tag(EventKind::link, member);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, m->link.fd(), &e);
}

// Out of descriptors with none in reserve: the level-triggered listener would
// wake the thread at once, again and again; it rests for 10 ms instead.
void Broker::pause_listener(int fd) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    listener_paused_until_ = steady_now_ns() + 10'000'000;
}

}  // namespace pipeslot::posix
