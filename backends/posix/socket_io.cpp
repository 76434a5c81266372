#include "socket_io.hpp"

#include "../common/error_map.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace pipeslot::posix {
namespace {

// A call without a deadline still sets a finite timeout: only then does the
// interrupt signal end it (SA_RESTART restarts socket calls that have none).
constexpr std::int64_t forever_slice_us = 3600LL * 1'000'000;
constexpr std::int64_t min_forever_slice_us = 1'000'000;
// A send this small finds room in the socket's buffer unless the reader has
// fallen far behind (a larger one is tried blocking at once: a full buffer
// would cost it a failed attempt per part).
constexpr std::size_t small_send = 16 * 1024;

// After a call returned -1 with `error`: true to try again, false with ec set.
template <class Wait>
bool worth_another_try(int error, bool blocked, const SocketCall& call, const detail::Deadline& deadline, Wait wait,
                       std::error_code& ec) {
    if (error == EINTR) {  // a cancel, or a signal that is none of ours
        if (!call.canceller.cancelled_since(call.ticket)) return true;
        ec = errc::cancelled;
        return false;
    }
    if (error != EAGAIN && error != EWOULDBLOCK) {
        // EPIPE and ECONNRESET: broken_pipe. On TCP (a remote pipe) the
        // peer's host gone (keepalive unanswered, data unacknowledged) is too.
        const bool host_gone = error == ETIMEDOUT || error == EHOSTUNREACH || error == ENETUNREACH || error == ENETDOWN;
        ec = host_gone ? make_error_code(errc::broken_pipe) : detail::error_from_errno(error);
        return false;
    }
    // Nothing there, or the socket's timeout ran out.
    if (deadline.expired()) {
        ec = errc::timed_out;
        return false;
    }
    // A blocking call that came back at once: the socket is non-blocking
    // (an event loop's reactor leaves it so), so wait for it instead of spinning.
    if (blocked) {
        const int flags = ::fcntl(call.fd, F_GETFL);
        if (flags < 0 || !(flags & O_NONBLOCK)) return true;
    }
    return wait(ec);
}

// Runs `io(flags)` until it succeeds, blocking in it when this thread can be
// interrupted. `try_first`: one attempt without blocking before all that, for
// a call that nearly always succeeds at once (a small send), which then costs
// one system call instead of three or four (the timeout, the signal mask).
template <class Io, class Wait>
ssize_t run(const SocketCall& call, const detail::Deadline& deadline, Io io, Wait wait, std::error_code& ec,
            bool try_first = false) {
    if (try_first) {
        const ssize_t n = io(MSG_DONTWAIT);
        if (n >= 0) return n;
        const int error = errno;
        if (error != EAGAIN && error != EWOULDBLOCK && !worth_another_try(error, true, call, deadline, wait, ec))
            return -1;
    }
    for (;;) {
        const bool block = !deadline.expired() && Canceller::can_interrupt_this_thread() &&
                           call.timeout.apply(call.fd, deadline);
        ssize_t n;
        int error;
        if (block) {
            const Canceller::Blocking section(call.canceller, call.ticket, ec);
            if (!section) return -1;
            n = io(0);
            error = errno;
        } else {
            n = io(MSG_DONTWAIT);
            error = errno;
        }
        if (n >= 0) return n;
        if (!worth_another_try(error, block, call, deadline, wait, ec)) return -1;
    }
}

}  // namespace

bool SocketTimeout::apply(int fd, const detail::Deadline& deadline) noexcept {
    const auto set = set_us_.load(std::memory_order_relaxed);
    // Without a deadline any slice of a second or more does: the call just
    // blocks again when it ends.
    if (deadline.is_forever() && set >= min_forever_slice_us) return true;
    const std::int64_t us = deadline.is_forever() ? forever_slice_us
                                                  : std::clamp<std::int64_t>(deadline.remaining_us(), 1, forever_slice_us);
    if (us == set) return true;
    const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
    if (::setsockopt(fd, SOL_SOCKET, option_, &tv, sizeof tv) != 0) return false;
    set_us_.store(us, std::memory_order_relaxed);
    return true;
}

std::size_t receive_some(const SocketCall& call, std::span<std::byte> into, const detail::Deadline& deadline,
                         std::error_code& ec) {
    const ssize_t n = run(
        call, deadline, [&](int flags) { return ::recv(call.fd, into.data(), into.size(), flags); },
        [&](std::error_code& wait_error) { return call.canceller.wait(call.fd, POLLIN, call.ticket, deadline, wait_error); },
        ec);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0 || ec == errc::broken_pipe) ec = errc::end_of_stream;  // closed, or reset
    return 0;
}

std::size_t send_some(const SocketCall& call, std::span<iovec> parts, const detail::Deadline& deadline,
                      std::error_code& ec) {
    msghdr message{};
    message.msg_iov = parts.data();
    message.msg_iovlen = parts.size();
    std::size_t size = 0;
    for (const auto& part : parts) size += part.iov_len;
    const ssize_t n = run(
        call, deadline, [&](int flags) { return ::sendmsg(call.fd, &message, MSG_NOSIGNAL | flags); },
        [&](std::error_code& wait_error) { return call.canceller.wait(call.fd, POLLOUT, call.ticket, deadline, wait_error); },
        ec, size <= small_send);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace pipeslot::posix
