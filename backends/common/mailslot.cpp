// The public Mailslot and Broadcaster: arguments are checked here, once for
// every backend, then handed to the backend's platform functions.
#include "throw.hpp"

#include <pipeslot/backend.hpp>
#include <pipeslot/error.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/mailslot.hpp>

#include <algorithm>

namespace pipeslot {

Mailslot::Mailslot() noexcept = default;
Mailslot::Mailslot(std::unique_ptr<MailslotBackend> backend) noexcept : impl_(std::move(backend)) {}
Mailslot::Mailslot(Mailslot&&) noexcept = default;
Mailslot& Mailslot::operator=(Mailslot&&) noexcept = default;
Mailslot::~Mailslot() = default;

bool Mailslot::check_open(std::error_code& ec) const {
    if (impl_) return true;
    ec = errc::invalid_argument;
    return false;
}

Mailslot Mailslot::create(std::string_view name, const MailslotOptions& options, std::error_code& ec) {
    return native_ipc().create_mailslot(name, options, ec);
}

Mailslot Mailslot::create(std::string_view name, const MailslotOptions& options) {
    return detail::or_throw(std::string(name), [&](std::error_code& ec) { return create(name, options, ec); });
}

std::size_t Mailslot::receive(std::span<std::byte> buffer, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    return impl_->receive(buffer, ec);
}

std::vector<std::byte> Mailslot::receive_message(std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return {};
    // Learn the size first; a message that arrives meanwhile is simply next.
    std::vector<std::byte> message(4096);
    for (;;) {
        ec.clear();
        const auto n = impl_->receive(message, ec);
        if (ec != errc::buffer_too_small) {
            message.resize(ec ? 0 : n);
            return message;
        }
        ec.clear();
        const auto info = impl_->info(ec);
        if (ec) return {};
        message.resize(std::max(message.size() * 2, info.next_message_size.value_or(0)));
    }
}

MailslotInfo Mailslot::info(std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return {};
    return impl_->info(ec);
}

void Mailslot::set_read_timeout(Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return;
    }
    impl_->set_read_timeout(timeout, ec);
}

void Mailslot::cancel() noexcept {
    if (impl_) impl_->cancel();
}

void Mailslot::close() noexcept { impl_.reset(); }

EventSource Mailslot::event_source() const { return impl_ ? impl_->event_source() : EventSource{}; }

Broadcaster::Broadcaster() noexcept = default;
Broadcaster::Broadcaster(std::unique_ptr<BroadcasterBackend> backend) noexcept : impl_(std::move(backend)) {}
Broadcaster::Broadcaster(Broadcaster&&) noexcept = default;
Broadcaster& Broadcaster::operator=(Broadcaster&&) noexcept = default;
Broadcaster::~Broadcaster() = default;

Broadcaster Broadcaster::open(std::string_view name, std::error_code& ec) {
    return native_ipc().open_broadcaster(name, ec);
}

Broadcaster Broadcaster::open(std::string_view name) {
    return detail::or_throw(std::string(name), [&](std::error_code& ec) { return open(name, ec); });
}

void Broadcaster::send(std::span<const std::byte> message, Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!impl_ || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return;
    }
    impl_->send(message, timeout, ec);
}

void Broadcaster::close() noexcept { impl_.reset(); }

}  // namespace pipeslot
