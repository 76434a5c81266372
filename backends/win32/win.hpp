// The one place the Win32 backend includes <windows.h>, with the settings it
// needs, and the small helpers every file of this backend uses.
#pragma once

#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00  // Windows 10: LCMapStringEx, handle lists, CancelIoEx
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include "../common/deadline.hpp"

#include <pipeslot/handle.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace pipeslot::win32 {

std::error_code last_error() noexcept;  // GetLastError() as a portable code
std::error_code error_from(DWORD error) noexcept;

// UTF-8 <-> UTF-16 at the Win32 boundary; nullopt for malformed UTF-8.
std::optional<std::wstring> to_wide(std::string_view utf8);
std::string to_utf8(std::wstring_view wide);

// Milliseconds for WaitForSingleObject.
DWORD wait_ms(const detail::Deadline& deadline) noexcept;

inline HANDLE as_handle(native_handle_type h) noexcept { return reinterpret_cast<HANDLE>(h); }
inline native_handle_type as_native(HANDLE h) noexcept { return reinterpret_cast<native_handle_type>(h); }

// One overlapped ReadFile/WriteFile/ConnectNamedPipe..., waited for within a
// deadline and cancelled when it passes.
struct IoResult {
    DWORD bytes = 0;
    DWORD error = 0;  // 0: success
    bool timed_out = false;
};
HANDLE thread_io_event();  // one manual-reset event per thread, reused

template <class Start>
IoResult overlapped_io(HANDLE h, const detail::Deadline& deadline, Start&& start) {
    OVERLAPPED ov{};
    // The low bit keeps the completion off a completion port the handle may
    // be bound to (pipeslot/asio/): this call waits for it on the event.
    const HANDLE event = thread_io_event();
    ov.hEvent = reinterpret_cast<HANDLE>(reinterpret_cast<ULONG_PTR>(event) | 1);
    IoResult r;
    if (!start(&ov)) {
        const DWORD e = GetLastError();
        if (e == ERROR_MORE_DATA) {  // finished at once, part of a message: the count is in `ov`
            GetOverlappedResult(h, &ov, &r.bytes, FALSE);
            r.error = e;
            return r;
        }
        if (e != ERROR_IO_PENDING) {
            r.error = e;
            return r;
        }
        if (WaitForSingleObject(event, wait_ms(deadline)) == WAIT_TIMEOUT) {
            CancelIoEx(h, &ov);
            r.timed_out = true;
        }
    }
    // Waits for a cancelled operation to finish too: `ov` lives on this stack.
    if (GetOverlappedResult(h, &ov, &r.bytes, TRUE)) {
        r.timed_out = false;  // it completed before the cancel took effect
    } else {
        r.error = GetLastError();
    }
    return r;
}

}  // namespace pipeslot::win32
