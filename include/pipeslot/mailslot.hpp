// Mailslots: one-way datagrams. One reader per name per host creates the
// Mailslot; any number of writers open a Broadcaster to it, to this host's
// reader, one host's, or every host's on the network (\\*\mailslot\NAME).
#pragma once

#include <pipeslot/event_source.hpp>
#include <pipeslot/export.hpp>
#include <pipeslot/name.hpp>
#include <pipeslot/timeout.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace pipeslot {

class MailslotBackend;
class BroadcasterBackend;

// The largest message that may cross to another host (the Windows limit for
// \\*, \\DOMAIN and \\HOST); larger sends there are errc::message_too_large.
inline constexpr std::size_t max_network_mailslot_message = 424;

// The largest maximum a mailslot takes (CreateMailslot's DWORD); larger is invalid_argument.
inline constexpr std::size_t max_mailslot_message_limit = 0xFFFFFFFF;

// How much a POSIX or fake reader holds for its caller before local writers
// wait (up to their send timeout) and datagrams from the network are dropped
// (counted in MailslotInfo::dropped_datagrams). Windows keeps its own limit.
inline constexpr std::size_t default_mailslot_queue_bytes = 16u << 20;
inline constexpr std::size_t default_mailslot_queue_messages = 4096;

struct MailslotOptions {
    std::size_t max_message_size = 0;        // 0: any size; else up to max_mailslot_message_limit
    Timeout read_timeout = Timeout::forever();  // none(): a receive returns at once
    std::size_t max_queued_bytes = default_mailslot_queue_bytes;        // at least 1
    std::size_t max_queued_messages = default_mailslot_queue_messages;  // at least 1
};

struct MailslotInfo {
    std::size_t max_message_size = 0;
    std::optional<std::size_t> next_message_size;  // none when nothing is waiting
    std::size_t message_count = 0;
    Timeout read_timeout = Timeout::forever();
    std::size_t dropped_datagrams = 0;  // POSIX, fake: network datagrams ignored (malformed, oversized, queue full)
};

// The reading end: creates \\.\mailslot\NAME (NAME may hold '\' pseudo-folders).
class PIPESLOT_API Mailslot {
public:
    Mailslot() noexcept;
    explicit Mailslot(std::unique_ptr<MailslotBackend> backend) noexcept;
    Mailslot(Mailslot&&) noexcept;
    Mailslot& operator=(Mailslot&&) noexcept;
    ~Mailslot();

    // errc::name_in_use if this host has a reader of the name already.
    static Mailslot create(std::string_view name, const MailslotOptions& options, std::error_code& ec);
    static Mailslot create(std::string_view name, const MailslotOptions& options = {});  // throws

    // One whole message, waiting up to the read timeout (errc::timed_out).
    // A buffer smaller than the message: errc::buffer_too_small, and the
    // message stays for the next receive.
    std::size_t receive(std::span<std::byte> buffer, std::error_code& ec);
    std::vector<std::byte> receive_message(std::error_code& ec);

    MailslotInfo info(std::error_code& ec);
    void set_read_timeout(Timeout timeout, std::error_code& ec);
    // Makes a receive blocked in another thread return errc::cancelled.
    void cancel() noexcept;
    void close() noexcept;
    bool is_open() const noexcept { return impl_ != nullptr; }
    // What an event loop waits on before it receives again (pipeslot/asio/).
    EventSource event_source() const;

private:
    bool check_open(std::error_code& ec) const;
    std::unique_ptr<MailslotBackend> impl_;
};

// The writing end: \\.\mailslot\NAME (errc::not_found without a reader),
// \\HOST\mailslot\NAME, \\*\mailslot\NAME or \\DOMAIN\mailslot\NAME.
class PIPESLOT_API Broadcaster {
public:
    Broadcaster() noexcept;
    explicit Broadcaster(std::unique_ptr<BroadcasterBackend> backend) noexcept;
    Broadcaster(Broadcaster&&) noexcept;
    Broadcaster& operator=(Broadcaster&&) noexcept;
    ~Broadcaster();

    static Broadcaster open(std::string_view name, std::error_code& ec);
    static Broadcaster open(std::string_view name);  // throws

    // One message. errc::message_too_large over the local reader's maximum,
    // or over max_network_mailslot_message to another host. Whether anyone
    // receives it is never known; a local reader's full queue is waited on
    // up to `timeout`.
    void send(std::span<const std::byte> message, Timeout timeout, std::error_code& ec);
    void send(std::span<const std::byte> message, std::error_code& ec) { send(message, std::chrono::seconds(10), ec); }

    void close() noexcept;
    bool is_open() const noexcept { return impl_ != nullptr; }

private:
    std::unique_ptr<BroadcasterBackend> impl_;
};

}  // namespace pipeslot
