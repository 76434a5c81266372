#include "../common/platform.hpp"
#include "win.hpp"

namespace pipeslot::platform {

void close_handle(native_handle_type h) noexcept { CloseHandle(win32::as_handle(h)); }

std::error_code set_inheritable(native_handle_type h, bool inheritable) {
    if (!SetHandleInformation(win32::as_handle(h), HANDLE_FLAG_INHERIT, inheritable ? HANDLE_FLAG_INHERIT : 0))
        return win32::last_error();
    return {};
}

}  // namespace pipeslot::platform

namespace pipeslot::platform {

std::string host_name() {
    wchar_t name[256];
    DWORD size = 256;
    if (!GetComputerNameExW(ComputerNameDnsHostname, name, &size)) return "localhost";
    return win32::to_utf8(std::wstring_view(name, size));
}

}  // namespace pipeslot::platform
