// A server instance's membership of its pipe name. All instances of one name
// in one process share a node: one thread, one set of lock files, and one
// role at a time — the name's broker (broker.hpp), or a member that keeps a
// control connection to the broker in another process. When the broker's
// process exits or dies, the members' connections break and one of them
// takes over (the broker lock is an OFD lock: only a live process holds it),
// telling the new broker the instances it has. So each name has exactly one
// owner of its state at a time.
#pragma once

#include "../common/connect_protocol.hpp"
#include "flow_page.hpp"
#include "hand_off.hpp"

#include <pipeslot/message_channel.hpp>
#include <pipeslot/name.hpp>

#include <memory>
#include <string>
#include <system_error>

namespace pipeslot::posix {

class ClientCatcher;
class NameNode;
struct InstanceSlot;

// A client handed to an instance, as its channel takes it.
struct HandedClient {
    int fd = -1;  // blocking, close-on-exec
    std::shared_ptr<FlowPage> flow;  // the counters sent with its open reply
    std::string remote_user;         // who it is, if a gateway brought it
    // A gateway's network connection itself (hand_off.hpp), else null.
    std::shared_ptr<HandedConnections::Lease> network;
    std::string remote_computer = {};  // where it connected from, if a gateway (or smbd) brought it
};
// Closes a client's connection as its kind needs (a network one lingers).
void close_client(HandedClient client) noexcept;

class InstanceRegistration {
public:
    InstanceRegistration() noexcept;
    InstanceRegistration(InstanceRegistration&&) noexcept;
    InstanceRegistration& operator=(InstanceRegistration&&) noexcept;
    ~InstanceRegistration();

    // A new instance of `name`, listening at once: the name's rules apply
    // (too_many_instances, name_in_use, access_denied), and failures of the
    // system (resource_exhausted, ...) return their error and leave nothing behind.
    static std::error_code create(const Name& name, const detail::InstanceParams& params, InstanceRegistration& out);

    // Readable (POLLIN) once a client has been handed to this instance; -1
    // if no descriptor can be made. Made on demand, closed once a client is
    // taken: ask again for each wait.
    int doorbell() const noexcept;
    // The same, kept open for the instance's life (an accept group's epoll set holds it).
    int pinned_doorbell() const noexcept;
    // That client (false if none came).
    bool take_client(HandedClient& out) noexcept;
    // accept() after a disconnect: the instance listens again, from now.
    void listen_again() noexcept;
    // The accept groups of PipeServer (accept_group.hpp): their idle threads
    // accept the name's clients while this process is its broker.
    std::error_code join_group(int epoll, std::uint64_t tag) noexcept;
    void leave_group(int epoll) noexcept;
    void accept_waiting(ClientCatcher& catcher) noexcept;
    // What the name's first instance fixed for all (max instances, type, ...).
    const detail::InstanceParams& pipe() const noexcept { return pipe_; }

private:
    void reset() noexcept;
    std::shared_ptr<NameNode> node_;
    std::shared_ptr<InstanceSlot> slot_;
    std::string key_;
    detail::InstanceParams pipe_;
    bool registered_ = false;
};

}  // namespace pipeslot::posix
