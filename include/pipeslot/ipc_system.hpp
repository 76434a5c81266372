// The seam for application code: take an IpcSystem& and make every pipe,
// channel and mailslot through it. native_ipc() is the real one; a test hands
// in pipeslot::testing::FakeSystem (in memory) or MockIpcSystem instead.
#pragma once

#include <pipeslot/backend.hpp>
#include <pipeslot/export.hpp>
#include <pipeslot/mailslot.hpp>
#include <pipeslot/message_channel.hpp>
#include <pipeslot/pipe.hpp>
#include <pipeslot/stream.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace pipeslot {

// An anonymous pipe's two ends, as the seam hands them out.
struct PipeStreams {
    std::unique_ptr<ByteReader> read_end;
    std::unique_ptr<ByteWriter> write_end;
};

class PIPESLOT_API IpcSystem {
public:
    virtual ~IpcSystem() = default;

    // These check every argument the same way for every system, then ask
    // the implementation (the do_ functions) with valid input only.
    MessageChannel open_channel(std::string_view name, const ClientOptions& options, std::error_code& ec);
    PipeInstance create_instance(std::string_view name, const ServerOptions& options, std::error_code& ec);
    Mailslot create_mailslot(std::string_view name, const MailslotOptions& options, std::error_code& ec);
    Broadcaster open_broadcaster(std::string_view name, std::error_code& ec);
    PipeStreams create_pipe(const PipeOptions& options, std::error_code& ec);
    // Waits for a free instance without taking it (WaitNamedPipe; see wait_for_instance()).
    void wait_for_instance(std::string_view name, const ClientOptions& options, std::error_code& ec);
    // Open, send one message, receive one reply, close (CallNamedPipe).
    std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                     Timeout timeout, std::error_code& ec);
    std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                     const ClientOptions& open, Timeout timeout, std::error_code& ec);

    // This computer's name, as discovery announces it.
    virtual std::string host_name() = 0;

protected:
    virtual std::unique_ptr<ChannelBackend> do_open_channel(const PipeName& name, const ClientOptions& options,
                                                            std::error_code& ec) = 0;
    virtual std::unique_ptr<InstanceBackend> do_create_instance(const PipeName& name, const ServerOptions& options,
                                                                std::error_code& ec) = 0;
    virtual std::unique_ptr<MailslotBackend> do_create_mailslot(const MailslotName& name,
                                                                const MailslotOptions& options,
                                                                std::error_code& ec) = 0;
    virtual std::unique_ptr<BroadcasterBackend> do_open_broadcaster(const MailslotName& name, std::error_code& ec) = 0;
    virtual PipeStreams do_create_pipe(const PipeOptions& options, std::error_code& ec) = 0;
    virtual void do_wait_for_instance(const PipeName& name, const ClientOptions& options, std::error_code& ec) = 0;
};

// The operating system's: Win32 on Windows, the POSIX emulation elsewhere.
PIPESLOT_API IpcSystem& native_ipc();

}  // namespace pipeslot
