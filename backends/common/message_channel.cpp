// The public MessageChannel and PipeInstance: arguments are checked here, once
// for every backend, then handed to the backend's platform functions.
#include "platform.hpp"
#include "throw.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/message_channel.hpp>
#include <pipeslot/pipe.hpp>

namespace pipeslot {
namespace {

bool valid_server_options(const ServerOptions& o) {
    return o.max_instances >= 1 && o.max_instances <= unlimited_instances &&
           o.in_buffer_size <= max_pipe_buffer_size && o.out_buffer_size <= max_pipe_buffer_size &&
           o.default_wait.is_valid() && !(o.type == PipeType::byte && o.read_mode == ReadMode::message);
}

// A local pipe name, or the error for it.
PipeName local_pipe_name(std::string_view text, std::error_code& ec) {
    auto name = PipeName::parse(text, ec);
    if (!ec && !name.is_local()) ec = errc::not_supported;  // remote pipes: a later backend feature
    return name;
}

}  // namespace

MessageChannel::MessageChannel() noexcept = default;
MessageChannel::MessageChannel(MessageChannel&&) noexcept = default;
MessageChannel& MessageChannel::operator=(MessageChannel&&) noexcept = default;
MessageChannel::~MessageChannel() = default;
MessageChannel::MessageChannel(platform::ChannelPtr impl) noexcept : impl_(std::move(impl)) {}

void MessageChannel::close() noexcept { impl_.reset(); }

bool MessageChannel::check_open(std::error_code& ec) const {
    if (impl_) return true;
    ec = errc::invalid_argument;
    return false;
}

MessageChannel MessageChannel::open(std::string_view text, const ClientOptions& options, std::error_code& ec) {
    const auto name = local_pipe_name(text, ec);
    if (ec) return {};
    if (!options.wait.is_valid()) {
        ec = errc::invalid_argument;
        return {};
    }
    platform::ChannelPtr impl;
    ec = platform::open_channel(name, options, detail::Deadline(options.wait), impl);
    return ec ? MessageChannel() : MessageChannel(std::move(impl));
}

MessageChannel MessageChannel::open(std::string_view name, const ClientOptions& options) {
    return detail::or_throw(std::string(name), [&](std::error_code& ec) { return open(name, options, ec); });
}

std::size_t MessageChannel::receive(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    if (buffer.empty() || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    return platform::receive(*impl_, buffer, detail::Deadline(timeout), ec);
}

std::vector<std::byte> MessageChannel::receive_message(Timeout timeout, std::error_code& ec) {
    std::vector<std::byte> message(4096);
    if (!check_open(ec) || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return {};
    }
    const detail::Deadline deadline(timeout);
    std::size_t have = 0;
    for (;;) {
        ec.clear();
        have += platform::receive(*impl_, std::span(message).subspan(have), deadline, ec);
        if (ec != errc::more_data) break;
        if (message.size() >= max_message_size) {
            ec = errc::message_too_large;
            break;
        }
        message.resize(std::min(message.size() * 2, max_message_size));
    }
    message.resize(have);
    return message;
}

std::size_t MessageChannel::send(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    if (data.size() > max_message_size) {
        ec = errc::message_too_large;
        return 0;
    }
    return platform::send(*impl_, data, detail::Deadline(timeout), ec);
}

std::size_t MessageChannel::send(std::span<const std::byte> data, Timeout timeout) {
    return detail::or_throw("send", [&](std::error_code& ec) { return send(data, timeout, ec); });
}

std::vector<std::byte> MessageChannel::receive_message(Timeout timeout) {
    return detail::or_throw("receive_message", [&](std::error_code& ec) { return receive_message(timeout, ec); });
}

PeekResult MessageChannel::peek(std::span<std::byte> buffer, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return {};
    return platform::peek(*impl_, buffer, ec);
}

std::size_t MessageChannel::transact(std::span<const std::byte> request, std::span<std::byte> reply,
                                     Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    if (reply.empty() || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    if (request.size() > max_message_size) {
        ec = errc::message_too_large;
        return 0;
    }
    return platform::transact(*impl_, request, reply, detail::Deadline(timeout), ec);
}

void MessageChannel::set_read_mode(ReadMode mode, std::error_code& ec) {
    ec.clear();
    if (check_open(ec)) ec = platform::set_read_mode(*impl_, mode);
}

ChannelInfo MessageChannel::info(std::error_code& ec) const {
    ec.clear();
    if (!check_open(ec)) return {};
    return platform::info(*impl_, ec);
}

void MessageChannel::cancel() noexcept {
    if (impl_) platform::cancel(*impl_);
}

PipeInstance PipeInstance::create(std::string_view text, const ServerOptions& options, std::error_code& ec) {
    const auto name = local_pipe_name(text, ec);
    if (ec) {
        if (ec == errc::not_supported) ec = errc::invalid_name;  // a server creates local names only
        return {};
    }
    if (!valid_server_options(options)) {
        ec = errc::invalid_argument;
        return {};
    }
    platform::ChannelPtr impl;
    ec = platform::create_instance(name, options, impl);
    return ec ? PipeInstance() : PipeInstance(std::move(impl));
}

PipeInstance PipeInstance::create(std::string_view name, const ServerOptions& options) {
    return detail::or_throw(std::string(name), [&](std::error_code& ec) { return create(name, options, ec); });
}

void PipeInstance::accept(Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return;
    }
    ec = platform::accept(*impl_, detail::Deadline(timeout));
}

void PipeInstance::disconnect(std::error_code& ec) {
    ec.clear();
    if (check_open(ec)) ec = platform::disconnect(*impl_);
}

std::int64_t PipeInstance::client_process_id(std::error_code& ec) const {
    ec.clear();
    std::int64_t pid = -1;
    if (check_open(ec)) ec = platform::client_process_id(*impl_, pid);
    return pid;
}

std::string PipeInstance::client_user(std::error_code& ec) const {
    ec.clear();
    std::string user;
    if (check_open(ec)) ec = platform::client_user(*impl_, user);
    return user;
}

std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                 Timeout timeout, std::error_code& ec) {
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    const detail::Deadline deadline(timeout);
    ClientOptions options;
    options.read_mode = ReadMode::message;
    options.wait = Timeout(std::chrono::milliseconds(deadline.remaining_ms()));
    if (timeout.is_forever()) options.wait = Timeout::forever();
    auto channel = MessageChannel::open(name, options, ec);
    if (ec) return 0;
    const auto left = timeout.is_forever() ? Timeout::forever() : Timeout(std::chrono::milliseconds(deadline.remaining_ms()));
    return channel.transact(request, reply, left, ec);  // more_data: the rest is dropped with the channel
}

std::string current_user() { return platform::current_user(); }

}  // namespace pipeslot
