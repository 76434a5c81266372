// What the accept group (accept_group.cpp) needs of a POSIX channel and of
// its name's node.
#pragma once

#include "../common/platform.hpp"

#include <cstdint>
#include <system_error>

namespace pipeslot::posix {

// The eventfd the broker rings when it hands a server's instance a client
// (-1 for a client's end).
int instance_doorbell(const platform::Channel& c) noexcept;

// A thread that accepts its name's clients itself may take at once the
// instance of its own group that one of them is handed to: that instance's
// doorbell is then not rung (no other thread woken for it).
class ClientCatcher {
public:
    // True if the calling thread takes the instance with this doorbell.
    virtual bool take(int doorbell) noexcept = 0;

protected:
    ~ClientCatcher() = default;
};

// While this process is the broker of the name of server instance `c`, its
// listening socket is in `epoll` (edge-triggered, exclusive, ahead of the
// broker's own accept thread) with `tag`: an idle thread waiting there is
// woken for a new client instead of that thread. Until leave_accept_group().
std::error_code join_accept_group(platform::Channel& c, int epoll, std::uint64_t tag) noexcept;
void leave_accept_group(platform::Channel& c, int epoll) noexcept;
// After `tag` was reported: accepts every client waiting (never blocks) and
// runs the broker's decision on each; `catcher` may take one of them.
void accept_waiting_clients(platform::Channel& c, ClientCatcher& catcher) noexcept;

}  // namespace pipeslot::posix
