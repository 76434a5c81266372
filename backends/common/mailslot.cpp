// The public Mailslot and Broadcaster: arguments are checked here, once for
// every backend, then handed to the backend's platform functions.
#include "platform.hpp"
#include "throw.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/mailslot.hpp>
#include <pipeslot/pipe.hpp>

namespace pipeslot {

Mailslot::Mailslot() noexcept = default;
Mailslot::Mailslot(Mailslot&&) noexcept = default;
Mailslot& Mailslot::operator=(Mailslot&&) noexcept = default;
Mailslot::~Mailslot() = default;

bool Mailslot::check_open(std::error_code& ec) const {
    if (impl_) return true;
    ec = errc::invalid_argument;
    return false;
}

Mailslot Mailslot::create(std::string_view text, const MailslotOptions& options, std::error_code& ec) {
    const auto name = MailslotName::parse(text, ec);
    if (ec) return {};
    if (!name.is_local()) {
        ec = errc::invalid_name;  // a reader exists on its own host only
        return {};
    }
    if (!options.read_timeout.is_valid() || options.max_message_size > max_pipe_buffer_size) {
        ec = errc::invalid_argument;
        return {};
    }
    Mailslot m;
    ec = platform::create_mailslot(name, options, m.impl_);
    if (ec) m.impl_.reset();
    return m;
}

Mailslot Mailslot::create(std::string_view name, const MailslotOptions& options) {
    return detail::or_throw(std::string(name), [&](std::error_code& ec) { return create(name, options, ec); });
}

std::size_t Mailslot::receive(std::span<std::byte> buffer, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return 0;
    return platform::receive(*impl_, buffer, ec);
}

std::vector<std::byte> Mailslot::receive_message(std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return {};
    // Learn the size first; a message that arrives meanwhile is simply next.
    std::vector<std::byte> message(4096);
    for (;;) {
        ec.clear();
        const auto n = platform::receive(*impl_, message, ec);
        if (ec != errc::buffer_too_small) {
            message.resize(ec ? 0 : n);
            return message;
        }
        ec.clear();
        const auto info = platform::info(*impl_, ec);
        if (ec) return {};
        message.resize(std::max(message.size() * 2, info.next_message_size.value_or(0)));
    }
}

MailslotInfo Mailslot::info(std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return {};
    return platform::info(*impl_, ec);
}

void Mailslot::set_read_timeout(Timeout timeout, std::error_code& ec) {
    ec.clear();
    if (!check_open(ec)) return;
    if (!timeout.is_valid()) {
        ec = errc::invalid_argument;
        return;
    }
    ec = platform::set_read_timeout(*impl_, timeout);
}

void Mailslot::cancel() noexcept {
    if (impl_) platform::cancel(*impl_);
}

void Mailslot::close() noexcept { impl_.reset(); }

Broadcaster::Broadcaster() noexcept = default;
Broadcaster::Broadcaster(Broadcaster&&) noexcept = default;
Broadcaster& Broadcaster::operator=(Broadcaster&&) noexcept = default;
Broadcaster::~Broadcaster() = default;

Broadcaster Broadcaster::open(std::string_view text, std::error_code& ec) {
    const auto name = MailslotName::parse(text, ec);
    if (ec) return {};
    Broadcaster b;
    ec = platform::open_broadcaster(name, b.impl_);
    if (ec) b.impl_.reset();
    return b;
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
    ec = platform::send(*impl_, message, detail::Deadline(timeout));
}

void Broadcaster::close() noexcept { impl_.reset(); }

}  // namespace pipeslot
