// A batch of messages sent one by one within one deadline: how a platform
// without a gathering write sends MessageChannel::send_messages.
#pragma once

#include <cstddef>
#include <span>
#include <system_error>

namespace pipeslot::detail {

// `send_one(message, ec)` sends one and returns the bytes written; returns
// how many were sent whole. A message that wrote nothing without an error
// (a PIPE_NOWAIT write that does not fit) ends the batch there.
template <class SendOne>
std::size_t send_each(std::span<const std::span<const std::byte>> messages, SendOne send_one, std::error_code& ec) {
    std::size_t sent = 0;
    for (const auto& m : messages) {
        const std::size_t written = send_one(m, ec);
        if (ec || (written == 0 && !m.empty())) break;
        ++sent;
    }
    return sent;
}

}  // namespace pipeslot::detail
