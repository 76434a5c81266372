// The broker of one pipe name: the server process that owns the name's state
// (name_state.hpp) while it lives. It listens on the name's socket, where
// clients ask for an instance and the name's other server processes keep a
// control connection; it decides every open with the state machine and hands
// the client's connection to the instance's process (SCM_RIGHTS), or to an
// instance of its own. Runs under its node's state lock only (name_node.hpp):
// on the node's thread, its acceptor thread, or a caller of the node's.
#pragma once

#include "control_link.hpp"
#include "name_files.hpp"
#include "name_state.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <sys/types.h>
#include <system_error>
#include <vector>

namespace pipeslot::posix {

// What a node's epoll reports an event for: the kind in the top byte, an id below.
enum class EventKind : std::uint64_t { wake = 1, door = 3, connection, link };
inline std::uint64_t event_tag(EventKind kind, std::uint64_t id = 0) noexcept {
    return (static_cast<std::uint64_t>(kind) << 56) | id;
}
inline EventKind event_kind(std::uint64_t tag) noexcept { return static_cast<EventKind>(tag >> 56); }
inline std::uint64_t event_id(std::uint64_t tag) noexcept { return tag & ((std::uint64_t{1} << 56) - 1); }

class Broker {
public:
    // Called with a client's connection for one of this process's instances
    // (and who and where a gateway's client is, else empty).
    // `hand_off`: the gateway's offer of its network connection (hand_off.hpp), else 0.
    using Deliver = std::function<void(std::uint64_t instance, int fd, const std::string& remote_user,
                                       std::uint64_t hand_off, const std::string& remote_computer)>;
    Broker(NameFiles& files, int epoll_fd, Deliver deliver);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    std::error_code start();  // binds the name's socket (blocking: see listen_fd())

    // The name's socket, for the node's acceptor thread to accept() on (one
    // thread sleeping in accept() wakes sooner than one in epoll), and for
    // the idle threads of PipeServer's accept groups (name_node.cpp). It hands
    // each connection to adopt(); true if the broker still holds it (its first
    // frame has not come, or it waits for a free instance) or it became a
    // member: the node's thread then has a deadline to keep or adds to run.
    int listen_fd() const noexcept { return listen_fd_; }
    bool adopt(int fd, bool via_door);
    // accept() failed for want of descriptors: accepts one waiting client with
    // the descriptor held in reserve and refuses it (resource_exhausted). False
    // if none is in reserve.
    bool refuse_for_lack_of_descriptors(int listen_fd);

    // This process's own instances (member 0).
    std::error_code add_local(std::uint64_t id, const detail::InstanceParams& wanted, Nanos since,
                              detail::InstanceParams& pipe);
    void restore_local(std::uint64_t id, const detail::InstanceParams& params, Nanos listening_since);
    void remove_local(std::uint64_t id);
    void listen_local(std::uint64_t id, Nanos since);

    // What the name's first instance fixed for all.
    const detail::InstanceParams& pipe() const noexcept { return state_.params(); }

    void on_event(std::uint64_t tag, std::uint32_t events);
    int timeout_ms() const;  // until the next deadline; -1: none
    void on_timeout();
    bool serves_other_processes() const noexcept {
        for (const auto& [id, m] : members_)
            if (!m.dead) return true;
        return false;
    }
    // After a change of broker, the other server processes tell it their
    // instances; until all have (or 2 s passed), no new instance is added, so
    // the count of instances stays exact. Local adds wait for this too.
    bool settled();

private:
    struct Connection {  // a client, or a server process before its join
        int fd = -1;
        std::vector<std::byte> bytes;  // the first frame as it arrives
        Nanos handshake_until = 0;
        bool waiting = false;  // for a free instance
        bool via_door = false;
        bool watched = false;  // in the epoll set
        std::string remote_user;  // a gateway's client: who it is
        std::uint64_t hand_off = 0;  // and the gateway's offer of its connection
        std::string remote_computer;  // and where it is
        uid_t uid = 0;
        pid_t pid = 0;
    };
    struct Member {
        ControlLink link;
        uid_t uid = 0;
        pid_t pid = 0;
        std::uint32_t restores_due = 0;  // announced by its join, not yet received
        bool dead = false;  // dropped: erased once no call up the stack is using it (reap_members)
    };
    Member* live_member(std::uint64_t id);
    void reap_members();
    void send_to_member(std::uint64_t member, const detail::Control& control);
    void pause_listener(int fd);

    void handle_event(std::uint64_t tag, std::uint32_t events);
    void accept_all(int listen_fd, bool via_door);
    void read_first_frame(std::uint64_t id);
    void decide(std::uint64_t id, detail::OpenRequest request);
    void hand_over(std::uint64_t client, InstanceKey instance);
    void refuse(std::uint64_t client, errc why);
    void answer_free(std::uint64_t client);
    void close_connection(std::uint64_t id);
    void serve_waiting();
    void expire(Nanos now);
    void promote_to_member(std::uint64_t id, std::uint32_t restores_due);
    void add_for_member(std::uint64_t member, const detail::Control& control);
    void on_member_frame(std::uint64_t member, const detail::Control& control, int fd);
    void drop_member(std::uint64_t member);
    // Adds an instance; before refusing one for the count, drops the server
    // processes that have died but whose hang-up is not read yet.
    std::error_code add_instance(InstanceKey key, const detail::InstanceParams& params, Nanos since);
    bool drop_dead_members();
    void update_member_interest(std::uint64_t member);
    std::error_code open_door_if_needed();
    void watch(int fd, std::uint64_t tag, std::uint32_t events);

    NameFiles& files_;
    int epoll_fd_;
    Deliver deliver_;
    NameState state_;
    int listen_fd_ = -1, door_fd_ = -1, reserve_fd_ = -1;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Connection> connections_;
    std::map<std::uint64_t, Member> members_;
    Nanos handshake_timeout_ns_;
    bool settled_ = false;
    Nanos listener_paused_until_ = 0;  // out of descriptors with none in reserve: accept later
    Nanos settle_by_ = 0;
    std::vector<std::pair<std::uint64_t, detail::Control>> deferred_adds_;  // (member, add) until settled
};

// How long a connection may take to send its first frame before the broker
// closes it: PIPESLOT_HANDSHAKE_TIMEOUT_MS, else 5000.
std::int64_t handshake_timeout_ms() noexcept;

}  // namespace pipeslot::posix
