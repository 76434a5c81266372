// The public MessageChannel and PipeInstance: every argument is checked here,
// once for every backend (native, fake or mock), then handed to the backend.
#include "deadline.hpp"
#include "platform.hpp"
#include "send_each.hpp"
#include "throw.hpp"

#include <pipeslot/backend.hpp>
#include <pipeslot/error.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/message_channel.hpp>

#include <algorithm>

namespace pipeslot {

MessageChannel::MessageChannel() noexcept = default;
MessageChannel::MessageChannel(std::unique_ptr<ChannelBackend> backend) noexcept : impl_(std::move(backend)) {}
MessageChannel::MessageChannel(MessageChannel&&) noexcept = default;
MessageChannel& MessageChannel::operator=(MessageChannel&&) noexcept = default;
MessageChannel::~MessageChannel() = default;

void MessageChannel::close() noexcept { impl_.reset(); }

bool MessageChannel::check_open(std::error_code& ec) const {
    if (impl_) return true;
    ec = errc::invalid_argument;
    return false;
}

MessageChannel MessageChannel::open(std::string_view name, const ClientOptions& options, std::error_code& ec) {
    return native_ipc().open_channel(name, options, ec);
}

MessageChannel MessageChannel::open(std::string_view name, const ClientOptions& options) {
    return detail::or_throw(std::string(name), [&](std::error_code& ec) { return open(name, options, ec); });
}

std::size_t MessageChannel::receive(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    if (dropping_ && !drop_rest_of_message(timeout, ec)) return 0;  // a refused message's rest first
    return impl_->receive(buffer, timeout, ec);  // an empty buffer: ReadFile's zero-byte read
}

bool MessageChannel::drop_rest_of_message(Timeout timeout, std::error_code& ec) {
    const detail::Deadline deadline(timeout);
    std::vector<std::byte> scratch(std::size_t{64} << 10);
    dropping_ = true;
    do {
        ec.clear();
        impl_->receive(scratch, deadline.is_forever() ? Timeout::forever() : Timeout(std::chrono::milliseconds(deadline.remaining_ms())), ec);
    } while (ec == errc::more_data);
    if (ec == errc::timed_out || ec == errc::cancelled || ec == errc::no_data) return false;
    dropping_ = false;  // its end, or the channel's
    return !ec;
}

std::vector<std::byte> MessageChannel::receive_message(Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec) || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return {};
    }
    if (dropping_ && !drop_rest_of_message(timeout, ec)) return {};
    // One deadline for every part of the message.
    const detail::Deadline deadline(timeout);
    const auto left = [&] {
        return deadline.is_forever() ? Timeout::forever() : Timeout(std::chrono::milliseconds(deadline.remaining_ms()));
    };
    const std::size_t limit = max_incoming_;
    std::vector<std::byte> message(std::min<std::size_t>(4096, limit));
    std::size_t have = 0;
    for (;;) {
        ec.clear();
        have += impl_->receive(std::span(message).subspan(have), left(), ec);
        if (ec != errc::more_data) break;
        // Its size, where the backend can tell, refuses it before it is kept.
        std::error_code peek_error;
        const auto rest = impl_->peek({}, peek_error).left_in_message;
        const bool known = !peek_error && rest > 0;
        if (message.size() >= limit || (known && rest > limit - have)) {
            std::error_code dropped;
            drop_rest_of_message(left(), dropped);
            ec = errc::message_too_large;  // refused, whether or not its rest came in time
            return {};
        }
        message.resize(std::min(known ? have + rest : message.size() * 2, limit));
    }
    message.resize(have);
    return message;
}

std::vector<std::byte> MessageChannel::receive_message(Timeout timeout) {
    return detail::or_throw("receive_message", [&](std::error_code& ec) { return receive_message(timeout, ec); });
}

namespace {
// What every send checks before the backend sees it.
bool valid_send(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) {
    if (!timeout.is_valid()) ec = errc::invalid_argument;
    else if (data.size() > max_message_size) ec = errc::message_too_large;
    return !ec;
}
}  // namespace

std::size_t MessageChannel::send(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec) || !valid_send(data, timeout, ec)) return 0;
    return impl_->send(data, timeout, ec);
}

std::size_t MessageChannel::send_waiting(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec) || !valid_send(data, timeout, ec)) return 0;
    return impl_->send_waiting(data, timeout, ec);
}

std::size_t MessageChannel::send(std::span<const std::byte> data, Timeout timeout) {
    return detail::or_throw("send", [&](std::error_code& ec) { return send(data, timeout, ec); });
}

std::size_t MessageChannel::send_messages(std::span<const std::span<const std::byte>> messages, Timeout timeout,
                                          std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    // Checked before any is sent: a bad one would otherwise cut the batch short.
    for (const auto& m : messages) {
        if (m.size() > max_message_size) {
            ec = errc::message_too_large;
            return 0;
        }
    }
    if (messages.empty()) return 0;
    return impl_->send_messages(messages, timeout, ec);
}

std::size_t MessageChannel::send_messages(std::span<const std::span<const std::byte>> messages, Timeout timeout) {
    return detail::or_throw("send_messages", [&](std::error_code& ec) { return send_messages(messages, timeout, ec); });
}

std::size_t ChannelBackend::send_messages(std::span<const std::span<const std::byte>> messages, Timeout timeout,
                                          std::error_code& ec) {
    const detail::Deadline deadline(timeout);
    return detail::send_each(
        messages, [&](std::span<const std::byte> m, std::error_code& e) { return send(m, deadline.remaining(), e); }, ec);
}

PeekResult MessageChannel::peek(std::span<std::byte> buffer, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return {};
    return impl_->peek(buffer, ec);
}

std::size_t MessageChannel::transact(std::span<const std::byte> request, std::span<std::byte> reply,
                                     Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    if (request.size() > max_message_size) {
        ec = errc::message_too_large;
        return 0;
    }
    return impl_->transact(request, reply, timeout, ec);
}

void MessageChannel::set_read_mode(ReadMode mode, std::error_code& ec) {
    ec.clear();
    if (check_open(ec)) impl_->set_read_mode(mode, ec);
}

void MessageChannel::set_wait_mode(WaitMode mode, std::error_code& ec) {
    ec.clear();
    if (check_open(ec)) impl_->set_wait_mode(mode, ec);
}

ChannelInfo MessageChannel::info(std::error_code& ec) const {
    ec.clear();
    if (!check_open(ec)) return {};
    return impl_->info(ec);
}

std::int64_t MessageChannel::server_process_id(std::error_code& ec) const {
    ec.clear();
    return check_open(ec) ? impl_->server_process_id(ec) : -1;
}

std::string MessageChannel::server_user(std::error_code& ec) const {
    ec.clear();
    return check_open(ec) ? impl_->server_user(ec) : std::string();
}

void MessageChannel::cancel() noexcept {
    if (impl_) impl_->cancel();
}

PipeInstance::PipeInstance(std::unique_ptr<InstanceBackend> backend) noexcept : MessageChannel(std::move(backend)) {}

InstanceBackend* PipeInstance::instance() const noexcept { return static_cast<InstanceBackend*>(impl_.get()); }

PipeInstance PipeInstance::create(std::string_view name, const ServerOptions& options, std::error_code& ec) {
    return native_ipc().create_instance(name, options, ec);
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
    dropping_ = false;  // what was left of a refused message went with the last client
    instance()->accept(timeout, ec);
}

void MessageChannel::flush(std::error_code& ec) {
    ec.clear();
    if (check_open(ec)) impl_->flush(ec);
}

void MessageChannel::flush() {
    std::error_code ec;
    flush(ec);
    detail::throw_if(ec, "flush");
}

void PipeInstance::disconnect(std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return;
    dropping_ = false;
    instance()->disconnect(ec);
}

std::int64_t MessageChannel::client_process_id(std::error_code& ec) const {
    ec.clear();
    return check_open(ec) ? impl_->client_process_id(ec) : -1;
}

EventSource MessageChannel::event_source(ChannelEvent event) const {
    return impl_ ? impl_->event_source(event) : EventSource{};
}

std::string PipeInstance::client_computer_name(std::error_code& ec) const {
    ec.clear();
    return check_open(ec) ? instance()->client_computer_name(ec) : std::string();
}

std::string PipeInstance::client_user(std::error_code& ec) const {
    ec.clear();
    return check_open(ec) ? instance()->client_user(ec) : std::string();
}

std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                 Timeout timeout, std::error_code& ec) {
    return native_ipc().call(name, request, reply, timeout, ec);
}

std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                 const ClientOptions& open, Timeout timeout, std::error_code& ec) {
    return native_ipc().call(name, request, reply, open, timeout, ec);
}

void wait_for_instance(std::string_view name, const ClientOptions& options, std::error_code& ec) {
    native_ipc().wait_for_instance(name, options, ec);
}

std::string current_user() { return platform::current_user(); }

}  // namespace pipeslot
