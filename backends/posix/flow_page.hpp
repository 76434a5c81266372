// Windows' buffer quotas for a local channel (docs/wire-format.md, "Flow
// control"). On Windows a write completes once the bytes the reader has not
// taken, up to and including the end of that write, fit in the reading end's
// quota, and FlushFileBuffers once it has taken everything. A stream socket
// knows neither, so the two ends share one page of counters (a sealed memfd
// the server sends with its open reply): each reader adds what the
// application took, with no system call, and wakes the writer (a futex on the
// page) only when one has said it sleeps. No frame, no wake-up per message.
//
// Making and mapping a page costs as much as the rest of a connection, so
// pages are kept: an instance keeps its last connection's page and gives it
// to the same client process again once both ends have let go of it, and
// the client finds it still mapped (a few idle mappings, no descriptor).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <sys/types.h>
#include <system_error>

namespace pipeslot::posix {

class FlowPage {
public:
    // An instance's page kept for the next connection (one descriptor while it lasts).
    struct Spare;
    static std::shared_ptr<Spare> new_spare();
    // The server, for a connection of the client process `pid` of `uid` to
    // the instance of `spare`: a page, and the descriptor to send with the
    // open reply (the page keeps it: do not close; -1 with an unshared page).
    static std::error_code for_client(const std::shared_ptr<Spare>& spare, pid_t pid, uid_t uid,
                                      std::shared_ptr<FlowPage>& out, int& memfd);
    // The server, once that descriptor has gone with the open reply: kept
    // while few pages keep theirs, else closed (the page is then not offered
    // to the client's next connection).
    void sent_to_client() noexcept;
    // The client: the page the server sent, once it is checked to be one
    // (sealed against shrinking, the right size), so no peer can make a
    // later access fault. Takes `memfd` in any case.
    static std::error_code adopt(int memfd, std::shared_ptr<FlowPage>& out);
    // Where no page could be made (a file-size limit of 0 forbids sizing one)
    // the channel still works, with no quota: a write never waits and a flush
    // returns at once, as a socket would have it.
    static std::shared_ptr<FlowPage> unshared(bool is_server);

    struct Mapping;  // a mapped page, kept for the next connection
    struct Counters;  // one direction's, on the page
    FlowPage(std::unique_ptr<Mapping> mapping, bool is_server) noexcept;
    ~FlowPage();  // lets go of the page
    FlowPage(const FlowPage&) = delete;
    FlowPage& operator=(const FlowPage&) = delete;

    // --- the writing side (one writer at a time: the channel's write lock) ---
    // This end's quota: the peer's reading buffer.
    void set_quota(std::uint64_t quota) noexcept { quota_ = quota; }
    // Counts `bytes` of messages as sent: the count the peer must have taken
    // before the write completes, or 0 if it fits now. An empty write never waits.
    std::uint64_t will_send(std::uint64_t bytes) noexcept;
    // For a PIPE_NOWAIT write: what a read waiting at the other end takes at
    // once (its buffer's size; 0 if none waits, or something is unread), and
    // whether `bytes` more fit the quota now, with `taken_at_once` of them so taken.
    std::uint64_t peer_read_waiting() const noexcept;
    bool fits(std::uint64_t bytes, std::uint64_t taken_at_once = 0) const noexcept;
    // Takes back what was counted for messages that did not go.
    void unsent(std::uint64_t bytes) noexcept;
    // For a flush: the count of everything sent, or 0 if the peer has taken it all.
    std::uint64_t flush_target() const noexcept;
    // A shared page whose peer has taken everything this end sent.
    bool all_taken_by_peer() const noexcept;
    bool taken_by_peer(std::uint64_t target) const noexcept;
    // The peer has stopped reading (closed its end, or this client was
    // disconnected by its server).
    bool peer_stopped_reading() const noexcept;
    // Sleeps until the peer has taken `target`, stopped reading, wake() is
    // called after `seen = changes()` was taken, or `until`; spurious
    // returns are allowed. Take `seen` before checking what may end the wait.
    std::uint32_t changes() const noexcept;
    void wait(std::uint32_t seen, std::uint64_t target, std::chrono::steady_clock::time_point until) const noexcept;
    // Wakes this end's waiting writers (a cancel).
    void wake() const noexcept;
    // This end's connection is over (a server's disconnect): waiting writers
    // stop, even if the instance has a new client by the time they look.
    void detach() noexcept;
    bool detached() const noexcept { return detached_; }

    // --- the reading side ---
    // After the application has taken `n` bytes of messages.
    void took(std::uint64_t n) noexcept;
    // A receive that may wait, with room for `n` bytes, begins (0: it has ended).
    void reading(std::uint64_t n) noexcept;
    // This end reads no more (it closes, or a server disconnects its client).
    void stop_reading() noexcept;

private:
    std::unique_ptr<Mapping> mapping_;
    bool is_server_;
    std::weak_ptr<Spare> spare_;  // the server's: where the page goes when this lets go
    pid_t client_pid_ = 0;
    uid_t client_uid_ = 0;
    Counters* reading_;  // the direction this end reads: it publishes what it took
    Counters* writing_;  // the direction this end writes: the peer publishes
    std::uint64_t quota_ = 0;
    std::uint64_t sent_ = 0;
    std::atomic<bool> detached_{false};
};

}  // namespace pipeslot::posix
