#include "../common/platform.hpp"
#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace pipeslot::platform {

std::error_code create_pipe(std::size_t buffer_size, bool for_children, PipeHandles& out) {
    int fds[2];
    // Ends used here are non-blocking so that timeouts hold for partial writes;
    // Process::spawn makes an end blocking again before a child gets it.
    const int flags = O_CLOEXEC | (for_children ? 0 : O_NONBLOCK);
    if (::pipe2(fds, flags) < 0) return posix::last_error();
#ifdef F_SETPIPE_SZ
    if (buffer_size > 0) {
        // A hint: the kernel rounds up to pages and refuses sizes above its limit.
        const int size = buffer_size > INT_MAX ? INT_MAX : static_cast<int>(buffer_size);
        (void)::fcntl(fds[1], F_SETPIPE_SZ, size);
    }
#else
    (void)buffer_size;
#endif
    out.read = fds[0];
    out.write = fds[1];
    return {};
}

std::error_code pipe_buffer_size(native_handle_type h, std::size_t& size) {
#ifdef F_GETPIPE_SZ
    const int n = ::fcntl(static_cast<int>(h), F_GETPIPE_SZ);
    if (n < 0) return posix::last_error();
    size = static_cast<std::size_t>(n);
    return {};
#else
    (void)h;
    size = PIPE_BUF;  // all this system promises
    return {};
#endif
}

native_handle_type pollable_descriptor(native_handle_type h) noexcept { return h; }

std::size_t read(native_handle_type h, std::span<std::byte> buffer, const Deadline& deadline,
                 std::error_code& ec) {
    const int fd = static_cast<int>(h);
    if (buffer.empty()) {  // Windows' zero-byte read: returns once there is data, and leaves it
        for (;;) {
            if (!posix::wait_ready(fd, POLLIN, deadline, ec)) return 0;
            int available = 0;
            if (::ioctl(fd, FIONREAD, &available) < 0 || available > 0) return 0;
            pollfd p{fd, POLLIN, 0};  // ready and empty: no writer left, or another reader took it all
            if (::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP) && ::ioctl(fd, FIONREAD, &available) == 0 && available == 0) {
                ec = errc::end_of_stream;
                return 0;
            }
        }
    }
    return posix::read_some(
        fd, buffer, [&](std::error_code& wait_error) { return posix::wait_ready(fd, POLLIN, deadline, wait_error); }, ec);
}

std::size_t write(native_handle_type h, std::span<const std::byte> data, const Deadline& deadline,
                  std::error_code& ec) {
    const int fd = static_cast<int>(h);
    posix::SigpipeBlock no_sigpipe;
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!posix::wait_ready(fd, POLLOUT, deadline, ec)) break;
            continue;
        }
        if (errno == EPIPE) {
            no_sigpipe.write_failed_with_epipe();
            // Windows: ERROR_NO_DATA for a write that finds the reader gone,
            // ERROR_BROKEN_PIPE for one under way when it went.
            ec = done == 0 ? errc::pipe_closing : errc::broken_pipe;
        } else {
            ec = posix::last_error();
        }
        break;
    }
    return done;
}

}  // namespace pipeslot::platform
