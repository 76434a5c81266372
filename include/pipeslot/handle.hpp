// The operating system's handle for an open end: a file descriptor on POSIX,
// a HANDLE on Windows. Both fit in an intptr_t; -1 means "none".
#pragma once

#include <cstdint>

namespace pipeslot {

using native_handle_type = std::intptr_t;
inline constexpr native_handle_type invalid_native_handle = -1;

}  // namespace pipeslot
