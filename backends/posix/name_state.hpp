// All of one pipe name's state, owned by the name's broker (name_node.hpp):
// which instances exist, in which process, which are listening and since
// when, and which clients wait for one. Every rule of Windows' connection
// model is decided here, once, by this state machine: no file, lock or race
// between processes decides who gets an instance. It makes no system call,
// so it is tested on its own (tests/posix/name_state_test.cpp).
#pragma once

#include "../common/connect_protocol.hpp"

#include <pipeslot/error.hpp>

#include <chrono>
#include <compare>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

namespace pipeslot::posix {

using MemberId = std::uint64_t;  // a server process of the name (0: the broker's own)
using ClientId = std::uint64_t;  // a client connection held by the broker

struct InstanceKey {
    MemberId member = 0;
    std::uint64_t instance = 0;  // unique within its member
    auto operator<=>(const InstanceKey&) const = default;
};

// Steady-clock nanoseconds: one clock for every process of the host, so listen
// order holds across processes and across a change of broker.
using Nanos = std::int64_t;
Nanos steady_now_ns() noexcept;

class NameState {
public:
    // The pipe's parameters: the first instance's (Windows: its maximum and
    // default wait stand for all; type, direction and openness must agree).
    const detail::InstanceParams& params() const noexcept { return params_; }
    std::size_t instance_count() const noexcept { return instances_.size(); }
    bool empty() const noexcept { return instances_.empty(); }

    // A new instance, listening from `now`. access_denied (first_instance and
    // the name exists, as Windows; another type, direction or openness),
    // too_many_instances.
    std::error_code add(InstanceKey key, const detail::InstanceParams& wanted, Nanos now);
    // An instance a server process had before this broker took over: never
    // refused. `listening_since` -1: it has a client.
    void restore(InstanceKey key, const detail::InstanceParams& params, Nanos listening_since);
    void remove(InstanceKey key);
    void remove_member(MemberId member);
    // The instance listens again (accept() after a disconnect).
    void listen(InstanceKey key, Nanos since);

    // A client asks to be connected.
    // A client asks to be connected, or (wait_only) to hear once an instance is free.
    struct Decision {
        enum Kind { connect, free, wait, refuse } kind = refuse;
        InstanceKey instance{};  // connect: the instance it gets
        errc error{};            // refuse: why
    };
    Decision open(ClientId client, const detail::OpenRequest& request, Nanos now);
    // Clients that were waiting and now get an instance (or, wait_only, are
    // told one is free: no instance), in the order they began waiting (call
    // after add, restore and listen).
    struct Served {
        ClientId client;
        std::optional<InstanceKey> instance;  // none: a wait_only client, or one refused
        errc refused{};                       // access_denied: the instance stays free
    };
    std::vector<Served> serve_waiting();
    // Clients whose wait ran out by `now`, and why: pipe_busy for an open,
    // timed_out for a wait_only one (WaitNamedPipe: ERROR_SEM_TIMEOUT);
    // not_found once the name has no instance left.
    struct Expired {
        ClientId client;
        errc error;
    };
    std::vector<Expired> expire_waiting(Nanos now);
    // A waiting client went away.
    void forget_client(ClientId client);
    std::size_t waiting_count() const noexcept { return waiting_.size(); }
    // The earliest end of a wait, if any client waits.
    std::optional<Nanos> next_expiry() const;

    struct Instance {
        detail::InstanceParams params;  // its own buffer sizes
        Nanos listening_since = -1;     // -1: has a client (or is disconnected and not listening)
    };
    const Instance* find(InstanceKey key) const;

private:
    std::optional<InstanceKey> longest_listening() const;
    Decision wait(ClientId client, const detail::OpenRequest& request, Nanos now, errc at_once);
    InstanceKey take(InstanceKey key);

    detail::InstanceParams params_;
    std::map<InstanceKey, Instance> instances_;
    struct Waiter {
        ClientId client;
        Nanos until;  // INT64_MAX: forever
        bool wait_only;
        ClientAccess access;
    };
    std::deque<Waiter> waiting_;
};


}  // namespace pipeslot::posix
