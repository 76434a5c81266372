#include "links.hpp"

#include <pipeslot/pipeslot.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <utility>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

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

// --- raw TLS 1.3 (OpenSSL), the TLS rows' reference ---------------------------------
// Set up as the gateway and its clients set up theirs (backends/posix/tls.cpp),
// so the comparison is of the carrying, not of the cryptography: TLS 1.3 only,
// an external PSK bound to TLS_AES_128_GCM_SHA256 (with the default (EC)DHE
// key exchange), the SHA-256 suites, no session tickets; one context per
// process, made once. Blocking sockets with TCP_NODELAY, the 4-byte length
// prefix of RawStream, one SSL_write per message.

const unsigned char aes128gcm_sha256[2] = {0x13, 0x01};
constexpr const char* sha256_suites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
const std::string psk_identity = "pipeslot-bench";

std::vector<std::byte> read_psk() {
    const char* path = std::getenv("PIPESLOT_BENCH_PSK_FILE");
    if (!path) throw std::runtime_error("PIPESLOT_BENCH_PSK_FILE is not set");
    std::ifstream in(path);
    std::string hex;
    in >> hex;
    if (hex.size() != 64) throw std::runtime_error(std::string("no 32-byte hex key in ") + path);
    std::vector<std::byte> key;
    for (std::size_t i = 0; i < hex.size(); i += 2)
        key.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return key;
}

const std::vector<std::byte>& psk() {
    static const auto key = read_psk();
    return key;
}

SSL_SESSION* psk_session(SSL* ssl) {
    const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
    SSL_SESSION* session = cipher ? SSL_SESSION_new() : nullptr;
    if (!session) return nullptr;
    const auto& key = psk();
    if (!SSL_SESSION_set1_master_key(session, reinterpret_cast<const unsigned char*>(key.data()), key.size()) ||
        !SSL_SESSION_set_cipher(session, cipher) || !SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION)) {
        SSL_SESSION_free(session);
        return nullptr;
    }
    return session;
}

int find_psk(SSL* ssl, const unsigned char* identity, std::size_t size, SSL_SESSION** session) {
    *session = nullptr;
    if (std::string(reinterpret_cast<const char*>(identity), size) != psk_identity) return 1;
    *session = psk_session(ssl);
    return *session ? 1 : 0;
}

int use_psk(SSL* ssl, const EVP_MD* md, const unsigned char** identity, std::size_t* size, SSL_SESSION** session) {
    *session = nullptr;
    const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
    if (!cipher || (md && EVP_MD_get_type(md) != EVP_MD_get_type(SSL_CIPHER_get_handshake_digest(cipher)))) return 1;
    *session = psk_session(ssl);
    *identity = reinterpret_cast<const unsigned char*>(psk_identity.data());
    *size = psk_identity.size();
    return *session ? 1 : 0;
}

SSL_CTX* make_tls_context(bool server) {
    std::signal(SIGPIPE, SIG_IGN);  // a close_notify written to a peer that has gone
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) throw std::runtime_error("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_ciphersuites(ctx, sha256_suites);
    if (server) {
        SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);  // as pipeslot's client: a PSK or nothing
        SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
    }
    (void)psk();  // a missing key fails here, not in a handshake
    return ctx;
}

SSL_CTX* tls_context(bool server) {
    if (server) {
        static SSL_CTX* const ctx = make_tls_context(true);
        return ctx;
    }
    static SSL_CTX* const ctx = make_tls_context(false);
    return ctx;
}

class TlsStream final : public Link {
public:
    TlsStream(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
    ~TlsStream() override {
        SSL_shutdown(ssl_);  // close_notify, as pipeslot's relay sends at the end
        SSL_free(ssl_);
        ::close(fd_);
    }
    // The prefix and the first bytes in one record (a message of up to 16 KiB
    // is one record, as RawStream's one writev), the rest from the caller's
    // buffer: records as if the whole frame were copied, without copying it
    // (a 64 KiB copy per message took a sixth of the raw side's time).
    void send(const std::byte* data, std::size_t size) override {
        const std::size_t head = std::min(size, record_size - 4);
        frame_.resize(4 + head);
        const std::uint32_t length = static_cast<std::uint32_t>(size);
        std::memcpy(frame_.data(), &length, 4);
        if (head > 0) std::memcpy(frame_.data() + 4, data, head);
        write_all(frame_.data(), frame_.size());
        if (size > head) write_all(data + head, size - head);
    }
    long receive(std::vector<std::byte>& buffer) override {
        std::uint32_t length;
        if (!read_exactly(reinterpret_cast<std::byte*>(&length), sizeof length) || !read_exactly(buffer.data(), length)) return -1;
        return length;
    }

private:
    static constexpr std::size_t record_size = 16384;  // TLS's largest record payload
    void write_all(const std::byte* p, std::size_t n) {
        while (n > 0) {
            std::size_t done = 0;
            if (SSL_write_ex(ssl_, p, n, &done) != 1) {
                ERR_clear_error();
                throw std::runtime_error("SSL_write");
            }
            p += done;
            n -= done;
        }
    }
    bool read_exactly(std::byte* p, std::size_t n) {
        while (n > 0) {
            std::size_t got = 0;
            if (SSL_read_ex(ssl_, p, n, &got) != 1) {
                ERR_clear_error();
                return false;
            }
            p += got;
            n -= got;
        }
        return true;
    }
    SSL* ssl_;
    int fd_;
    std::vector<std::byte> frame_;
};

std::unique_ptr<Link> tls_connect(const std::string& port) {
    SSL_CTX* ctx = tls_context(false);
    const int fd = tcp_connect(port);
    SSL* ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        ERR_clear_error();
        if (ssl) SSL_free(ssl);
        ::close(fd);
        throw std::runtime_error("raw TLS handshake failed");
    }
    return std::make_unique<TlsStream>(ssl, fd);
}

// --- pipeslot through a gateway ------------------------------------------------------

// The client address of a remote kind: "PORT \\127.0.0.1\pipe\NAME".
std::pair<std::uint16_t, std::string> split_remote(const std::string& address) {
    const auto space = address.find(' ');
    if (space == std::string::npos) throw std::runtime_error("not a remote address: " + address);
    return {static_cast<std::uint16_t>(std::stoi(address.substr(0, space))), address.substr(space + 1)};
}

// This process's gateway client options, set only when the kind changes:
// each setting makes a new TLS context (as a program would once).
void use_gateway_client(bool tls) {
    static std::mutex mutex;
    static int current = -1;
    std::lock_guard lock(mutex);
    if (current == static_cast<int>(tls)) return;
    pipeslot::GatewayClientOptions o;
    if (tls) {
        o.psk_identity = psk_identity;
        o.psk = psk();
    } else {
        o.plaintext_on_loopback = true;
    }
    if (auto ec = pipeslot::set_gateway_client_options(o)) throw std::system_error(ec, "gateway client options");
    current = tls;
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

// On a port the system chooses (a fixed one may be taken by then: the
// connection cases leave many ephemeral ports behind); see tcp_port().
int listen_tcp() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = 0;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) die("bind tcp");
    ::listen(fd, 128);
    return fd;
}

unsigned tcp_port(int listener) {
    sockaddr_in a{};
    socklen_t size = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &size);
    return ntohs(a.sin_port);
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

void accept_tls_forever(int listener) {
    SSL_CTX* ctx = tls_context(true);
    for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::thread([fd, ctx] {  // the handshake on the connection's thread, as the gateway does
            SSL* ssl = SSL_new(ctx);
            if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
                ERR_clear_error();
                if (ssl) SSL_free(ssl);
                ::close(fd);
                return;
            }
            TlsStream link(ssl, fd);
            serve_link(link);
        }).detach();
    }
}

// A pipe server as channel_pipeslot's, each instance serving its client on its thread.
pipeslot::PipeServer start_pipe_server(const std::string& address, int instances, bool remote_clients) {
    std::error_code ec;
    pipeslot::ServerOptions o;
    // The pipe's quotas as large as the raw socket's kernel buffer (Linux's
    // default 208 KiB), so both let a writer run as far ahead of its reader.
    o.in_buffer_size = o.out_buffer_size = 256 * 1024;
    o.reject_remote_clients = !remote_clients;
    auto server = pipeslot::PipeServer::start(address, o, static_cast<std::size_t>(instances),
                                              pipeslot::PipeServer::ConnectionHandler([](pipeslot::PipeInstance& i) {
                                                  PipeslotChannel link(i);
                                                  serve_link(link);
                                              }),
                                              ec);
    if (ec) throw std::system_error(ec, address);
    return server;
}

}  // namespace

bool reports_port(Kind k) {
    return k == Kind::tcp_raw || k == Kind::tls_raw || k == Kind::remote_pipeslot || k == Kind::remote_tls_pipeslot;
}

std::string client_address(Kind k, const std::string& server_address, unsigned port) {
    if (!reports_port(k)) return server_address;
    if (k == Kind::tcp_raw || k == Kind::tls_raw) return std::to_string(port);
    // \\.\pipe\NAME -> \\127.0.0.1\pipe\NAME: the same pipe, opened as from another host.
    const std::string local = R"(\\.\)";
    if (server_address.rfind(local, 0) != 0) throw std::runtime_error("not a local pipe name: " + server_address);
    return std::to_string(port) + R"( \\127.0.0.1\)" + server_address.substr(local.size());
}

std::string make_psk_file() {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) throw std::runtime_error("RAND_bytes");
    char path[] = "/tmp/pipeslot-bench-psk-XXXXXX";
    const int fd = ::mkstemp(path);  // mode 0600
    if (fd < 0) die("mkstemp");
    std::string hex;
    for (unsigned char b : key) {
        char two[3];
        std::snprintf(two, sizeof two, "%02x", b);
        hex += two;
    }
    hex += "\n";
    if (::write(fd, hex.data(), hex.size()) != static_cast<ssize_t>(hex.size())) die("write key");
    ::close(fd);
    ::setenv("PIPESLOT_BENCH_PSK_FILE", path, 1);
    return path;
}

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
    case Kind::remote_pipeslot: return "pipeslot remote (gateway, plaintext)";
    case Kind::remote_tls_pipeslot: return "pipeslot remote (gateway, TLS 1.3 PSK)";
    case Kind::tls_raw: return "raw TLS 1.3 PSK over TCP loopback (OpenSSL)";
    case Kind::async_pipeslot: return "pipeslot async (AsyncInstance, AsyncChannel)";
    case Kind::asio_raw: return "raw Asio AF_UNIX stream (async)";
    }
    return "?";
}

bool kind_available(Kind k) {
    if (k == Kind::nng_pair) return BENCH_HAVE_NNG;
    if (k == Kind::zmq_pair) return BENCH_HAVE_ZMQ;
    if (k == Kind::uv_pipe) return BENCH_HAVE_UV;
    if (k == Kind::async_pipeslot || k == Kind::asio_raw) return BENCH_HAVE_ASIO;
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
    case Kind::tls_raw: return tls_connect(address);
    case Kind::channel_pipeslot:
    case Kind::remote_pipeslot:
    case Kind::remote_tls_pipeslot: {
        pipeslot::ClientOptions o;
        o.wait = std::chrono::seconds(10);
        std::string name = address;
        if (k != Kind::channel_pipeslot) {
            use_gateway_client(k == Kind::remote_tls_pipeslot);
            std::tie(o.gateway_port, name) = split_remote(address);
        }
        for (int tries = 0;; ++tries) {  // the server may still be starting
            std::error_code ec;
            auto c = pipeslot::MessageChannel::open(name, o, ec);
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

LoopFigures loop_clients(Kind k, const std::string& address, int clients, std::size_t size, double seconds) {
#if BENCH_HAVE_UV
    if (k == Kind::uv_pipe) return uv_clients(address, clients, size, seconds);
#endif
#if BENCH_HAVE_ASIO
    if (k == Kind::async_pipeslot || k == Kind::asio_raw) return async_clients(k, address, clients, size, seconds);
#endif
    (void)address, (void)clients, (void)size, (void)seconds;
    throw std::runtime_error(std::string("no client loop for ") + kind_name(k));
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
        auto server = start_pipe_server(address, instances, false);
        std::fprintf(stderr, "ready\n");
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        ::_exit(0);  // threads may be in handlers; the process simply ends
    }
    case Kind::remote_pipeslot:
    case Kind::remote_tls_pipeslot: {
        // The gateway runs here, in the server's process, next to its pipe:
        // the host of the pipe fronts it, as SMB does on Windows, and the
        // bench process is the client's host. So the client side carries only
        // what a client carries (and, for TLS, its relay thread). On the
        // server side a plaintext client is served by the instance on its own
        // TCP socket (no extra hop, docs/gateway.md), and a TLS one through
        // the gateway's relay, where raw TCP and raw TLS have just the
        // server's threads.
        auto server = start_pipe_server(address, instances, true);
        pipeslot::GatewayOptions g;
        g.port = 0;
        if (k == Kind::remote_tls_pipeslot) g.psks[psk_identity] = psk();
        else g.plaintext_on_loopback = true;
        auto gateway = pipeslot::Gateway::start(g);
        std::fprintf(stderr, "ready %u\n", unsigned{gateway.port()});
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        ::_exit(0);
    }
    case Kind::tls_raw: {
        tls_context(true);
        const int listener = listen_tcp();
        std::thread([listener] { accept_tls_forever(listener); }).detach();
        std::fprintf(stderr, "ready %u\n", tcp_port(listener));
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        ::_exit(0);
    }
    case Kind::channel_raw:
    case Kind::channel_raw_poll:
    case Kind::tcp_raw: {
        const bool tcp = k == Kind::tcp_raw, poll_first = k == Kind::channel_raw_poll;
        const int listener = tcp ? listen_tcp() : listen_unix(address, SOCK_STREAM);
        std::thread([listener, tcp, poll_first] { accept_forever(listener, tcp, poll_first); }).detach();
        if (tcp) std::fprintf(stderr, "ready %u\n", tcp_port(listener));
        else std::fprintf(stderr, "ready\n");
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        if (!tcp) ::unlink(address.c_str());
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
#if BENCH_HAVE_ASIO
    case Kind::async_pipeslot:
    case Kind::asio_raw: return serve_async(k, address, instances);
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
