// Publications to smbd (smb_front.hpp): this process's listening sockets
// under smbd's np directory, and a thread per SMB open.
#include "smb_front.hpp"

#include "../common/cancel_until.hpp"
#include "../common/platform.hpp"
#include "../common/smb_handshake.hpp"
#include "../common/utf8.hpp"
#include "fd.hpp"
#include "relay.hpp"

#include <pipeslot/error.hpp>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unicode/uchar.h>
#include <vector>

namespace pipeslot::posix {
namespace {

constexpr const char* default_np_directory = "/run/samba/ncalrpc/np";
// smbd writes its request at once, and waits for the answer as long.
constexpr auto handshake_time = std::chrono::seconds(10);
constexpr std::size_t byte_mode_chunk = 64 * 1024;

// The socket smbd connects to for `name`: smbd lower-cases the name it was
// asked for (strlower_talloc, one code point at a time) and appends it.
std::error_code socket_path(const PipeName& name, const std::string& directory, std::string& path) {
    const auto code_points = detail::decode_utf8(name.name());
    if (!code_points) return make_error_code(errc::invalid_name);
    std::string lower;
    for (const char32_t c : *code_points) {
        if (c == U'/') return make_error_code(errc::invalid_name);  // no path smbd would build
        detail::append_utf8(lower, static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
    }
    std::string dir = directory;
    if (dir.empty()) {
        const char* from_environment = std::getenv("PIPESLOT_SMB_DIRECTORY");
        dir = from_environment && *from_environment ? from_environment : default_np_directory;
    }
    path = dir + "/" + lower;
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) return make_error_code(errc::invalid_name);
    return {};
}

// Reads what smbd sent, at least a byte, unless it closed or `stop_fd` fired.
std::size_t read_some(Transport& smbd, std::span<std::byte> into, int stop_fd) {
    for (;;) {
        const auto r = smbd.read(into);
        if (r.status == Transport::Status::done) return r.bytes;
        if (r.status != Transport::Status::again_read) return 0;
        pollfd p[2] = {{smbd.fd(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if ((::poll(p, 2, -1) < 0 && errno != EINTR) || p[1].revents) return 0;
    }
}

}  // namespace

// One published name: the listening socket and its connections.
class Publication {
public:
    Publication(PipeName name, std::string path) : name_(std::move(name)), path_(std::move(path)) {}
    std::error_code listen();
    // Under the registry's lock, so a new publication of the path can bind at once:
    // the socket leaves the directory, if it is still the one made here.
    void withdraw() noexcept;
    // Outside it: ends the accepting thread and every connection, and waits for them.
    void stop() noexcept;

private:
    struct Connection {
        int fd = -1;                           // smbd's; the connection's thread closes it
        platform::Channel* channel = nullptr;  // the pipe's client end while it is open (guarded by mutex_)
        bool done = false;
    };
    void accept_loop();
    void serve(Connection& c);
    // smbd's bytes to the pipe, until either side ends; the other way on a thread of its own.
    void relay(Connection& c, platform::Channel& pipe, PipeType type);
    void to_client(int fd, platform::Channel& pipe, PipeType type) noexcept;
    void reap_locked();

    const PipeName name_;
    const std::string path_;
    dev_t device_ = 0;
    ino_t inode_ = 0;
    Fd listener_;
    Fd stop_event_;  // readable once stop() is called
    std::thread acceptor_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool stopping_ = false;
    std::list<std::pair<Connection, std::thread>> connections_;  // guarded by mutex_
};

std::error_code Publication::listen() {
    stop_event_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (stop_event_.get() < 0 || listener_.get() < 0) return make_error_code(errc::resource_exhausted);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
    if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        return make_error_code(errno == EADDRINUSE ? errc::name_in_use
                               : errno == ENOENT   ? errc::not_found
                               : errno == EACCES || errno == EPERM || errno == EROFS ? errc::access_denied
                                                                                        : errc::invalid_argument);
    struct stat made {};
    if (::lstat(path_.c_str(), &made) == 0) device_ = made.st_dev, inode_ = made.st_ino;
    (void)::chmod(path_.c_str(), 0600);  // smbd connects as root; nobody else is served anyway
    if (::listen(listener_.get(), 64) != 0) {
        withdraw();
        return make_error_code(errc::resource_exhausted);
    }
    try {
        acceptor_ = std::thread([this] { accept_loop(); });
    } catch (const std::system_error&) {
        withdraw();
        return make_error_code(errc::resource_exhausted);
    }
    return {};
}

void Publication::withdraw() noexcept {
    struct stat now {};
    if (inode_ && ::lstat(path_.c_str(), &now) == 0 && now.st_dev == device_ && now.st_ino == inode_)
        ::unlink(path_.c_str());
    inode_ = 0;
}

void Publication::stop() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(stop_event_.get(), &one, sizeof one);
    if (acceptor_.joinable()) acceptor_.join();
    std::unique_lock lock(mutex_);
    stopping_ = true;
    for (auto& [c, thread] : connections_)
        if (!c.done) ::shutdown(c.fd, SHUT_RDWR);
    const auto all_done = [&] {
        for (auto& [c, thread] : connections_)
            if (!c.done) return false;
        return true;
    };
    // A connection may be blocked in the pipe's receive or send: cancelled until it has seen the stop.
    detail::cancel_until(lock, changed_, all_done, [&] {
        std::lock_guard again(mutex_);
        for (auto& [c, thread] : connections_)
            if (c.channel) platform::cancel(*c.channel);
    });
    reap_locked();
}

void Publication::reap_locked() {
    for (auto it = connections_.begin(); it != connections_.end();) {
        if (!it->first.done) {
            ++it;
            continue;
        }
        it->second.join();
        it = connections_.erase(it);
    }
}

void Publication::accept_loop() {
    for (;;) {
        pollfd p[2] = {{listener_.get(), POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
        if (p[1].revents) return;
        const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: rest, never spin
            continue;
        }
        std::lock_guard lock(mutex_);
        reap_locked();
        auto& entry = connections_.emplace_back();
        entry.first.fd = fd;
        try {
            entry.second = std::thread([this, &c = entry.first] {
                serve(c);
                std::lock_guard done_lock(mutex_);
                ::close(c.fd);
                c.done = true;
                changed_.notify_all();
            });
        } catch (const std::system_error&) {
            connections_.pop_back();
            ::close(fd);
        }
    }
}

void Publication::serve(Connection& c) {
    // Only smbd, which connects as root, says who its client is: from anyone else nothing is read.
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.uid != 0) return;

    SocketTransport smbd(c.fd);
    const detail::Deadline deadline(handshake_time);
    std::array<std::byte, detail::npa_length_size> prefix{};
    if (!transfer_exactly(smbd, prefix, true, deadline, stop_event_.get())) return;
    const auto length = detail::decode_npa_length(prefix);
    if (!length) return;
    std::vector<std::byte> body(*length);
    if (!transfer_exactly(smbd, body, true, deadline, stop_event_.get())) return;
    detail::NpaRequest request;
    if (detail::decode_npa_request(body, request) != detail::NpaResult::ok) return;
    const auto user = detail::session_user_sid(request.session_info);
    if (!user) return;  // smbd 4.17 takes no refusal code: closing is the refusal

    // The SMB open asked for no particular access: the pipe's own directions.
    GatewayCall call{stop_event_.get(), c.fd, *user, 0, request.remote_client_addr.value_or("")};
    std::unique_ptr<platform::Channel, platform::ChannelDeleter> pipe;
    std::error_code ec;
    for (const auto access : {ClientAccess::read_write, ClientAccess::read, ClientAccess::write}) {
        ClientOptions options;
        options.access = access;
        ec = open_channel_for(name_, options, detail::Deadline(Timeout::none()), call, pipe);
        if (ec != errc::access_denied) break;
    }
    if (ec) return;
    const auto type = platform::info(*pipe, ec).type;
    auto reply = detail::encode_npa_reply(request.level,
                                          type == PipeType::message ? detail::SmbPipeType::message : detail::SmbPipeType::byte);
    if (ec || !transfer_exactly(smbd, reply, false, deadline, stop_event_.get())) return;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        c.channel = pipe.get();
    }
    relay(c, *pipe, type);
    std::lock_guard lock(mutex_);
    c.channel = nullptr;  // then closed: the server reads to the end and sees the client gone
}

void Publication::relay(Connection& c, platform::Channel& pipe, PipeType type) {
    std::mutex done_mutex;
    std::condition_variable done_changed;
    bool client_side_done = false;
    std::thread other;
    try {
        other = std::thread([&] {
            to_client(c.fd, pipe, type);
            std::lock_guard lock(done_mutex);
            client_side_done = true;
            done_changed.notify_all();
        });
    } catch (const std::system_error&) {
        return;
    }
    SocketTransport smbd(c.fd);
    const detail::Deadline forever(Timeout::forever());
    std::vector<std::byte> buffer(std::max(detail::max_smb_message, byte_mode_chunk));
    for (;;) {
        std::size_t n = 0;
        if (type == PipeType::message) {
            std::array<std::byte, detail::smb_message_header_size> header{};
            if (!transfer_exactly(smbd, header, true, forever, stop_event_.get())) break;
            const auto size = detail::decode_smb_message_header(header);
            if (!size || !transfer_exactly(smbd, std::span(buffer).first(*size), true, forever, stop_event_.get())) break;
            n = *size;
        } else if ((n = read_some(smbd, buffer, stop_event_.get())) == 0) {
            break;
        }
        std::error_code ec;
        platform::send(pipe, std::span(buffer).first(n), forever, ec);
        if (ec) break;
    }
    ::shutdown(c.fd, SHUT_RDWR);  // what the server still sends has nobody to go to
    std::unique_lock lock(done_mutex);
    detail::cancel_until(lock, done_changed, [&] { return client_side_done; }, [&] { platform::cancel(pipe); });
    lock.unlock();
    other.join();
}

void Publication::to_client(int fd, platform::Channel& pipe, PipeType type) noexcept {
    SocketTransport smbd(fd);
    const detail::Deadline forever(Timeout::forever());
    const std::size_t header = type == PipeType::message ? detail::smb_message_header_size : 0;
    std::vector<std::byte> buffer(header + (type == PipeType::message ? detail::max_smb_message : byte_mode_chunk));
    for (;;) {
        std::error_code ec;
        const auto n = platform::receive(pipe, std::span(buffer).subspan(header), forever, ec);
        // A message smbd cannot frame: longer than 65,535 bytes (the client
        // would get it cut in parts, so it gets the pipe's end instead).
        if (ec) break;
        if (type == PipeType::message) {
            if (n == 0) continue;  // no frame says "empty" to smbd: see docs/samba.md
            const auto h = detail::encode_smb_message_header(n);
            std::memcpy(buffer.data(), h->data(), h->size());
        }
        if (!transfer_exactly(smbd, std::span(buffer).first(header + n), false, forever, stop_event_.get())) break;
    }
    ::shutdown(fd, SHUT_RDWR);  // smbd's client learns the server has gone; the other way ends too
}

// --- the registry: one publication per path in this process ----------------

namespace {

struct Entry {
    std::unique_ptr<Publication> publication;
    std::size_t shares = 0;
};
std::mutex registry_mutex;
std::map<std::string, Entry>& registry() {
    static auto* entries = new std::map<std::string, Entry>;  // never destroyed: shares may outlive statics
    return *entries;
}

}  // namespace

class SmbPublication {
public:
    explicit SmbPublication(std::string path) : path_(std::move(path)) {}
    SmbPublication(const SmbPublication&) = delete;
    SmbPublication& operator=(const SmbPublication&) = delete;
    ~SmbPublication() {
        std::unique_ptr<Publication> last;
        {
            std::lock_guard lock(registry_mutex);
            auto it = registry().find(path_);
            if (it == registry().end() || --it->second.shares > 0) return;
            last = std::move(it->second.publication);
            registry().erase(it);
            last->withdraw();
        }
        last->stop();
    }

private:
    std::string path_;
};

std::error_code publish_for_smb(const PipeName& name, const std::string& directory,
                                std::shared_ptr<SmbPublication>& out) {
    std::string path;
    if (auto ec = socket_path(name, directory, path)) return ec;
    std::lock_guard lock(registry_mutex);
    auto& entry = registry()[path];
    if (!entry.publication) {
        auto made = std::make_unique<Publication>(name, path);
        if (auto ec = made->listen()) {
            registry().erase(path);
            return ec;
        }
        entry.publication = std::move(made);
    }
    try {
        out = std::make_shared<SmbPublication>(path);
    } catch (const std::bad_alloc&) {
        if (entry.shares == 0) {  // nobody else holds it: undone at once
            auto made = std::move(entry.publication);
            registry().erase(path);
            made->withdraw();
            made->stop();
        }
        return make_error_code(errc::resource_exhausted);
    }
    ++entry.shares;
    return {};
}

}  // namespace pipeslot::posix
