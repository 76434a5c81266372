#include "runtime_dir.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace pipeslot::posix {
namespace {

std::string choose_private_directory() {
    if (const char* forced = std::getenv("PIPESLOT_RUNTIME_DIR"); forced && *forced) return forced;
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/pipeslot";
    return "/tmp/pipeslot-" + std::to_string(::geteuid());
}

std::string choose_shared_directory() {
    if (const char* forced = std::getenv("PIPESLOT_SHARED_DIR"); forced && *forced) return forced;
    return "/tmp/pipeslot-shared";
}

}  // namespace

std::error_code check_private_directory(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) < 0) return last_error();
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 0077) != 0) return errc::access_denied;
    return {};
}

std::error_code check_shared_directory(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) < 0) return last_error();
    if (!S_ISDIR(st.st_mode) || (st.st_mode & S_ISVTX) == 0 || (st.st_uid != 0 && st.st_uid != ::geteuid()))
        return errc::access_denied;
    return {};
}

std::error_code runtime_directory(Scope scope, std::string& out) {
    // Checked once per process and scope; the environment is read at first use.
    struct Checked {
        std::once_flag once;
        std::string path;
        std::error_code error;
    };
    static Checked checked[2];
    auto& c = checked[scope == Scope::shared ? 1 : 0];
    std::call_once(c.once, [&] {
        if (scope == Scope::private_to_user) {
            c.path = choose_private_directory();
            if (::mkdir(c.path.c_str(), 0700) < 0 && errno != EEXIST) c.error = last_error();
            else c.error = check_private_directory(c.path);
        } else {
            c.path = choose_shared_directory();
            if (::mkdir(c.path.c_str(), 01777) == 0) ::chmod(c.path.c_str(), 01777);  // past the umask
            c.error = check_shared_directory(c.path);
        }
    });
    out = c.path;
    return c.error;
}

std::string name_key(const Name& name) { return name_key(name.kind(), name.folded_name()); }

std::string name_key(NameKind kind, std::string_view folded_name) {
    // FNV-1a, 128 bits: stable across compilers and processes, and collisions
    // between two of one user's names are not a practical concern.
    unsigned __int128 hash = (static_cast<unsigned __int128>(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
    const unsigned __int128 prime = (static_cast<unsigned __int128>(0x0000000001000000ULL) << 64) | 0x000000000000013BULL;
    for (unsigned char c : folded_name) {
        hash ^= c;
        hash *= prime;
    }
    static const char digits[] = "0123456789abcdef";
    std::string key = kind == NameKind::pipe ? "p-" : "m-";
    for (int shift = 124; shift >= 0; shift -= 4) key.push_back(digits[static_cast<unsigned>(hash >> shift) & 15]);
    return key;
}

SocketAddress socket_address(int dir_fd, const std::string& dir_path, const std::string& file) {
    std::string full = dir_path + "/" + file;
    if (full.size() < sizeof(sockaddr_un::sun_path)) return {full};
    // Linux resolves /proc/self/fd/N as the open directory itself.
    return {"/proc/self/fd/" + std::to_string(dir_fd) + "/" + file};
}

}  // namespace pipeslot::posix
