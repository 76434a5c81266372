// One control connection between a server process of a name and the name's
// broker: control frames both ways, descriptors (a client's connection)
// riding along with SCM_RIGHTS. Non-blocking on both sides; what cannot be
// sent at once waits in an outbox, so neither side ever blocks on the other.
#pragma once

#include "../common/connect_protocol.hpp"
#include "fd.hpp"

#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <sys/types.h>
#include <system_error>
#include <vector>

namespace pipeslot::posix {

class ControlLink {
public:
    explicit ControlLink(int fd = -1) noexcept : fd_(fd) {}
    ControlLink(ControlLink&& o) noexcept;
    ControlLink& operator=(ControlLink&& o) noexcept;
    ~ControlLink();

    int fd() const noexcept { return fd_; }
    // Queues a frame (and a descriptor the link then owns) and sends what it can.
    // False when the link is broken.
    bool send(const detail::Control& control, int fd_to_pass = -1);
    // Sends what waits in the outbox; false when the link is broken.
    bool flush();
    bool wants_to_write() const noexcept { return !outbox_.empty(); }

    // Reads what is there. Each whole frame goes to `on_frame(control, fd)`,
    // with the descriptor that came with a `client` frame (else -1, which the
    // callee then owns). False when the peer has gone or broke the protocol.
    template <class OnFrame>
    bool receive(OnFrame&& on_frame) {
        const bool open = read_available();
        if (broken_) return false;  // descriptors were lost: nothing after can be paired right
        while (auto frame = next_frame()) {  // what came before the end is still delivered
            if (!frame->control) return false;
            on_frame(*frame->control, frame->fd);
        }
        return open && !broken_;
    }

private:
    struct Outgoing {
        std::vector<std::byte> bytes;
        std::size_t sent = 0;
        int fd = -1;  // passed with the first byte
    };
    struct Frame {
        std::optional<detail::Control> control;  // nullopt: malformed
        int fd = -1;
    };
    bool read_available();
    std::optional<Frame> next_frame();
    void reset() noexcept;

    int fd_ = -1;
    std::vector<std::byte> inbox_;
    std::deque<int> received_fds_;
    std::deque<Outgoing> outbox_;
    bool broken_ = false;
};

// Sends a short frame on a socket whose buffer is empty, or fails: all or
// nothing, never blocking; `fd_to_pass` (if not -1) rides with its first byte.
bool send_all_now(int fd, std::span<const std::byte> bytes, int fd_to_pass = -1) noexcept;

// recv(2) that also takes a descriptor passed with the bytes (close-on-exec)
// into `passed`, if it holds none yet; any other is closed.
ssize_t receive_with_fd(int fd, std::span<std::byte> into, Fd& passed) noexcept;

// The uid and pid of the process at the other end of a UNIX socket.
bool peer_credentials(int fd, uid_t& uid, pid_t& pid) noexcept;

}  // namespace pipeslot::posix
