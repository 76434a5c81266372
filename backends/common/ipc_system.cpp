// IpcSystem's checks: the same for the native system, the fake and mocks.
#include "deadline.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/ipc_system.hpp>

#include <functional>

namespace pipeslot {
namespace {

bool valid(const ServerOptions& o) {
    return o.max_instances >= 1 && o.max_instances <= unlimited_instances &&
           o.in_buffer_size <= max_pipe_buffer_size && o.out_buffer_size <= max_pipe_buffer_size &&
           o.default_wait.is_valid() && !(o.type == PipeType::byte && o.read_mode == ReadMode::message) &&
           o.max_message_size >= 1 && o.max_message_size <= max_message_size &&
           !(o.publish_smb && o.reject_remote_clients);  // a local-only pipe is never published
}

Timeout left(const detail::Deadline& d) {
    return d.is_forever() ? Timeout::forever() : Timeout(std::chrono::milliseconds(d.remaining_ms()));
}

// CallNamedPipe: open (waiting as `options` say), transact, close.
std::size_t call_with(IpcSystem& ipc, std::string_view name, std::span<const std::byte> request,
                      std::span<std::byte> reply, ClientOptions options, const std::function<Timeout()>& exchange_timeout,
                      std::error_code& ec) {
    options.read_mode = ReadMode::message;
    auto channel = ipc.open_channel(name, options, ec);
    if (ec) return 0;
    return channel.transact(request, reply, exchange_timeout(), ec);  // more_data: the rest goes with the channel
}

}  // namespace

MessageChannel IpcSystem::open_channel(std::string_view text, const ClientOptions& options, std::error_code& ec) {
    ec.clear();
    const auto name = PipeName::parse(text, ec);
    if (ec) return {};
    if (!options.wait.is_valid() || options.max_message_size < 1 || options.max_message_size > max_message_size) {
        ec = errc::invalid_argument;
        return {};
    }
    auto backend = do_open_channel(name, options, ec);
    if (ec) return {};
    MessageChannel channel(std::move(backend));
    channel.max_incoming_ = options.max_message_size;
    return channel;
}

void IpcSystem::wait_for_instance(std::string_view text, const ClientOptions& options, std::error_code& ec) {
    ec.clear();
    const auto name = PipeName::parse(text, ec);
    if (ec) return;
    if (!options.wait.is_valid()) {
        ec = errc::invalid_argument;
        return;
    }
    do_wait_for_instance(name, options, ec);
}

PipeInstance IpcSystem::create_instance(std::string_view text, const ServerOptions& options, std::error_code& ec) {
    ec.clear();
    const auto name = PipeName::parse(text, ec);
    if (ec) return {};
    if (!name.is_local()) {
        ec = errc::invalid_name;  // a server creates local names only
        return {};
    }
    if (!valid(options)) {
        ec = errc::invalid_argument;
        return {};
    }
    auto backend = do_create_instance(name, options, ec);
    if (ec) return {};
    PipeInstance instance(std::move(backend));
    instance.max_incoming_ = options.max_message_size;
    return instance;
}

Mailslot IpcSystem::create_mailslot(std::string_view text, const MailslotOptions& options, std::error_code& ec) {
    ec.clear();
    const auto name = MailslotName::parse(text, ec);
    if (ec) return {};
    if (!name.is_local()) {
        ec = errc::invalid_name;  // a reader exists on its own host only
        return {};
    }
    if (!options.read_timeout.is_valid() || options.max_message_size > max_mailslot_message_limit ||
        options.max_queued_bytes == 0 || options.max_queued_messages == 0) {
        ec = errc::invalid_argument;
        return {};
    }
    auto backend = do_create_mailslot(name, options, ec);
    return ec ? Mailslot() : Mailslot(std::move(backend));
}

Broadcaster IpcSystem::open_broadcaster(std::string_view text, std::error_code& ec) {
    ec.clear();
    const auto name = MailslotName::parse(text, ec);
    if (ec) return {};
    auto backend = do_open_broadcaster(name, ec);
    return ec ? Broadcaster() : Broadcaster(std::move(backend));
}

PipeStreams IpcSystem::create_pipe(const PipeOptions& options, std::error_code& ec) {
    ec.clear();
    if (options.buffer_size > max_pipe_buffer_size) {
        ec = errc::invalid_argument;
        return {};
    }
    return do_create_pipe(options, ec);
}

std::size_t IpcSystem::call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                            Timeout timeout, std::error_code& ec) {
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    const detail::Deadline deadline(timeout);  // the whole call, the wait for an instance included
    ClientOptions options;
    options.wait = left(deadline);
    return call_with(*this, name, request, reply, options, [&] { return left(deadline); }, ec);
}

std::size_t IpcSystem::call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                            const ClientOptions& open, Timeout timeout, std::error_code& ec) {
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    return call_with(*this, name, request, reply, open, [&] { return timeout; }, ec);
}


}  // namespace pipeslot
