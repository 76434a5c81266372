#include "mailslot_files.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pipeslot::posix {

namespace {

// Tries before giving up on a name whose files keep changing under us.
constexpr int max_attempts = 64;

// A file at `name` that this user made and nobody linked elsewhere.
bool is_plain_file_of_ours(const struct stat& st) {
    return S_ISREG(st.st_mode) && st.st_uid == ::geteuid() && st.st_nlink == 1;
}

// Creates `name` afresh; a stale one of ours (its reader died) is removed
// first. Anything else at that name is not touched: name_in_use.
int create_exclusive(int dir_fd, const std::string& name, mode_t mode, int flags, std::error_code& ec) {
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
        const int fd = ::openat(dir_fd, name.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            ::fchmod(fd, mode);  // the umask may have narrowed it; never wider than asked
            return fd;
        }
        if (errno != EEXIST) break;
        struct stat st;
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;  // gone meanwhile
        if (!is_plain_file_of_ours(st)) {
            ec = make_error_code(errc::name_in_use);
            return -1;
        }
        if (::unlinkat(dir_fd, name.c_str(), 0) < 0 && errno != ENOENT) break;
    }
    ec = errno == EEXIST || errno == ENOENT ? make_error_code(errc::name_in_use) : last_error();
    return -1;
}

// The lock of a reader that may be alive: an existing lock file of ours is
// taken over only if nobody holds it (never waited for).
int take_lock(int dir_fd, const std::string& lock, std::error_code& ec) {
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
        int fd = ::openat(dir_fd, lock.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            struct stat linked;
            if (::fstatat(dir_fd, lock.c_str(), &linked, AT_SYMLINK_NOFOLLOW) < 0) continue;  // released meanwhile
            if (!is_plain_file_of_ours(linked)) {
                ec = make_error_code(errc::name_in_use);  // another user's, or planted: not ours to use
                return -1;
            }
            // Ours (only we can replace it in a sticky directory): a dead reader's.
            fd = ::openat(dir_fd, lock.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0 && errno == ENOENT) continue;
            if (fd >= 0) ::fchmod(fd, 0600);  // one an older version made 0644
        }
        if (fd < 0) {
            ec = last_error();
            return -1;
        }
        if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
            ec = errno == EWOULDBLOCK ? make_error_code(errc::name_in_use) : last_error();
            ::close(fd);
            return -1;
        }
        // A closing reader unlinks the file it held: make sure ours is the linked one.
        struct stat held, linked;
        if (::fstat(fd, &held) == 0 && ::fstatat(dir_fd, lock.c_str(), &linked, AT_SYMLINK_NOFOLLOW) == 0 &&
            held.st_ino == linked.st_ino && held.st_dev == linked.st_dev && is_plain_file_of_ours(held))
            return fd;
        ::close(fd);
    }
    ec = make_error_code(errc::name_in_use);
    return -1;
}

}  // namespace

std::error_code claim_mailslot_name(int dir_fd, const std::string& key, std::size_t max_message_size,
                                    MailslotFiles& out) {
    std::error_code ec;
    out.lock_fd = take_lock(dir_fd, key + ".lock", ec);
    if (out.lock_fd < 0) return ec;
    struct stat st;
    ::fstat(out.lock_fd, &st);
    out.lock_inode = st.st_ino;

    const std::string info_file = key + ".info";
    const int info = create_exclusive(dir_fd, info_file, 0644, O_WRONLY, ec);
    if (info < 0) return ec;
    const std::string text = "max=" + std::to_string(max_message_size) + "\n";
    const bool written = ::write(info, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (!written) ec = last_error();
    ::fstat(info, &st);
    out.info_inode = st.st_ino;
    ::close(info);
    return written ? std::error_code{} : ec;
}

void unlink_if_ours(int dir_fd, const std::string& file, ino_t inode) noexcept {
    struct stat st;
    if (inode != 0 && ::fstatat(dir_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == inode &&
        st.st_uid == ::geteuid())
        ::unlinkat(dir_fd, file.c_str(), 0);
}

void release_mailslot_name(int dir_fd, const std::string& key, MailslotFiles& files) noexcept {
    unlink_if_ours(dir_fd, key + ".info", files.info_inode);
    if (files.lock_fd >= 0) {
        unlink_if_ours(dir_fd, key + ".lock", files.lock_inode);  // still held: nobody else has it
        ::close(files.lock_fd);
        files.lock_fd = -1;
    }
}

int open_socket_file(int dir_fd, const std::string& file, struct stat& st) {
    const int fd = ::openat(dir_fd, file.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_nlink == 1) return fd;
    ::close(fd);
    return -1;
}

sockaddr_un socket_file_address(int fd) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = "/proc/self/fd/" + std::to_string(fd);  // the inode opened, not a name
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

std::size_t published_max_message_size(int dir_fd, const std::string& key, uid_t reader_uid) {
    // Looked at before it is opened for reading: nothing planted there (a
    // device linked in) is ever opened.
    const int path = ::openat(dir_fd, (key + ".info").c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (path < 0) return 0;
    struct stat st;
    char text[64] = {};
    ssize_t n = -1;
    if (::fstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == reader_uid && st.st_nlink == 1) {
        const int fd = ::open(("/proc/self/fd/" + std::to_string(path)).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
            n = ::pread(fd, text, sizeof text - 1, 0);
            ::close(fd);
        }
    }
    ::close(path);
    unsigned long long max = 0;
    if (n > 0) std::sscanf(text, "max=%llu", &max);
    return static_cast<std::size_t>(max);
}

}  // namespace pipeslot::posix
