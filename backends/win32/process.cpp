#include "../common/command_line.hpp"
#include "../common/platform.hpp"
#include "win.hpp"

#include <pipeslot/error.hpp>

#include <memory>
#include <shellapi.h>
#include <vector>

namespace pipeslot::platform {
namespace {

constexpr DWORD std_handle_ids[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};

// Inheritable duplicates made for one CreateProcess call, closed afterwards.
// Duplicating (instead of flagging the caller's handles inheritable) keeps a
// concurrent spawn elsewhere in the process from picking them up.
struct ChildHandles {
    HANDLE std[3] = {nullptr, nullptr, nullptr};
    ~ChildHandles() {
        for (HANDLE h : std)
            if (h) CloseHandle(h);
    }
};

HANDLE inheritable_copy(HANDLE source) {
    HANDLE copy = nullptr;
    if (!source || source == INVALID_HANDLE_VALUE) return nullptr;
    if (!DuplicateHandle(GetCurrentProcess(), source, GetCurrentProcess(), &copy, 0, TRUE, DUPLICATE_SAME_ACCESS))
        return nullptr;
    return copy;
}

std::error_code prepare_stdio(const ChildStdio (&stdio)[3], ChildHandles& out) {
    for (int i = 0; i < 3; ++i) {
        switch (stdio[i].kind) {
        case ChildStdio::Kind::inherit:
            out.std[i] = inheritable_copy(GetStdHandle(std_handle_ids[i]));  // none for a GUI parent
            break;
        case ChildStdio::Kind::null: {
            SECURITY_ATTRIBUTES inherit{sizeof(inherit), nullptr, TRUE};
            out.std[i] = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                                     &inherit, OPEN_EXISTING, 0, nullptr);
            if (out.std[i] == INVALID_HANDLE_VALUE) {
                out.std[i] = nullptr;
                return win32::last_error();
            }
            break;
        }
        case ChildStdio::Kind::handle:
            out.std[i] = inheritable_copy(win32::as_handle(stdio[i].handle));
            if (!out.std[i]) return win32::last_error();
            break;
        }
    }
    return {};
}

struct AttributeListDeleter {
    void operator()(LPPROC_THREAD_ATTRIBUTE_LIST list) const {
        DeleteProcThreadAttributeList(list);
        ::operator delete(list);
    }
};
using AttributeList = std::unique_ptr<std::remove_pointer_t<LPPROC_THREAD_ATTRIBUTE_LIST>, AttributeListDeleter>;

}  // namespace

std::error_code spawn(const SpawnRequest& request, ProcessHandles& out) {
    // A program name cannot hold a quote: argv[0] has no escape for it.
    if (request.program.find('"') != std::string::npos) return errc::invalid_argument;
    auto command_line = win32::to_wide(detail::windows_command_line(request.program, request.args));
    auto directory = win32::to_wide(request.working_directory);
    if (!command_line || !directory) return errc::invalid_argument;

    ChildHandles handles;
    if (auto ec = prepare_stdio(request.stdio, handles)) return ec;
    std::vector<HANDLE> inherited;
    for (HANDLE h : handles.std)
        if (h) inherited.push_back(h);

    STARTUPINFOEXW startup{};
    startup.StartupInfo.cb = sizeof(startup);
    startup.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    startup.StartupInfo.hStdInput = handles.std[0];
    startup.StartupInfo.hStdOutput = handles.std[1];
    startup.StartupInfo.hStdError = handles.std[2];

    // The child inherits exactly the handles in this list and no other.
    SIZE_T list_size = 0;
    InitializeProcThreadAttributeList(nullptr, 1, 0, &list_size);
    AttributeList list(static_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(::operator new(list_size)));
    if (!InitializeProcThreadAttributeList(list.get(), 1, 0, &list_size)) {
        const auto ec = win32::last_error();
        ::operator delete(list.release());
        return ec;
    }
    if (!inherited.empty() &&
        !UpdateProcThreadAttribute(list.get(), 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherited.data(),
                                   inherited.size() * sizeof(HANDLE), nullptr, nullptr))
        return win32::last_error();
    startup.lpAttributeList = list.get();

    PROCESS_INFORMATION info{};
    if (!CreateProcessW(nullptr, command_line->data(), nullptr, nullptr, inherited.empty() ? FALSE : TRUE,
                        EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT, nullptr,
                        directory->empty() ? nullptr : directory->c_str(), &startup.StartupInfo, &info))
        return win32::last_error();
    CloseHandle(info.hThread);
    out.handle = win32::as_native(info.hProcess);
    out.pid = info.dwProcessId;
    return {};
}

std::error_code wait(const ProcessHandles& process, const Deadline& deadline, int& exit_code) {
    const HANDLE h = win32::as_handle(process.handle);
    const DWORD w = WaitForSingleObject(h, win32::wait_ms(deadline));
    if (w == WAIT_TIMEOUT) return errc::timed_out;
    if (w != WAIT_OBJECT_0) return win32::last_error();
    DWORD code = 0;
    if (!GetExitCodeProcess(h, &code)) return win32::last_error();
    exit_code = static_cast<int>(code);
    return {};
}

std::error_code kill(const ProcessHandles& process) {
    const HANDLE h = win32::as_handle(process.handle);
    constexpr UINT killed_exit_code = 128 + 9;  // what a POSIX shell reports for SIGKILL
    if (!TerminateProcess(h, killed_exit_code)) {
        const auto ec = win32::last_error();
        if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0) return {};  // it had exited already
        return ec;
    }
    return {};
}

void release(ProcessHandles& process) noexcept {
    if (process.handle != invalid_native_handle) CloseHandle(win32::as_handle(process.handle));
    process = {};
}

std::vector<std::string> command_line_arguments(int, char**) {
    int count = 0;
    wchar_t** wide = CommandLineToArgvW(GetCommandLineW(), &count);
    std::vector<std::string> out;
    if (!wide) return out;
    for (int i = 0; i < count; ++i) out.push_back(win32::to_utf8(wide[i]));
    LocalFree(wide);
    return out;
}

}  // namespace pipeslot::platform
