// Carries one networked pipe connection both ways: the network side (a
// client's TCP connection, or TLS over it) and the local side (the pipe's
// socket). Frames pass unchanged; each direction's headers are checked on the
// way (a malformed one from the network ends the connection), and what the
// server wrote is credited to its quota as it leaves for the network.
#pragma once

#include "../common/deadline.hpp"
#include "../common/gateway_protocol.hpp"

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace pipeslot::posix {

class FlowPage;

// A non-blocking byte stream the relay reads and writes.
class Transport {
public:
    enum class Status { done, again_read, again_write, end, failed };
    struct Result {
        Status status;
        std::size_t bytes = 0;
    };
    virtual ~Transport() = default;
    virtual int fd() const noexcept = 0;
    virtual Result read(std::span<std::byte> into) noexcept = 0;
    virtual Result write(std::span<const std::byte> bytes) noexcept = 0;
    virtual void shut_write() noexcept = 0;  // after the last byte: the peer reads its end
    // Bytes already decrypted and waiting (TLS): readable without the descriptor saying so.
    virtual bool has_buffered() const noexcept { return false; }
};

// A socket's own bytes (the descriptor is the caller's, non-blocking).
class SocketTransport final : public Transport {
public:
    explicit SocketTransport(int fd) noexcept : fd_(fd) {}
    int fd() const noexcept override { return fd_; }
    Result read(std::span<std::byte> into) noexcept override;
    Result write(std::span<const std::byte> bytes) noexcept override;
    void shut_write() noexcept override;

private:
    int fd_;
};

// Exactly `bytes.size()` bytes through `t` within `deadline`, unless
// `stop_fd` (-1: none) becomes readable first (false if not).
// `last`, if given, is told how the last call on `t` ended (failed: a TLS alert, say).
bool transfer_exactly(Transport& t, std::span<std::byte> bytes, bool reading, const detail::Deadline& deadline,
                      int stop_fd = -1, Transport::Status* last = nullptr);

enum class RelayEnd {
    client_closed,    // the network side ended: the pipe's client end is closed
    server_closed,    // the server closed or disconnected: the network side is told
    network_failed,   // the client's host went away, or a network error
    malformed,        // the client sent bytes that are not channel frames
    stopped,          // the gateway stops
};
const char* relay_end_text(RelayEnd end) noexcept;

// Until one side ends or `stop_fd` becomes readable (-1: none). `flow`, in a
// gateway, is the pipe's client-side page, credited with what the server
// wrote; a client's own relay (TLS) has none.
RelayEnd relay(Transport& network, Transport& local, FlowPage* flow, int stop_fd);

}  // namespace pipeslot::posix
