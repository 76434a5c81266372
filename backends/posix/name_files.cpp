#include "name_files.hpp"

#include "../common/error_map.hpp"
#include "fd.hpp"
#include "runtime_dir.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <random>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace pipeslot::posix {
namespace {

// A last server removes the files under the members write lock, for a few
// microseconds; waiting longer than this means something is wrong.
constexpr auto lock_patience = std::chrono::seconds(2);
constexpr int listen_backlog = 4096;  // capped by net.core.somaxconn

// Opens (creating if missing) a lock file of ours: a regular file owned by
// this user with one link, never through a symbolic link.
int open_lock_file(int dir_fd, const std::string& file, std::error_code& ec) {
    const int fd = ::openat(dir_fd, file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ec = last_error();
        return -1;
    }
    struct stat st;
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1) {
        ::close(fd);
        ec = errc::access_denied;
        return -1;
    }
    return fd;
}

bool ofd_lock(int fd, short type) noexcept {
    struct flock lock{};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

// After locking: a last server may have removed the file meanwhile; the lock
// then guards nothing.
bool still_linked(int dir_fd, const std::string& file, int fd) noexcept {
    struct stat held, linked;
    return ::fstat(fd, &held) == 0 && ::fstatat(dir_fd, file.c_str(), &linked, AT_SYMLINK_NOFOLLOW) == 0 &&
           held.st_ino == linked.st_ino && held.st_dev == linked.st_dev;
}

std::string random_suffix() {
    thread_local std::mt19937_64 random{std::random_device{}()};
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(random()));
    return text;
}

// A listening socket at `file` in the directory, bound under a temporary name
// and renamed into place (replacing a dead broker's socket).
std::error_code bind_listener(int dir_fd, const std::string& dir_path, const std::string& file, mode_t mode,
                              int& out) {
    const std::string temp = file + "." + random_suffix();
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return last_error();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto path = socket_address(dir_fd, dir_path, temp).path;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    std::error_code ec;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        ec = last_error();
        ::close(fd);
        return ec;
    }
    if (::fchmodat(dir_fd, temp.c_str(), mode, 0) < 0 || ::listen(fd, listen_backlog) < 0 ||
        ::renameat(dir_fd, temp.c_str(), dir_fd, file.c_str()) < 0) {
        ec = last_error();
        ::unlinkat(dir_fd, temp.c_str(), 0);
        ::close(fd);
        return ec;
    }
    out = fd;
    return {};
}

// A directory of `uid`'s in the shared directory: owned by it, writable by
// nobody else. Anyone can make an entry in the shared directory, so the name
// u-UID may be taken by another user first; then the user's directory is
// u-UID-RANDOM, and clients look at every u-UID* entry, keeping only those
// the user owns (no other user can make one), in name order.
bool good_door_directory(int dir_fd, uid_t uid) {
    struct stat st;
    return ::fstat(dir_fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && (st.st_mode & 022) == 0;
}

std::vector<std::string> door_directory_candidates(const std::string& shared, uid_t uid) {
    const std::string stem = "u-" + std::to_string(uid);
    std::vector<std::string> names{stem};
    if (DIR* d = ::opendir(shared.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() > stem.size() + 1 && n.compare(0, stem.size() + 1, stem + "-") == 0) names.push_back(n);
        }
        ::closedir(d);
    }
    std::sort(names.begin() + 1, names.end());
    return names;
}

int open_if_good(const std::string& path, uid_t uid) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && !good_door_directory(fd, uid)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The owner's: the first good candidate, made if there is none.
std::error_code open_own_door_directory(int& dir_fd, std::string& dir_path) {
    std::string shared;
    if (auto ec = runtime_directory(Scope::shared, shared)) return ec;
    const uid_t uid = ::geteuid();
    const std::string stem = shared + "/u-" + std::to_string(uid);
    if (::mkdir(stem.c_str(), 0755) == 0) ::chmod(stem.c_str(), 0755);  // past the umask
    for (const auto& name : door_directory_candidates(shared, uid)) {
        dir_path = shared + "/" + name;
        if ((dir_fd = open_if_good(dir_path, uid)) >= 0) return {};
    }
    dir_path = stem + "-" + random_suffix();  // u-UID is another user's: a name of our own
    if (::mkdir(dir_path.c_str(), 0755) < 0) return last_error();
    ::chmod(dir_path.c_str(), 0755);
    dir_fd = open_if_good(dir_path, uid);
    return dir_fd >= 0 ? std::error_code{} : make_error_code(errc::access_denied);
}

// A client's: the first good candidate that has the pipe's socket.
std::error_code open_door_directory_of(uid_t uid, const std::string& socket_file, int& dir_fd,
                                       std::string& dir_path) {
    std::string shared;
    if (auto ec = runtime_directory(Scope::shared, shared)) return errc::not_found;
    for (const auto& name : door_directory_candidates(shared, uid)) {
        dir_path = shared + "/" + name;
        dir_fd = open_if_good(dir_path, uid);
        if (dir_fd < 0) continue;
        struct stat st;
        if (::fstatat(dir_fd, socket_file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode)) return {};
        ::close(dir_fd);
        dir_fd = -1;
    }
    return errc::not_found;
}

void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

}  // namespace

NameFiles::~NameFiles() {
    close_fd(broker_fd_);
    close_fd(members_fd_);
    close_fd(door_dir_fd_);
    close_fd(dir_fd_);
}

std::error_code NameFiles::join(const Name& name) {
    if (auto ec = runtime_directory(Scope::private_to_user, dir_path_)) return ec;
    dir_fd_ = ::open(dir_path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd_ < 0) return last_error();
    key_ = name_key(name);
    const std::string file = key_ + ".members";
    const auto give_up = std::chrono::steady_clock::now() + lock_patience;
    for (;;) {
        std::error_code ec;
        members_fd_ = open_lock_file(dir_fd_, file, ec);
        if (members_fd_ < 0) return ec;
        if (!ofd_lock(members_fd_, F_RDLCK)) {
            const int error = errno;
            close_fd(members_fd_);
            if (error != EAGAIN && error != EACCES) return detail::error_from_errno(error);
            if (std::chrono::steady_clock::now() > give_up) return errc::timed_out;
        } else if (still_linked(dir_fd_, file, members_fd_)) {
            return {};
        } else {
            close_fd(members_fd_);  // removed meanwhile: lock the new one
            continue;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

bool NameFiles::try_become_broker() {
    if (broker_fd_ >= 0) return true;
    const std::string file = key_ + ".broker";
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::error_code ec;
        broker_fd_ = open_lock_file(dir_fd_, file, ec);
        if (broker_fd_ < 0) return false;
        if (!ofd_lock(broker_fd_, F_WRLCK)) {
            close_fd(broker_fd_);
            return false;  // a live broker holds it
        }
        if (still_linked(dir_fd_, file, broker_fd_)) return true;
        close_fd(broker_fd_);  // removed by a last server meanwhile: lock the new one
    }
    return false;
}

std::error_code NameFiles::bind_broker_socket(int& listen_fd) {
    return bind_listener(dir_fd_, dir_path_, key_ + ".sock", 0600, listen_fd);
}

std::error_code NameFiles::bind_door(int& listen_fd) {
    if (door_dir_fd_ < 0) {
        if (auto ec = open_own_door_directory(door_dir_fd_, door_dir_path_)) return ec;
    }
    // Connecting needs write permission on the socket file.
    if (auto ec = bind_listener(door_dir_fd_, door_dir_path_, key_ + ".sock", 0666, listen_fd)) return ec;
    door_bound_ = true;
    return {};
}

std::string NameFiles::broker_socket_address() const {
    return socket_address(dir_fd_, dir_path_, key_ + ".sock").path;
}

std::size_t NameFiles::member_count() const {
    // /proc/locks lists every OFD lock: "N: OFDLCK ADVISORY READ -1 MAJ:MIN:INODE 0 EOF".
    struct stat st;
    if (members_fd_ < 0 || ::fstat(members_fd_, &st) < 0) return 1;
    char id[64];
    std::snprintf(id, sizeof id, " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
                  static_cast<unsigned long long>(st.st_ino));
    std::size_t count = 0;
    FILE* f = std::fopen("/proc/locks", "re");
    if (!f) {
        // No /proc: only whether another process holds it (then wait for one at least).
        struct flock probe{};
        probe.l_type = F_WRLCK;
        probe.l_whence = SEEK_SET;
        return ::fcntl(members_fd_, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK ? 2 : 1;
    }
    char line[256];
    while (std::fgets(line, sizeof line, f))
        if (std::strstr(line, "OFDLCK") && std::strstr(line, id)) ++count;
    std::fclose(f);
    return std::max<std::size_t>(count, 1);
}

bool NameFiles::only_member() { return members_fd_ >= 0 && ofd_lock(members_fd_, F_WRLCK); }

bool NameFiles::last_to_leave() {
    if (members_fd_ < 0) return false;
    if (ofd_lock(members_fd_, F_WRLCK)) return true;
    ofd_lock(members_fd_, F_UNLCK);
    return ofd_lock(members_fd_, F_WRLCK);
}

void NameFiles::remove() noexcept {
    const std::string sock = key_ + ".sock";
    if (door_bound_) ::unlinkat(door_dir_fd_, sock.c_str(), 0);
    ::unlinkat(dir_fd_, sock.c_str(), 0);
    ::unlinkat(dir_fd_, (key_ + ".broker").c_str(), 0);
    ::unlinkat(dir_fd_, (key_ + ".members").c_str(), 0);
    close_fd(broker_fd_);
    close_fd(members_fd_);
}

void NameFiles::release_broker() noexcept {
    close_fd(broker_fd_);
    door_bound_ = false;
}

// --- client side -------------------------------------------------------------------

BrokerAddress::~BrokerAddress() {
    if (dir_fd >= 0) ::close(dir_fd);
}

namespace {
bool resolve_user(const std::string& user, uid_t& uid) {
    if (!user.empty() && user.find_first_not_of("0123456789") == std::string::npos && user.size() < 11) {
        const unsigned long long value = std::stoull(user);
        if (value > 0xFFFFFFFEull) return false;
        uid = static_cast<uid_t>(value);
        return true;
    }
    std::vector<char> buffer(16384);
    passwd entry{}, *found = nullptr;
    if (::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found) return false;
    uid = found->pw_uid;
    return true;
}
}  // namespace

std::error_code locate_broker(const Name& name, const std::string& server_user, BrokerAddress& out) {
    const uid_t me = ::geteuid();
    uid_t uid = me;
    if (!server_user.empty() && !resolve_user(server_user, uid)) return errc::not_found;
    out.socket_file = name_key(name) + ".sock";
    out.owner = uid;
    out.own = uid == me;
    if (out.own) {
        if (auto ec = runtime_directory(Scope::private_to_user, out.dir_path)) return ec;
        // Opened only when the socket's path is too long for an address (two system calls less an open).
        if (out.dir_path.size() + 1 + out.socket_file.size() < sizeof(sockaddr_un::sun_path)) return {};
        out.dir_fd = ::open(out.dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return out.dir_fd < 0 ? last_error() : std::error_code{};
    }
    return open_door_directory_of(uid, out.socket_file, out.dir_fd, out.dir_path);
}

bool name_has_live_servers(const BrokerAddress& address) {
    if (!address.own) return false;
    const std::string file = address.socket_file.substr(0, address.socket_file.size() - 5) + ".members";
    const int fd = address.dir_fd >= 0 ? ::openat(address.dir_fd, file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                                        : ::open((address.dir_path + "/" + file).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    struct flock probe{};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    const bool held = ::fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
    ::close(fd);
    return held;
}

}  // namespace pipeslot::posix
