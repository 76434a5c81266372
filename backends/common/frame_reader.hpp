// The receiving half of the framing protocol: turns the byte stream of an
// emulated named pipe back into messages, with the Win32 read semantics
// (message or byte read mode, more_data, peek counts, disconnect). It owns no
// descriptor: bytes come from a ByteSource, so UNIX sockets and TCP share it.
#pragma once

#include "deadline.hpp"
#include "framing.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/message_channel.hpp>

#include <cstddef>
#include <span>
#include <system_error>
#include <vector>

namespace pipeslot::detail {

class ByteSource {
public:
    // Blocks until at least one byte (or the deadline). 0 with ec set:
    // errc::end_of_stream when the peer closed, timed_out, cancelled, ...
    virtual std::size_t pull(std::span<std::byte> into, const Deadline& deadline, std::error_code& ec) = 0;

protected:
    ~ByteSource() = default;
};

class FrameReader {
public:
    std::size_t receive(std::span<std::byte> out, ReadMode mode, ByteSource& source, const Deadline& deadline,
                        std::error_code& ec);
    PeekResult peek(std::span<std::byte> out, ReadMode mode, PipeType type, ByteSource& source, std::error_code& ec);
    // True if anything is readable now or a message is half read.
    bool holds_unread(ByteSource& source);
    // The peer has closed or reset its end, as a receive has seen.
    bool peer_has_gone() const noexcept { return terminal_ == errc::broken_pipe; }
    // Drops everything buffered (the server's disconnect, a new client).
    void reset() noexcept;
    // A remote client's reader: what came before a server's disconnect is
    // delivered, the marker ending the stream where it stands. Across hosts the
    // server's flush cannot wait for the remote application's read, so its
    // reply-flush-disconnect would otherwise lose the reply (docs/gateway.md).
    void deliver_before_disconnect() noexcept { look_ahead_ = false; }

private:
    std::size_t buffered() const noexcept { return end_ - begin_; }
    bool fill(ByteSource& source, const Deadline& deadline, std::error_code& ec);
    void pull_available(ByteSource& source);
    bool start_next_frame(std::error_code& ec);
    void consume(std::size_t n) noexcept;
    void note_disconnect_ahead() noexcept;
    void fail(std::error_code why) noexcept;
    std::size_t receive_message(std::span<std::byte> out, ByteSource& source, const Deadline& deadline,
                                std::error_code& ec);
    std::size_t receive_bytes(std::span<std::byte> out, ByteSource& source, const Deadline& deadline,
                              std::error_code& ec);
    std::size_t pull_direct(std::span<std::byte> out, ByteSource& source, const Deadline& deadline,
                            std::error_code& ec);

    std::vector<std::byte> buffer_;
    std::size_t begin_ = 0, end_ = 0;  // unread bytes are buffer_[begin_, end_)
    std::size_t scan_ = 0;             // index of the next frame header not yet scanned for a disconnect
    bool in_message_ = false;
    std::size_t left_ = 0;             // bytes of the current message not yet delivered
    std::error_code terminal_;         // why no more bytes will come, once they stop
    bool peeked_ = false;              // buffered bytes were shown by peek: look ahead before delivering
    bool look_ahead_ = true;           // a disconnect marker discards what is before it (local pipes)
};

}  // namespace pipeslot::detail
