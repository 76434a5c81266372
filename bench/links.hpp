// The message links the benchmark drives: pipeslot's types and, side by side,
// the raw system calls they wrap (and peers, where installed). Every link
// moves whole messages; a byte stream carries them with a 4-byte length prefix.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace bench {

class Link {
public:
    virtual ~Link() = default;
    virtual void send(const std::byte* data, std::size_t size) = 0;
    // `count` copies of one message, in as few calls as the link allows; by
    // default one send() each (ZeroMQ and nng batch inside, on their own thread).
    virtual void send_batch(const std::byte* data, std::size_t size, int count) {
        for (int i = 0; i < count; ++i) send(data, size);
    }
    // One whole message into `buffer` (large enough); returns its size, or -1 at the end.
    virtual long receive(std::vector<std::byte>& buffer) = 0;
};

// How a case connects: each kind has a server (in the child process) and a client.
enum class Kind {
    pipe_pipeslot, pipe_raw,                 // anonymous pipes: child's stdin and stdout
    channel_pipeslot, channel_raw,           // named pipe vs AF_UNIX stream
    channel_raw_poll,                        // AF_UNIX stream, poll() before each read (a reference)
    slot_pipeslot, slot_raw,                 // mailslot vs AF_UNIX datagram (one way)
    tcp_raw,                                 // TCP loopback with TCP_NODELAY
    nng_pair, zmq_pair, uv_pipe,             // peers, when built
    // Networked pipes: a client opens \\127.0.0.1\pipe\NAME and reaches the
    // server's gateway over TCP loopback, plaintext or TLS 1.3 with a PSK;
    // tls_raw is the reference for the TLS rows (OpenSSL over TCP loopback
    // with the TLS kind's PSK and suites, and tcp_raw's framing). Appended, so
    // the numbers of the kinds above (passed to the child) stay as they were.
    remote_pipeslot, remote_tls_pipeslot, tls_raw,
    // The asynchronous rows (async_links.cpp, when Asio is found): pipeslot's
    // Asio layer (AsyncInstance, AsyncChannel) vs raw Asio over an AF_UNIX
    // stream with the 4-byte length prefix; each server is one io_context on
    // one thread, each client side one io_context on one thread.
    async_pipeslot, asio_raw,
};

const char* kind_name(Kind k);
bool kind_available(Kind k);

// Client side, connecting to `address` (a pipe/socket name); for pipe kinds,
// the child's stdio descriptors are given instead.
std::unique_ptr<Link> connect_link(Kind k, const std::string& address, int read_fd = -1, int write_fd = -1);

// Server side, in the child: serves every connection to `address` (echo a
// message starting with 'e'; count others; answer a zero-length one with
// "A") until told to stop. For pipe kinds, serves stdin/stdout once.
int serve(Kind k, const std::string& address, int instances);

// A kind whose server reports its port ("ready PORT" instead of "ready"):
// the address its clients connect to, made from the server's address and port.
bool reports_port(Kind k);
std::string client_address(Kind k, const std::string& server_address, unsigned port);

// The TLS kinds' pre-shared key: 32 random bytes in hex in a new file (mode
// 0600), named by PIPESLOT_BENCH_PSK_FILE for this process and its children.
// Returns the file's path, for the caller to remove.
std::string make_psk_file();

// The libuv peer (uv_link.cpp), when built.
std::unique_ptr<Link> connect_uv(const std::string& path);
int serve_uv(const std::string& path);

// What one client event loop measured: `clients` connections driven from the
// calling thread's loop, each sending a `size`-byte message starting with 'e'
// and waiting for its echo, one round trip after another. Every connection
// connects and warms up first; the clock starts when the last is ready and
// each stops after `seconds`; `seconds` below is from that start until the
// last round trip in flight came back.
struct LoopFigures {
    long round_trips = 0;
    double seconds = 0;
    std::vector<double> latencies_us;  // every measured round trip's, unsorted
};
// For async_pipeslot, asio_raw and uv_pipe; throws for another kind, a kind
// not built, or a connection that failed.
LoopFigures loop_clients(Kind k, const std::string& address, int clients, std::size_t size, double seconds);

// async_links.cpp (BENCH_HAVE_ASIO): the Asio loops and servers.
LoopFigures async_clients(Kind k, const std::string& address, int clients, std::size_t size, double seconds);
int serve_async(Kind k, const std::string& address, int instances);
// uv_link.cpp (BENCH_HAVE_UV): the same loop on libuv.
LoopFigures uv_clients(const std::string& path, int clients, std::size_t size, double seconds);

}  // namespace bench
