// The platform channel behind an instance that the native system made
// (null for the fake's or a mock's), for what works below the public API:
// PipeServer's accept group.
#pragma once

#include "platform.hpp"

#include <pipeslot/backend.hpp>

namespace pipeslot::detail {

platform::Channel* native_channel(InstanceBackend* instance) noexcept;

}  // namespace pipeslot::detail
