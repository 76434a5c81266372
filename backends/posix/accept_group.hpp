// What the accept group (accept_group.cpp) needs of a POSIX channel.
#pragma once

#include "../common/platform.hpp"

namespace pipeslot::posix {

// The eventfd the broker rings when it hands a server's instance a client
// (-1 for a client's end).
int instance_doorbell(const platform::Channel& c) noexcept;

}  // namespace pipeslot::posix
