// What a client end may do, by the access it asked for: the same rules for
// every backend (Windows: a client opened with neither read nor write
// access connects to an instance, of any direction, and may only ask state).
#pragma once

#include <pipeslot/message_channel.hpp>

namespace pipeslot::detail {

constexpr bool reads(ClientAccess a) noexcept { return a == ClientAccess::read || a == ClientAccess::read_write; }
constexpr bool writes(ClientAccess a) noexcept { return a == ClientAccess::write || a == ClientAccess::read_write; }

// Whether a client may open a pipe of this direction with this access.
constexpr bool client_access_allowed(PipeAccess pipe, ClientAccess client) noexcept {
    if (client == ClientAccess::none) return true;
    if (pipe == PipeAccess::inbound) return client == ClientAccess::write;
    if (pipe == PipeAccess::outbound) return client == ClientAccess::read;
    return true;
}

}  // namespace pipeslot::detail
