// Windows' buffer quotas over a byte stream (docs/wire-format.md, "Flow
// control"). On Windows a write completes once the bytes the reader has not
// taken, up to and including the end of that write, fit in the reading end's
// quota, and FlushFileBuffers once it has taken everything. A stream socket
// knows neither, so each end counts: the writer what it has sent, the reader
// what it has taken. The reader tells the writer in a credit frame every half
// quota it takes (so a writer that stays within its quota never waits and
// never asks), whenever a writer that asked is satisfied, before it waits
// for more, and along with its own writes. No frame of its own is sent per
// message in a request/reply exchange.
#pragma once

#include "frame_reader.hpp"
#include "framing.hpp"

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>

namespace pipeslot::detail {

using CreditFrame = std::array<std::byte, frame_header_size + credit_payload_size>;
CreditFrame encode_credit(FrameKind kind, std::uint64_t value) noexcept;

class FlowControl final : public FlowListener {
public:
    // A new connection: what this end may leave unread at the peer, and what
    // the peer may leave unread here (the reading end's buffer size each).
    void reset(std::uint64_t write_quota, std::uint64_t read_quota);

    // --- the writing side ---
    // Before sending messages of `bytes` payload in all: the count the peer
    // must have taken before the write completes, if it is over the quota now
    // (send a credit_wanted frame with it ahead of them). Counts them as sent.
    std::optional<std::uint64_t> will_send(std::uint64_t bytes);
    // Takes back what was counted for messages that did not go.
    void unsent(std::uint64_t bytes);
    // For a flush: the count of everything sent, if the peer has not taken it all.
    std::optional<std::uint64_t> flush_target();
    bool taken_by_peer(std::uint64_t target);
    // Waits until taken_by_peer(target), woken(), or the deadline.
    template <class Clock, class Duration>
    void wait(std::uint64_t target, std::chrono::time_point<Clock, Duration> until) {
        std::unique_lock lock(mutex_);
        const auto seen = wakes_;
        changed_.wait_until(lock, until, [&] { return credited_ >= target || wakes_ != seen; });
    }
    // Wakes wait(): the reader that was told the credits has stopped, or a cancel.
    void woken();

    // --- the reading side ---
    // After the application has taken `n` bytes of messages.
    void took(std::size_t n);
    // A credit to send now, if one is due; credit_sent() once it has gone.
    std::optional<std::uint64_t> credit_due();
    void credit_sent(std::uint64_t taken);
    bool credit_is_due();
    // What the peer has not been told yet, due or not: it rides along with
    // this end's writes, goes before a receive that may block, and at close.
    std::optional<std::uint64_t> unreported_credit();

    // FlowListener: frames from the peer.
    void credit(std::uint64_t taken) noexcept override;
    void credit_wanted(std::uint64_t taken) noexcept override;

private:
    bool due_locked() const noexcept;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::uint64_t wakes_ = 0;
    // writing side
    std::uint64_t write_quota_ = 0;
    std::uint64_t sent_ = 0;
    std::uint64_t credited_ = 0;  // what the peer has said it has taken
    // reading side
    std::uint64_t batch_ = 1;
    std::uint64_t taken_ = 0;
    std::uint64_t reported_ = 0;
    static constexpr std::uint64_t nobody_waits = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t wanted_ = nobody_waits;       // the smallest count a waiting writer asked for
    std::uint64_t wanted_last_ = nobody_waits;  // and the largest
};

}  // namespace pipeslot::detail
