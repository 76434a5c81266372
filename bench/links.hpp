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

// The libuv peer (uv_link.cpp), when built.
std::unique_ptr<Link> connect_uv(const std::string& path);
int serve_uv(const std::string& path);

}  // namespace bench
