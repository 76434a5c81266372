// Descriptor helpers shared by the POSIX backend's files.
#pragma once

#include "../common/deadline.hpp"

#include <system_error>

namespace pipeslot::posix {

std::error_code last_error() noexcept;  // errno as a portable code

// Waits until `fd` is ready for `events` (poll flags). False with ec set when
// the deadline passes (errc::timed_out) or poll fails.
bool wait_ready(int fd, short events, const detail::Deadline& deadline, std::error_code& ec);

std::error_code set_nonblocking(int fd, bool nonblocking) noexcept;

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
