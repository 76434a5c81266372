// The native IpcSystem: each backend object wraps the platform functions of
// backends/posix or backends/win32.
#include "native_channel.hpp"
#include "platform.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/ipc_system.hpp>

namespace pipeslot {
namespace {

class NativeChannel final : public InstanceBackend {
public:
    explicit NativeChannel(platform::ChannelPtr c) : c_(std::move(c)) {}
    platform::Channel& channel() const noexcept { return *c_; }
    std::size_t receive(std::span<std::byte> b, Timeout t, std::error_code& ec) override {
        return platform::receive(*c_, b, detail::Deadline(t), ec);
    }
    std::size_t send(std::span<const std::byte> d, Timeout t, std::error_code& ec) override {
        return platform::send(*c_, d, detail::Deadline(t), ec);
    }
    std::size_t send_waiting(std::span<const std::byte> d, Timeout t, std::error_code& ec) override {
        return platform::send_waiting(*c_, d, detail::Deadline(t), ec);
    }
    std::size_t send_messages(std::span<const std::span<const std::byte>> m, Timeout t, std::error_code& ec) override {
        return platform::send_messages(*c_, m, detail::Deadline(t), ec);
    }
    PeekResult peek(std::span<std::byte> b, std::error_code& ec) override { return platform::peek(*c_, b, ec); }
    void flush(std::error_code& ec) override { ec = platform::flush(*c_); }
    std::size_t transact(std::span<const std::byte> request, std::span<std::byte> reply, Timeout t,
                         std::error_code& ec) override {
        return platform::transact(*c_, request, reply, detail::Deadline(t), ec);
    }
    void set_read_mode(ReadMode mode, std::error_code& ec) override { ec = platform::set_read_mode(*c_, mode); }
    void set_wait_mode(WaitMode mode, std::error_code& ec) override { ec = platform::set_wait_mode(*c_, mode); }
    ChannelInfo info(std::error_code& ec) override { return platform::info(*c_, ec); }
    void cancel() noexcept override { platform::cancel(*c_); }
    void accept(Timeout t, std::error_code& ec) override { ec = platform::accept(*c_, detail::Deadline(t)); }
    void disconnect(std::error_code& ec) override { ec = platform::disconnect(*c_); }
    std::int64_t client_process_id(std::error_code& ec) override {
        std::int64_t pid = -1;
        ec = platform::client_process_id(*c_, pid);
        return pid;
    }
    std::string client_user(std::error_code& ec) override {
        std::string user;
        ec = platform::client_user(*c_, user);
        return user;
    }
    std::string client_computer_name(std::error_code& ec) override {
        std::string name;
        ec = platform::client_computer_name(*c_, name);
        return name;
    }
    EventSource event_source(ChannelEvent event) override { return platform::event_source(*c_, event); }
    std::int64_t server_process_id(std::error_code& ec) override {
        std::int64_t pid = -1;
        ec = platform::server_process_id(*c_, pid);
        return pid;
    }
    std::string server_user(std::error_code& ec) override {
        std::string user;
        ec = platform::server_user(*c_, user);
        return user;
    }

private:
    platform::ChannelPtr c_;
};

class NativeMailslot final : public MailslotBackend {
public:
    explicit NativeMailslot(platform::MailslotReaderPtr m) : m_(std::move(m)) {}
    std::size_t receive(std::span<std::byte> b, std::error_code& ec) override { return platform::receive(*m_, b, ec); }
    MailslotInfo info(std::error_code& ec) override { return platform::info(*m_, ec); }
    void set_read_timeout(Timeout t, std::error_code& ec) override { ec = platform::set_read_timeout(*m_, t); }
    void cancel() noexcept override { platform::cancel(*m_); }

private:
    platform::MailslotReaderPtr m_;
};

class NativeBroadcaster final : public BroadcasterBackend {
public:
    explicit NativeBroadcaster(platform::MailslotWriterPtr w) : w_(std::move(w)) {}
    void send(std::span<const std::byte> m, Timeout t, std::error_code& ec) override {
        ec = platform::send(*w_, m, detail::Deadline(t));
    }

private:
    platform::MailslotWriterPtr w_;
};

class NativeIpc final : public IpcSystem {
public:
    std::string host_name() override { return platform::host_name(); }

protected:
    std::unique_ptr<ChannelBackend> do_open_channel(const PipeName& name, const ClientOptions& options,
                                                    std::error_code& ec) override {
        platform::ChannelPtr c;
        ec = platform::open_channel(name, options, detail::Deadline(options.wait), c);
        return ec ? nullptr : std::make_unique<NativeChannel>(std::move(c));
    }
    std::unique_ptr<InstanceBackend> do_create_instance(const PipeName& name, const ServerOptions& options,
                                                        std::error_code& ec) override {
        platform::ChannelPtr c;
        ec = platform::create_instance(name, options, c);
        return ec ? nullptr : std::make_unique<NativeChannel>(std::move(c));
    }
    std::unique_ptr<MailslotBackend> do_create_mailslot(const MailslotName& name, const MailslotOptions& options,
                                                        std::error_code& ec) override {
        platform::MailslotReaderPtr m;
        ec = platform::create_mailslot(name, options, m);
        return ec ? nullptr : std::make_unique<NativeMailslot>(std::move(m));
    }
    std::unique_ptr<BroadcasterBackend> do_open_broadcaster(const MailslotName& name, std::error_code& ec) override {
        platform::MailslotWriterPtr w;
        ec = platform::open_broadcaster(name, w);
        return ec ? nullptr : std::make_unique<NativeBroadcaster>(std::move(w));
    }
    void do_wait_for_instance(const PipeName& name, const ClientOptions& options, std::error_code& ec) override {
        ec = platform::wait_for_instance(name, options, detail::Deadline(options.wait));
    }
    PipeStreams do_create_pipe(const PipeOptions& options, std::error_code& ec) override {
        auto pipe = Pipe::create(options, ec);
        if (ec) return {};
        return {std::make_unique<PipeReadEnd>(std::move(pipe.read_end)),
                std::make_unique<PipeWriteEnd>(std::move(pipe.write_end))};
    }
};

}  // namespace

platform::Channel* detail::native_channel(InstanceBackend* instance) noexcept {
    auto* native = dynamic_cast<NativeChannel*>(instance);
    return native ? &native->channel() : nullptr;
}

IpcSystem& native_ipc() {
    static NativeIpc system;
    return system;
}

}  // namespace pipeslot
