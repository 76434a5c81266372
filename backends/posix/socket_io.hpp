// Reads and writes on a connected stream socket that wait until a deadline
// and can be cancelled. They sleep inside recv()/sendmsg() (bounded by
// SO_RCVTIMEO/SO_SNDTIMEO, cut short by the canceller's signal) where the
// thread can be interrupted, and in poll() where it cannot.
#pragma once

#include "../common/deadline.hpp"
#include "canceller.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <sys/uio.h>
#include <system_error>

namespace pipeslot::posix {

// What SO_RCVTIMEO or SO_SNDTIMEO is set to on one socket, so that an
// unchanged timeout costs no system call. Guarded by whatever serialises the
// socket's calls in that direction; forget() when the socket changes.
class SocketTimeout {
public:
    explicit SocketTimeout(int option) noexcept : option_(option) {}
    // False when the socket refuses it (the caller then polls).
    bool apply(int fd, const detail::Deadline& deadline) noexcept;
    void forget() noexcept { set_us_.store(0, std::memory_order_relaxed); }
    // What the socket has already (µs; 0: none), set by whoever made it.
    void adopt(std::int64_t us) noexcept { set_us_.store(us, std::memory_order_relaxed); }

private:
    int option_;
    // 0: not set by us (the kernel's default never times out). Atomic because
    // a new connection forgets it under another lock than the calls'.
    std::atomic<std::int64_t> set_us_{0};
};

// The socket and what a call on it needs besides the data.
struct SocketCall {
    int fd;
    Canceller& canceller;
    std::uint64_t ticket;  // from canceller.ticket() when the call started
    SocketTimeout& timeout;
};

// At least one byte into `into`. 0 with ec set: errc::end_of_stream when the
// peer has closed, timed_out, cancelled, or the error.
std::size_t receive_some(const SocketCall& call, std::span<std::byte> into, const detail::Deadline& deadline,
                         std::error_code& ec);

// Some of `parts`, at least one byte. 0 with ec set: broken_pipe when the peer
// has gone, timed_out, cancelled, or the error.
std::size_t send_some(const SocketCall& call, std::span<iovec> parts, const detail::Deadline& deadline,
                      std::error_code& ec);

}  // namespace pipeslot::posix
