#include "win.hpp"

#include "../common/error_map.hpp"

namespace pipeslot::win32 {

std::error_code error_from(DWORD error) noexcept { return detail::error_from_win32(error); }
std::error_code last_error() noexcept { return error_from(GetLastError()); }

std::optional<std::wstring> to_wide(std::string_view utf8) {
    if (utf8.empty()) return std::wstring();
    const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()),
                                      nullptr, 0);
    if (n <= 0) return std::nullopt;
    std::wstring out(static_cast<std::size_t>(n), L'\0');
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()), out.data(), n);
    return out;
}

std::string to_utf8(std::wstring_view wide) {
    if (wide.empty()) return {};
    const int n = WideCharToMultiByte(CP_UTF8, 0, wide.data(), static_cast<int>(wide.size()), nullptr, 0, nullptr,
                                      nullptr);
    std::string out(static_cast<std::size_t>(n), '\0');
    WideCharToMultiByte(CP_UTF8, 0, wide.data(), static_cast<int>(wide.size()), out.data(), n, nullptr, nullptr);
    return out;
}

DWORD wait_ms(const detail::Deadline& deadline) noexcept {
    return deadline.is_forever() ? INFINITE : static_cast<DWORD>(deadline.remaining_ms(INFINITE - 1));
}

namespace {
struct ThreadEvent {
    HANDLE event = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    ~ThreadEvent() {
        if (event) CloseHandle(event);
    }
};
}  // namespace

HANDLE thread_io_event() {
    thread_local ThreadEvent e;
    return e.event;
}

}  // namespace pipeslot::win32
