#include "../common/platform.hpp"
#include "fd.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace pipeslot::platform {

void close_handle(native_handle_type h) noexcept {
    // Linux closes the descriptor even when close() reports EINTR: never retry.
    ::close(static_cast<int>(h));
}

std::error_code set_inheritable(native_handle_type h, bool inheritable) {
    const int fd = static_cast<int>(h);
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return posix::last_error();
    const int wanted = inheritable ? (flags & ~FD_CLOEXEC) : (flags | FD_CLOEXEC);
    if (::fcntl(fd, F_SETFD, wanted) < 0) return posix::last_error();
    return {};
}

}  // namespace pipeslot::platform

#include <climits>
#include <string>

namespace pipeslot::platform {

std::string host_name() {
    char name[HOST_NAME_MAX + 1] = {};
    if (::gethostname(name, sizeof name - 1) < 0) return "localhost";
    return name;
}

}  // namespace pipeslot::platform
