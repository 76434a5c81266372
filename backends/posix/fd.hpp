// Descriptor helpers shared by the POSIX backend's files.
#pragma once

#include "../common/deadline.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <span>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace pipeslot::posix {

std::error_code last_error() noexcept;  // errno as a portable code

// A descriptor closed when it goes out of scope, unless released.
class Fd {
public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_;
};

// Waits until `fd` is ready for `events` (poll flags). False with ec set when
// the deadline passes (errc::timed_out) or poll fails.
bool wait_ready(int fd, short events, const detail::Deadline& deadline, std::error_code& ec);

std::error_code set_nonblocking(int fd, bool nonblocking) noexcept;

// Reads what is there, at least one byte, from a non-blocking descriptor;
// when nothing is, calls wait_readable(ec), which returns false to give up.
// 0 with errc::end_of_stream once the other end has closed.
template <class WaitReadable>
std::size_t read_some(int fd, std::span<std::byte> into, WaitReadable&& wait_readable, std::error_code& ec) {
    for (;;) {
        const ssize_t n = ::read(fd, into.data(), into.size());
        if (n > 0) return static_cast<std::size_t>(n);
        if (n == 0 || errno == ECONNRESET) {
            ec = make_error_code(errc::end_of_stream);
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            ec = last_error();
            return 0;
        }
        if (!wait_readable(ec)) return 0;
    }
}

// Keeps SIGPIPE from killing the process while a write to a pipe runs: the
// signal is blocked for this thread only, and one raised by the write is
// consumed before the mask is restored. Sockets use MSG_NOSIGNAL instead.
class SigpipeBlock {
public:
    SigpipeBlock() noexcept;
    ~SigpipeBlock();
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;
    void write_failed_with_epipe() noexcept { epipe_ = true; }

private:
    bool was_blocked_ = false;
    bool was_pending_ = false;
    bool epipe_ = false;
};

}  // namespace pipeslot::posix
