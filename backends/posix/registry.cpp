#include "registry.hpp"

#include "../common/framing.hpp"
#include "fd.hpp"
#include "runtime_dir.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <random>
#include <thread>
#include <utility>
#include <sstream>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace pipeslot::posix {
namespace {

constexpr int listen_backlog = 64;

// --- small file helpers ---------------------------------------------------

std::error_code write_file(int dir_fd, const std::string& name, const std::string& content, mode_t mode) {
    const std::string temp = name + ".tmp";
    const int fd = ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return last_error();
    const bool ok = ::fchmod(fd, mode) == 0 &&  // past the umask
                    ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    if (!ok || ::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) < 0) {
        const auto ec = ok ? last_error() : make_error_code(errc::resource_exhausted);
        ::unlinkat(dir_fd, temp.c_str(), 0);
        return ec;
    }
    return {};
}

std::error_code read_small_file(int dir_fd, const std::string& name, std::string& out) {
    const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return last_error();
    char buffer[512];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (n < 0) return last_error();
    out.assign(buffer, static_cast<std::size_t>(n));
    return {};
}

std::string format_meta(const PipeMeta& m) {
    std::ostringstream s;
    s << "type=" << (m.type == PipeType::message ? "message" : "byte") << " access="
      << (m.access == PipeAccess::inbound ? "inbound" : m.access == PipeAccess::outbound ? "outbound" : "duplex")
      << " max=" << m.max_instances << " wait=" << m.default_wait_ms << " remote=" << (m.reject_remote ? 0 : 1)
      << "\n";
    return s.str();
}

// Another process's file: parse strictly, anything odd is "no such pipe".
std::error_code parse_meta(const std::string& text, PipeMeta& m) {
    char type[16] = {}, access[16] = {};
    unsigned max = 0;
    long long wait = 0;
    int remote = 0;
    if (std::sscanf(text.c_str(), "type=%15s access=%15s max=%u wait=%lld remote=%d", type, access, &max, &wait,
                    &remote) != 5)
        return errc::protocol_error;
    const std::string t = type, a = access;
    if ((t != "message" && t != "byte") || (a != "inbound" && a != "outbound" && a != "duplex") || max < 1 ||
        max > unlimited_instances || wait < -1 || (remote != 0 && remote != 1))
        return errc::protocol_error;
    m.type = t == "message" ? PipeType::message : PipeType::byte;
    m.access = a == "inbound" ? PipeAccess::inbound : a == "outbound" ? PipeAccess::outbound : PipeAccess::duplex;
    m.max_instances = max;
    m.default_wait_ms = wait;
    m.reject_remote = remote == 0;
    return {};
}

// Instance ids of the files in `dir_fd` that end with `suffix`.
std::vector<std::string> list_ids(int dir_fd, const char* suffix) {
    std::vector<std::string> ids;
    const int copy = ::dup(dir_fd);  // fdopendir takes ownership
    if (copy < 0) return ids;
    DIR* d = ::fdopendir(copy);
    if (!d) {
        ::close(copy);
        return ids;
    }
    ::rewinddir(d);
    const std::size_t suffix_len = std::strlen(suffix);
    while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n.size() == 16 + suffix_len && n.compare(16, suffix_len, suffix) == 0) ids.push_back(n.substr(0, 16));
    }
    ::closedir(d);
    return ids;
}

bool instance_alive(int dir_fd, const std::string& id) {
    const int fd = ::openat(dir_fd, (id + ".lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    const bool alive = ::flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return alive;
}

// Removes an instance's files: sockets only if they are sockets, the lock only
// if it is a regular file; anything else in the directory is left alone.
void remove_instance_files(const PipeDirectory& dir, const std::string& id) {
    struct stat st;
    for (const char* suffix : {".sock", ".busy"}) {
        const std::string f = id + suffix;
        if (::fstatat(dir.sockets_fd(), f.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
            ::unlinkat(dir.sockets_fd(), f.c_str(), 0);
    }
    const std::string lock = id + ".lock";
    if (::fstatat(dir.fd(), lock.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        ::unlinkat(dir.fd(), lock.c_str(), 0);
}

// Reclaims what crashed servers left; returns how many instances live.
unsigned reclaim_stale(const PipeDirectory& dir) {
    unsigned live = 0;
    for (const auto& id : list_ids(dir.fd(), ".lock")) {
        if (instance_alive(dir.fd(), id)) ++live;
        else remove_instance_files(dir, id);
    }
    return live;
}

unsigned count_live(const PipeDirectory& dir) {
    unsigned live = 0;
    for (const auto& id : list_ids(dir.fd(), ".lock")) live += instance_alive(dir.fd(), id) ? 1 : 0;
    return live;
}

// RUNTIME/KEY.lock, held exclusively. The file is removed by whoever removes
// the pipe's directory, so after locking, check it is still the linked one.
class NameLock {
public:
    std::error_code acquire(const std::string& runtime, const std::string& key) {
        path_ = runtime + "/" + key + ".lock";
        for (;;) {
            fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd_ < 0) return last_error();
            while (::flock(fd_, LOCK_EX) < 0) {
                if (errno != EINTR) return last_error();
            }
            struct stat held, linked;
            if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &linked) == 0 && held.st_ino == linked.st_ino &&
                held.st_dev == linked.st_dev)
                return {};
            ::close(fd_);  // removed meanwhile: lock the new one
        }
    }
    void remove() noexcept { ::unlink(path_.c_str()); }
    ~NameLock() {
        if (fd_ >= 0) ::close(fd_);
    }

private:
    int fd_ = -1;
    std::string path_;
};

std::string random_id() {
    std::random_device random;
    const std::uint64_t value = (static_cast<std::uint64_t>(random()) << 32) ^ random();
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
    return text;
}

bool client_access_allowed(PipeAccess pipe, ClientAccess client) {
    if (pipe == PipeAccess::inbound) return client == ClientAccess::write;
    if (pipe == PipeAccess::outbound) return client == ClientAccess::read;
    return true;
}

int bind_listener(const PipeDirectory& dir, const std::string& file) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto path = dir.address(file);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, listen_backlog) < 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

}  // namespace

// --- PipeDirectory ---------------------------------------------------------

PipeDirectory::PipeDirectory(PipeDirectory&& o) noexcept { *this = std::move(o); }

PipeDirectory& PipeDirectory::operator=(PipeDirectory&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = std::exchange(o.fd_, -1);
        sockets_fd_ = std::exchange(o.sockets_fd_, -1);
        path_ = std::move(o.path_);
        sockets_path_ = std::move(o.sockets_path_);
        owner_ = o.owner_;
    }
    return *this;
}

PipeDirectory::~PipeDirectory() { reset(); }

void PipeDirectory::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    if (sockets_fd_ >= 0) ::close(sockets_fd_);
    fd_ = sockets_fd_ = -1;
}

std::string PipeDirectory::address(const std::string& socket_file) const {
    return socket_address(sockets_fd_, sockets_path_, socket_file).path;
}

std::error_code PipeDirectory::open(const Name& name, bool create, bool shared, PipeDirectory& out) {
    std::string runtime;
    if (auto ec = runtime_directory(shared ? Scope::shared : Scope::private_to_user, runtime)) return ec;
    out.path_ = runtime + "/" + name_key(name);
    if (create && ::mkdir(out.path_.c_str(), 0700) == 0 && shared) ::chmod(out.path_.c_str(), 0755);
    out.fd_ = ::open(out.path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (out.fd_ < 0) return errno == ENOENT ? make_error_code(errc::not_found) : last_error();
    struct stat st;
    if (::fstat(out.fd_, &st) < 0) return last_error();
    out.owner_ = st.st_uid;
    // In the shared directory anyone could have made it first: a server uses only its own.
    if (create && st.st_uid != ::geteuid()) return errc::access_denied;
    if (!shared) {
        out.sockets_fd_ = ::dup(out.fd_);
        out.sockets_path_ = out.path_;
    } else {
        if (create && ::mkdirat(out.fd_, "claims", 0700) == 0) ::fchmodat(out.fd_, "claims", 0777, 0);
        out.sockets_fd_ = ::openat(out.fd_, "claims", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        out.sockets_path_ = out.path_ + "/claims";
    }
    if (out.sockets_fd_ < 0) return errno == ENOENT ? make_error_code(errc::not_found) : last_error();
    return {};
}

// --- server side -------------------------------------------------------------

std::error_code register_instance(const Name& name, const ServerOptions& options, Registration& out) {
    out.shared = options.allow_other_users;
    if (auto ec = runtime_directory(out.shared ? Scope::shared : Scope::private_to_user, out.runtime)) return ec;
    out.key = name_key(name);
    NameLock lock;
    if (auto ec = lock.acquire(out.runtime, out.key)) return ec;
    if (auto ec = PipeDirectory::open(name, true, out.shared, out.dir)) return ec;
    const mode_t file_mode = out.shared ? 0644 : 0600;

    PipeMeta wanted{options.type, options.access, options.max_instances,
                    options.default_wait.is_forever() ? -1 : options.default_wait.value().count(),
                    options.reject_remote_clients};
    const unsigned live = reclaim_stale(out.dir);
    if (live > 0) {
        if (options.first_instance) return errc::name_in_use;
        std::string text;
        PipeMeta existing;
        if (read_small_file(out.dir.fd(), "meta", text) || parse_meta(text, existing)) return errc::access_denied;
        // As on Windows: type and direction must match the existing instances';
        // the first instance's maximum and default wait stand for all.
        if (existing.type != wanted.type || existing.access != wanted.access) return errc::access_denied;
        if (existing.max_instances != unlimited_instances && live >= existing.max_instances)
            return errc::too_many_instances;
        out.meta = existing;
    } else {
        if (auto ec = write_file(out.dir.fd(), "meta", format_meta(wanted), file_mode)) return ec;
        out.meta = wanted;
    }

    out.id = random_id();
    const std::string lock_name = out.id + ".lock";
    out.lock_fd = ::openat(out.dir.fd(), lock_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file_mode);
    if (out.lock_fd < 0) return last_error();
    ::fchmod(out.lock_fd, file_mode);
    const std::string sizes =
        "in=" + std::to_string(options.in_buffer_size) + " out=" + std::to_string(options.out_buffer_size) + "\n";
    if (::flock(out.lock_fd, LOCK_EX | LOCK_NB) < 0 ||
        ::write(out.lock_fd, sizes.data(), sizes.size()) != static_cast<ssize_t>(sizes.size())) {
        const auto ec = last_error();
        unregister_instance(out);
        return ec;
    }
    out.listen_fd = bind_listener(out.dir, out.id + ".sock");
    // Connecting needs write permission on the socket file.
    if (out.listen_fd < 0 ||
        (out.shared && ::fchmodat(out.dir.sockets_fd(), (out.id + ".sock").c_str(), 0666, 0) < 0)) {
        const auto ec = last_error();
        unregister_instance(out);
        return ec;
    }
    return {};
}

void unregister_instance(Registration& r) noexcept {
    if (r.listen_fd >= 0) ::close(r.listen_fd);
    r.listen_fd = -1;
    if (r.dir.fd() < 0) return;
    NameLock lock;
    const bool locked = !lock.acquire(r.runtime, r.key);
    if (!r.id.empty()) remove_instance_files(r.dir, r.id);
    if (r.lock_fd >= 0) ::close(r.lock_fd);
    r.lock_fd = -1;
    if (locked && count_live(r.dir) == 0) {
        // The last instance: remove the pipe entirely (after any stale leftovers).
        reclaim_stale(r.dir);
        ::unlinkat(r.dir.fd(), "meta", 0);
        if (r.shared) ::unlinkat(r.dir.fd(), "claims", AT_REMOVEDIR);
        if (::rmdir(r.dir.path().c_str()) == 0) lock.remove();
    }
}

std::error_code set_listening(const Registration& r, bool listening) {
    const std::string sock = r.id + ".sock", busy = r.id + ".busy";
    const auto& from = listening ? busy : sock;
    const auto& to = listening ? sock : busy;
    if (::renameat(r.dir.sockets_fd(), from.c_str(), r.dir.sockets_fd(), to.c_str()) < 0 && errno != ENOENT)
        return last_error();
    return {};
}

bool is_claimed(const Registration& r) {
    struct stat st;
    return ::fstatat(r.dir.sockets_fd(), (r.id + ".busy").c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// --- client side ---------------------------------------------------------------

namespace {

enum class Attempt { claimed, busy, none };

bool peer_is(int fd, uid_t uid) {
    ucred cred{};
    socklen_t size = sizeof cred;
    return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) == 0 && cred.uid == uid;
}

Attempt try_claim(const PipeDirectory& dir, ClientAccess access, int& fd_out, std::string& id_out) {
    auto ids = list_ids(dir.sockets_fd(), ".sock");
    if (ids.empty()) return count_live(dir) > 0 ? Attempt::busy : Attempt::none;
    // Spread clients over the free instances.
    thread_local std::minstd_rand shuffle_random{std::random_device{}()};
    std::shuffle(ids.begin(), ids.end(), shuffle_random);
    for (const auto& id : ids) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return Attempt::none;
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const auto path = dir.address(id + ".sock");
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        // Connect first, then rename: the server can then tell a claim that
        // died (its connection closes) from one still being made.
        // Only the pipe's creator can be listening there (anyone may plant a
        // socket in a shared pipe's claims directory; that is not the server).
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && peer_is(fd, dir.owner()) &&
            ::renameat(dir.sockets_fd(), (id + ".sock").c_str(), dir.sockets_fd(), (id + ".busy").c_str()) == 0) {
            const auto hello = detail::encode_hello({detail::protocol_version, access, false});
            const auto header = detail::encode_header({detail::FrameKind::hello, detail::hello_payload_size});
            std::byte frame[detail::frame_header_size + detail::hello_payload_size];
            std::memcpy(frame, header.data(), header.size());
            std::memcpy(frame + header.size(), hello.data(), hello.size());
            // An empty socket buffer always has room for these 12 bytes.
            if (::send(fd, frame, sizeof frame, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof frame)) {
                fd_out = fd;
                id_out = id;
                return Attempt::claimed;
            }
        }
        ::close(fd);  // lost the race, or the listener is gone (stale)
    }
    return count_live(dir) > 0 ? Attempt::busy : Attempt::none;
}

// Blocks until the directory changes (an instance freed or added) or the deadline.
void wait_for_change(int inotify_fd, const detail::Deadline& deadline) {
    std::error_code ignored;
    if (!wait_ready(inotify_fd, POLLIN, deadline, ignored)) return;
    char events[4096];
    while (::read(inotify_fd, events, sizeof events) > 0) {
    }
}

}  // namespace

std::error_code claim_instance(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                               Claim& out) {
    const ClientAccess access = options.access;
    PipeDirectory dir;
    if (auto ec = PipeDirectory::open(name, false, false, dir)) {
        if (ec != errc::not_found || PipeDirectory::open(name, false, true, dir)) return errc::not_found;
    }
    std::string text;
    if (read_small_file(dir.fd(), "meta", text) || parse_meta(text, out.meta)) return errc::not_found;
    if (!client_access_allowed(out.meta.access, access)) return errc::access_denied;
    if (options.read_mode == ReadMode::message && out.meta.type == PipeType::byte) return errc::invalid_argument;
    const detail::Deadline deadline =
        options.use_server_default_wait
            ? detail::Deadline(out.meta.default_wait_ms < 0 ? Timeout::forever()
                                                            : Timeout(std::chrono::milliseconds(out.meta.default_wait_ms)))
            : wait;

    int inotify_fd = -1;
    bool watching = false;
    std::string id;
    Attempt result;
    for (;;) {
        result = try_claim(dir, access, out.fd, id);
        if (result != Attempt::busy || deadline.expired()) break;
        if (!watching) {
            // Watch first, then try again, so a release in between is not missed.
            watching = true;
            inotify_fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
            if (inotify_fd >= 0 &&
                ::inotify_add_watch(inotify_fd, dir.sockets_path().c_str(), IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
                ::close(inotify_fd);
                inotify_fd = -1;
            }
            continue;
        }
        if (inotify_fd >= 0) wait_for_change(inotify_fd, deadline);
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));  // no inotify: poll the directory
    }
    if (inotify_fd >= 0) ::close(inotify_fd);
    if (result == Attempt::busy) return errc::pipe_busy;
    if (result == Attempt::none) return errc::not_found;
    std::string sizes;
    if (!read_small_file(dir.fd(), id + ".lock", sizes)) {
        unsigned long long in = 0, outsize = 0;
        if (std::sscanf(sizes.c_str(), "in=%llu out=%llu", &in, &outsize) == 2) out.sizes = {in, outsize};
    }
    return {};
}

}  // namespace pipeslot::posix
