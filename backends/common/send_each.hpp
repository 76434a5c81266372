// A batch of messages sent one by one within one deadline: how a platform
// without a gathering write sends MessageChannel::send_messages.
#pragma once

#include <cstddef>
#include <span>
#include <system_error>

namespace pipeslot::detail {

// `send_one(message, ec)` sends one; returns how many were sent whole.
template <class SendOne>
std::size_t send_each(std::span<const std::span<const std::byte>> messages, SendOne send_one, std::error_code& ec) {
    std::size_t sent = 0;
    for (const auto& m : messages) {
        send_one(m, ec);
        if (ec) break;
        ++sent;
    }
    return sent;
}

}  // namespace pipeslot::detail
