// What stands behind MessageChannel, PipeInstance, Mailslot and Broadcaster:
// the native backend, the in-memory fake (pipeslot/testing/fake.hpp), or a
// mock (pipeslot/testing/mocks.hpp). The public classes check every argument
// before calling these, so an implementation gets valid input only.
#pragma once

#include <pipeslot/event_source.hpp>
#include <pipeslot/export.hpp>
#include <pipeslot/mailslot.hpp>
#include <pipeslot/message_channel.hpp>
#include <pipeslot/timeout.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <system_error>

namespace pipeslot {

// One end of a named pipe (a client's; the server's is an InstanceBackend).
class PIPESLOT_API ChannelBackend {
public:
    virtual ~ChannelBackend() = default;
    virtual std::size_t receive(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) = 0;
    virtual std::size_t send(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) = 0;
    // Returns how many messages were sent whole. By default, send() for each.
    virtual std::size_t send_messages(std::span<const std::span<const std::byte>> messages, Timeout timeout,
                                      std::error_code& ec);
    virtual PeekResult peek(std::span<std::byte> buffer, std::error_code& ec) = 0;
    virtual void flush(std::error_code& ec) = 0;
    virtual std::size_t transact(std::span<const std::byte> request, std::span<std::byte> reply, Timeout timeout,
                                 std::error_code& ec) = 0;
    virtual void set_read_mode(ReadMode mode, std::error_code& ec) = 0;
    virtual void set_wait_mode(WaitMode mode, std::error_code& ec) = 0;
    virtual ChannelInfo info(std::error_code& ec) = 0;
    virtual void cancel() noexcept = 0;
    virtual std::int64_t server_process_id(std::error_code& ec) = 0;
    virtual std::string server_user(std::error_code& ec) = 0;
    virtual std::int64_t client_process_id(std::error_code& ec) = 0;
    // For event loops (pipeslot/asio): by default none, and the loop polls.
    virtual EventSource event_source(ChannelEvent) { return {}; }
    // send() in wait mode whatever this end's mode (see MessageChannel::send_waiting).
    virtual std::size_t send_waiting(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) {
        return send(data, timeout, ec);
    }
};

// The server's end of one instance.
class PIPESLOT_API InstanceBackend : public ChannelBackend {
public:
    virtual void accept(Timeout timeout, std::error_code& ec) = 0;
    virtual void disconnect(std::error_code& ec) = 0;
    virtual std::string client_user(std::error_code& ec) = 0;
    virtual std::string client_computer_name(std::error_code& ec) = 0;
};

class PIPESLOT_API MailslotBackend {
public:
    virtual ~MailslotBackend() = default;
    // Waits up to the read timeout; buffer_too_small leaves the message queued.
    virtual std::size_t receive(std::span<std::byte> buffer, std::error_code& ec) = 0;
    virtual MailslotInfo info(std::error_code& ec) = 0;
    virtual void set_read_timeout(Timeout timeout, std::error_code& ec) = 0;
    virtual void cancel() noexcept = 0;
    // What an event loop waits on before it receives again (pipeslot/asio/).
    virtual EventSource event_source() { return {}; }
};

class PIPESLOT_API BroadcasterBackend {
public:
    virtual ~BroadcasterBackend() = default;
    virtual void send(std::span<const std::byte> message, Timeout timeout, std::error_code& ec) = 0;
};

}  // namespace pipeslot
