// Native error numbers to portable codes. Both tables are pure functions of a
// number, so both are compiled and tested on every platform.
#pragma once

#include <cstdint>
#include <system_error>

namespace pipeslot::detail {

// A known errno becomes a pipeslot::errc; anything else stays a system error.
std::error_code error_from_errno(int error_number) noexcept;
// Likewise for a Win32 GetLastError() value.
std::error_code error_from_win32(std::uint32_t error_number) noexcept;

}  // namespace pipeslot::detail
