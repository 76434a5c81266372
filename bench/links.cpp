#include "links.hpp"

#include <pipeslot/pipeslot.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#if BENCH_HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#endif
#if BENCH_HAVE_ZMQ
#include <zmq.h>
#endif

namespace bench {
namespace {

[[noreturn]] void die(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

// `poll_first`: wait in poll() before each read instead of blocking in it.
bool read_exactly(int fd, std::byte* p, std::size_t n, bool poll_first = false) {
    while (n > 0) {
        if (poll_first) {
            pollfd ready{fd, POLLIN, 0};
            ::poll(&ready, 1, -1);
        }
        const ssize_t r = ::read(fd, p, n);
        if (r == 0) return false;
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// --- the raw baselines ---------------------------------------------------------

class RawStream final : public Link {
public:
    RawStream(int read_fd, int write_fd, bool poll_first = false)
        : in_(read_fd), out_(write_fd), poll_first_(poll_first) {}
    ~RawStream() override {
        if (in_ >= 0) ::close(in_);
        if (out_ >= 0 && out_ != in_) ::close(out_);
    }
    void send(const std::byte* data, std::size_t size) override {
        const std::uint32_t length = static_cast<std::uint32_t>(size);
        iovec parts[2] = {{const_cast<std::uint32_t*>(&length), sizeof length}, {const_cast<std::byte*>(data), size}};
        write_all(parts, 2, sizeof length + size);
    }
    void send_batch(const std::byte* data, std::size_t size, int count) override {  // one writev
        const std::uint32_t length = static_cast<std::uint32_t>(size);
        parts_.clear();
        for (int i = 0; i < count; ++i) {
            parts_.push_back({const_cast<std::uint32_t*>(&length), sizeof length});
            parts_.push_back({const_cast<std::byte*>(data), size});
        }
        write_all(parts_.data(), static_cast<int>(parts_.size()), count * (sizeof length + size));
    }
    long receive(std::vector<std::byte>& buffer) override {
        std::uint32_t length;
        if (!read_exactly(in_, reinterpret_cast<std::byte*>(&length), sizeof length, poll_first_)) return -1;
        if (!read_exactly(in_, buffer.data(), length, poll_first_)) return -1;
        return length;
    }

private:
    void write_all(iovec* v, int count, std::size_t left) {
        while (left > 0) {
            const ssize_t n = ::writev(out_, v, count);
            if (n < 0) {
                if (errno == EINTR) continue;
                die("writev");
            }
            left -= static_cast<std::size_t>(n);
            for (std::size_t done = static_cast<std::size_t>(n); done > 0 && count > 0;) {
                if (done >= v->iov_len) {
                    done -= v->iov_len;
                    ++v;
                    --count;
                } else {
                    v->iov_base = static_cast<char*>(v->iov_base) + done;
                    v->iov_len -= done;
                    done = 0;
                }
            }
        }
    }
    int in_, out_;
    bool poll_first_;
    std::vector<iovec> parts_;
};

class RawDatagram final : public Link {
public:
    explicit RawDatagram(int fd) : fd_(fd) {}
    ~RawDatagram() override { ::close(fd_); }
    void send(const std::byte* data, std::size_t size) override {
        while (::send(fd_, data, size, 0) < 0)
            if (errno != EINTR) die("send");
    }
    long receive(std::vector<std::byte>& buffer) override {
        const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
        return n < 0 ? -1 : n;
    }

private:
    int fd_;
};

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    return a;
}

int unix_connect(const std::string& path, int type) {
    const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    const auto a = unix_address(path);
    for (int tries = 0; ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0; ++tries) {
        if (tries > 2000) die("connect " + path);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the server may still be starting
    }
    return fd;
}

int tcp_connect(const std::string& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int tries = 0; ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0; ++tries) {
        if (tries > 2000) die("connect tcp");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// --- pipeslot ------------------------------------------------------------------------

class PipeslotPipe final : public Link {
public:
    PipeslotPipe(int read_fd, int write_fd) : in_(read_fd), out_(write_fd) {}
    void send(const std::byte* data, std::size_t size) override {
        frame_.resize(4 + size);
        const std::uint32_t length = static_cast<std::uint32_t>(size);
        std::memcpy(frame_.data(), &length, 4);
        std::memcpy(frame_.data() + 4, data, size);
        out_.write(frame_);
    }
    long receive(std::vector<std::byte>& buffer) override {
        std::uint32_t length;
        if (!read_exactly(reinterpret_cast<std::byte*>(&length), 4) || !read_exactly(buffer.data(), length)) return -1;
        return length;
    }

private:
    bool read_exactly(std::byte* p, std::size_t n) {
        while (n > 0) {
            std::error_code ec;
            const auto got = in_.read(std::span(p, n), pipeslot::Timeout::forever(), ec);
            if (ec) return false;
            p += got;
            n -= got;
        }
        return true;
    }
    pipeslot::PipeReadEnd in_;
    pipeslot::PipeWriteEnd out_;
    std::vector<std::byte> frame_;
};

class PipeslotChannel final : public Link {
public:
    explicit PipeslotChannel(pipeslot::MessageChannel& c) : c_(c) {}
    void send(const std::byte* data, std::size_t size) override { c_.send(std::span(data, size)); }
    void send_batch(const std::byte* data, std::size_t size, int count) override {
        messages_.assign(static_cast<std::size_t>(count), std::span(data, size));
        c_.send_messages(messages_);
    }
    long receive(std::vector<std::byte>& buffer) override {
        std::error_code ec;
        const auto n = c_.receive(buffer, pipeslot::Timeout::forever(), ec);
        return ec ? -1 : static_cast<long>(n);
    }

private:
    pipeslot::MessageChannel& c_;
    std::vector<std::span<const std::byte>> messages_;
};

class OwnedChannel final : public Link {
public:
    explicit OwnedChannel(pipeslot::MessageChannel c) : c_(std::move(c)), link_(c_) {}
    void send(const std::byte* data, std::size_t size) override { link_.send(data, size); }
    void send_batch(const std::byte* data, std::size_t size, int count) override { link_.send_batch(data, size, count); }
    long receive(std::vector<std::byte>& buffer) override { return link_.receive(buffer); }

private:
    pipeslot::MessageChannel c_;
    PipeslotChannel link_;
};

class PipeslotSlotWriter final : public Link {
public:
    explicit PipeslotSlotWriter(const std::string& name) : b_(pipeslot::Broadcaster::open(name)) {}
    void send(const std::byte* data, std::size_t size) override {
        std::error_code ec;
        b_.send(std::span(data, size), pipeslot::Timeout::forever(), ec);
        if (ec) throw std::system_error(ec, "mailslot send");
    }
    long receive(std::vector<std::byte>&) override { return -1; }

private:
    pipeslot::Broadcaster b_;
};

#if BENCH_HAVE_NNG
class NngLink final : public Link {
public:
    NngLink(const std::string& address, bool listen) {
        nng_pair0_open(&s_);
        const auto url = "ipc://" + address;
        if ((listen ? nng_listen(s_, url.c_str(), nullptr, 0) : nng_dial(s_, url.c_str(), nullptr, NNG_FLAG_NONBLOCK)) != 0)
            throw std::runtime_error("nng " + url);
    }
    ~NngLink() override { nng_close(s_); }
    void send(const std::byte* data, std::size_t size) override { nng_send(s_, const_cast<std::byte*>(data), size, 0); }
    long receive(std::vector<std::byte>& buffer) override {
        std::size_t size = buffer.size();
        return nng_recv(s_, buffer.data(), &size, 0) == 0 ? static_cast<long>(size) : -1;
    }

private:
    nng_socket s_;
};
#endif

#if BENCH_HAVE_ZMQ
class ZmqLink final : public Link {
public:
    ZmqLink(const std::string& address, bool listen) : ctx_(zmq_ctx_new()), s_(zmq_socket(ctx_, ZMQ_PAIR)) {
        const auto url = "ipc://" + address;
        if ((listen ? zmq_bind(s_, url.c_str()) : zmq_connect(s_, url.c_str())) != 0) throw std::runtime_error("zmq " + url);
    }
    ~ZmqLink() override {
        zmq_close(s_);
        zmq_ctx_term(ctx_);
    }
    void send(const std::byte* data, std::size_t size) override { zmq_send(s_, data, size, 0); }
    long receive(std::vector<std::byte>& buffer) override {
        const int n = zmq_recv(s_, buffer.data(), buffer.size(), 0);
        return n < 0 ? -1 : n;
    }

private:
    void* ctx_;
    void* s_;
};
#endif

// --- servers ---------------------------------------------------------------------------

// Echo a message starting with 'e'; count the others; "A" for a zero-length one.
// The buffer fits the largest message any case sends (64 KiB). It was 1 MiB: a
// connection case then measured the allocator more than the connection (each
// new connection of a pipe server goes to the instance that has listened
// longest, whose thread's arena had handed that memory back to the kernel).
constexpr std::size_t largest_message = 64 * 1024;

void serve_link(Link& link) {
    std::vector<std::byte> buffer(largest_message);
    const std::byte ack{'A'};
    for (;;) {
        const long n = link.receive(buffer);
        if (n < 0) return;
        if (n == 0) link.send(&ack, 1);
        else if (buffer[0] == std::byte{'e'}) link.send(buffer.data(), static_cast<std::size_t>(n));
    }
}

int listen_unix(const std::string& path, int type) {
    ::unlink(path.c_str());
    const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    const auto a = unix_address(path);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) die("bind " + path);
    if (type == SOCK_STREAM) ::listen(fd, 128);
    return fd;
}

int listen_tcp(const std::string& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) die("bind tcp");
    ::listen(fd, 128);
    return fd;
}

// A thread per connection, as the pipeslot server has a thread per instance.
void accept_forever(int listener, bool tcp, bool poll_first) {
    for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        if (tcp) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        std::thread([fd, poll_first] {
            RawStream link(fd, fd, poll_first);
            serve_link(link);
        }).detach();
    }
}

}  // namespace

const char* kind_name(Kind k) {
    switch (k) {
    case Kind::pipe_pipeslot: return "pipeslot Pipe";
    case Kind::pipe_raw: return "raw pipe(2)";
    case Kind::channel_pipeslot: return "pipeslot MessageChannel";
    case Kind::channel_raw: return "raw AF_UNIX stream";
    case Kind::channel_raw_poll: return "raw AF_UNIX stream, poll before read";
    case Kind::slot_pipeslot: return "pipeslot Broadcaster";
    case Kind::slot_raw: return "raw AF_UNIX datagram";
    case Kind::tcp_raw: return "raw TCP loopback";
    case Kind::nng_pair: return "nng ipc pair";
    case Kind::zmq_pair: return "ZeroMQ ipc pair";
    case Kind::uv_pipe: return "libuv pipe";
    }
    return "?";
}

bool kind_available(Kind k) {
    if (k == Kind::nng_pair) return BENCH_HAVE_NNG;
    if (k == Kind::zmq_pair) return BENCH_HAVE_ZMQ;
    if (k == Kind::uv_pipe) return BENCH_HAVE_UV;
    return true;
}

std::unique_ptr<Link> connect_link(Kind k, const std::string& address, int read_fd, int write_fd) {
    switch (k) {
    case Kind::pipe_pipeslot: return std::make_unique<PipeslotPipe>(read_fd, write_fd);
    case Kind::pipe_raw: return std::make_unique<RawStream>(read_fd, write_fd);
    case Kind::channel_raw:
    case Kind::channel_raw_poll: {
        const int fd = unix_connect(address, SOCK_STREAM);
        return std::make_unique<RawStream>(fd, fd, k == Kind::channel_raw_poll);
    }
    case Kind::tcp_raw: {
        const int fd = tcp_connect(address);
        return std::make_unique<RawStream>(fd, fd);
    }
    case Kind::channel_pipeslot: {
        pipeslot::ClientOptions o;
        o.wait = std::chrono::seconds(10);
        for (int tries = 0;; ++tries) {  // the server may still be starting
            std::error_code ec;
            auto c = pipeslot::MessageChannel::open(address, o, ec);
            if (!ec) return std::make_unique<OwnedChannel>(std::move(c));
            if (tries > 2000) throw std::system_error(ec, address);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    case Kind::slot_raw: return std::make_unique<RawDatagram>(unix_connect(address, SOCK_DGRAM));
    case Kind::slot_pipeslot: return std::make_unique<PipeslotSlotWriter>(address);
#if BENCH_HAVE_NNG
    case Kind::nng_pair: return std::make_unique<NngLink>(address, false);
#endif
#if BENCH_HAVE_UV
    case Kind::uv_pipe:
        for (int tries = 0;; ++tries) {  // the server may still be starting
            try {
                return connect_uv(address);
            } catch (const std::exception&) {
                if (tries > 2000) throw;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
#endif
#if BENCH_HAVE_ZMQ
    case Kind::zmq_pair: return std::make_unique<ZmqLink>(address, false);
#endif
    default: throw std::runtime_error("not available");
    }
}

int serve(Kind k, const std::string& address, int instances) {
    switch (k) {
    case Kind::pipe_pipeslot: {
        PipeslotPipe link(0, 1);
        serve_link(link);
        return 0;
    }
    case Kind::pipe_raw: {
        RawStream link(0, 1);
        serve_link(link);
        return 0;
    }
    case Kind::channel_pipeslot: {
        std::error_code ec;
        pipeslot::ServerOptions o;
        // The pipe's quotas as large as the raw socket's kernel buffer (Linux's
        // default 208 KiB), so both let a writer run as far ahead of its reader.
        o.in_buffer_size = o.out_buffer_size = 256 * 1024;
        auto server = pipeslot::PipeServer::start(address, o, static_cast<std::size_t>(instances),
                                                  pipeslot::PipeServer::ConnectionHandler([](pipeslot::PipeInstance& i) {
                                                      PipeslotChannel link(i);
                                                      serve_link(link);
                                                  }),
                                                  ec);
        if (ec) throw std::system_error(ec, address);
        std::fprintf(stderr, "ready\n");
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        ::_exit(0);  // threads may be in handlers; the process simply ends
    }
    case Kind::channel_raw:
    case Kind::channel_raw_poll:
    case Kind::tcp_raw: {
        const bool tcp = k == Kind::tcp_raw, poll_first = k == Kind::channel_raw_poll;
        const int listener = tcp ? listen_tcp(address) : listen_unix(address, SOCK_STREAM);
        std::thread([listener, tcp, poll_first] { accept_forever(listener, tcp, poll_first); }).detach();
        std::fprintf(stderr, "ready\n");
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        ::unlink(address.c_str());
        ::_exit(0);
    }
    case Kind::slot_pipeslot:
    case Kind::slot_raw: {
        std::unique_ptr<Link> link;
        pipeslot::Mailslot slot;
        std::unique_ptr<RawDatagram> raw;
        if (k == Kind::slot_raw) raw = std::make_unique<RawDatagram>(listen_unix(address, SOCK_DGRAM));
        else slot = pipeslot::Mailslot::create(address);
        std::fprintf(stderr, "ready\n");
        std::vector<std::byte> buffer(1 << 16);
        for (;;) {  // one way: the zero-length end marker is answered on stdout
            std::error_code ec;
            const long n = raw ? raw->receive(buffer) : static_cast<long>(slot.receive(buffer, ec));
            if (n < 0 || ec) return 1;
            if (n == 0) {
                if (::write(1, "A", 1) < 0) return 1;
            }
        }
    }
#if BENCH_HAVE_NNG
    case Kind::nng_pair: {
        NngLink link(address, true);
        std::fprintf(stderr, "ready\n");
        serve_link(link);
        return 0;
    }
#endif
#if BENCH_HAVE_UV
    case Kind::uv_pipe: return serve_uv(address);
#endif
#if BENCH_HAVE_ZMQ
    case Kind::zmq_pair: {
        ZmqLink link(address, true);
        std::fprintf(stderr, "ready\n");
        serve_link(link);
        return 0;
    }
#endif
    default: return 2;
    }
}

}  // namespace bench
