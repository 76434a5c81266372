#include "../common/platform.hpp"
#include "win.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <atomic>
#include <string>

namespace pipeslot::platform {
namespace {

constexpr DWORD default_buffer_size = 65536;  // as on Linux, rather than Windows' 4 KiB
constexpr DWORD max_io_chunk = 1u << 30;

// A unique name for each "anonymous" pipe: CreatePipe's handles cannot do
// overlapped I/O, so timeouts would be impossible; a private named pipe can.
std::wstring unique_pipe_name() {
    static std::atomic<unsigned long long> counter{0};
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    return L"\\\\.\\pipe\\pipeslot-anonymous-" + std::to_wstring(GetCurrentProcessId()) + L"-" +
           std::to_wstring(counter.fetch_add(1)) + L"-" + std::to_wstring(now.QuadPart);
}

}  // namespace

std::error_code create_pipe(std::size_t buffer_size, bool for_children, PipeHandles& out) {
    const DWORD size = buffer_size == 0 ? default_buffer_size
                                        : static_cast<DWORD>(std::min<std::size_t>(buffer_size, max_io_chunk));
    const DWORD overlapped = for_children ? 0 : FILE_FLAG_OVERLAPPED;
    HANDLE read_end = INVALID_HANDLE_VALUE;
    std::wstring name;
    for (int attempt = 0; attempt < 16 && read_end == INVALID_HANDLE_VALUE; ++attempt) {
        name = unique_pipe_name();
        read_end = CreateNamedPipeW(name.c_str(), PIPE_ACCESS_INBOUND | FILE_FLAG_FIRST_PIPE_INSTANCE | overlapped,
                                    PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
                                    size, size, 0, nullptr);
        // Someone else holds that name: take another.
        if (read_end == INVALID_HANDLE_VALUE && GetLastError() != ERROR_ACCESS_DENIED &&
            GetLastError() != ERROR_PIPE_BUSY)
            return win32::last_error();
    }
    if (read_end == INVALID_HANDLE_VALUE) return win32::last_error();
    HANDLE write_end = CreateFileW(name.c_str(), GENERIC_WRITE | FILE_READ_ATTRIBUTES, 0, nullptr, OPEN_EXISTING,
                                   overlapped, nullptr);
    if (write_end == INVALID_HANDLE_VALUE) {
        const auto ec = win32::last_error();
        CloseHandle(read_end);
        return ec;
    }
    out.read = win32::as_native(read_end);
    out.write = win32::as_native(write_end);
    return {};
}

std::error_code pipe_buffer_size(native_handle_type native, std::size_t& size) {
    // Either end names the one buffer written data waits in: the read end's inbound one.
    DWORD out_size = 0, in_size = 0;
    if (!GetNamedPipeInfo(win32::as_handle(native), nullptr, &out_size, &in_size, nullptr)) return win32::last_error();
    size = in_size;
    return {};
}

// A handle is not waited on by a reactor: the asynchronous layer looks again instead.
native_handle_type pollable_descriptor(native_handle_type) noexcept { return invalid_native_handle; }

std::size_t read(native_handle_type native, std::span<std::byte> buffer, const Deadline& deadline,
                 std::error_code& ec) {
    const HANDLE h = win32::as_handle(native);
    const auto size = static_cast<DWORD>(std::min<std::size_t>(buffer.size(), max_io_chunk));
    for (;;) {
        const auto r = win32::overlapped_io(
            h, deadline, [&](OVERLAPPED* ov) { return ReadFile(h, buffer.data(), size, nullptr, ov); });
        if (r.timed_out) ec = errc::timed_out;
        else if (r.error == ERROR_BROKEN_PIPE) ec = errc::end_of_stream;  // every writer closed
        else if (r.error) ec = win32::error_from(r.error);
        else if (r.bytes == 0 && !buffer.empty()) continue;  // a zero-length write by the peer carries nothing
        return r.bytes;
    }
}

std::size_t write(native_handle_type native, std::span<const std::byte> data, const Deadline& deadline,
                  std::error_code& ec) {
    const HANDLE h = win32::as_handle(native);
    // No time to wait (the asynchronous layer's try): pieces of a page, so
    // that what the buffer has room for goes in and is counted, where one
    // larger write would wait for the reader and be cancelled.
    const std::size_t piece = deadline.expired() ? 4096 : max_io_chunk;
    std::size_t done = 0;
    while (done < data.size()) {
        const auto chunk = static_cast<DWORD>(std::min<std::size_t>(data.size() - done, piece));
        const auto r = win32::overlapped_io(
            h, deadline, [&](OVERLAPPED* ov) { return WriteFile(h, data.data() + done, chunk, nullptr, ov); });
        done += r.bytes;
        if (r.timed_out) {
            ec = errc::timed_out;
            break;
        }
        if (r.error == ERROR_NO_DATA || r.error == ERROR_BROKEN_PIPE || r.error == ERROR_PIPE_NOT_CONNECTED) {
            // The reader has gone: ERROR_NO_DATA when this write found it gone, else under way.
            ec = r.error == ERROR_NO_DATA ? errc::pipe_closing : errc::broken_pipe;
            break;
        }
        if (r.error) {
            ec = win32::error_from(r.error);
            break;
        }
    }
    return done;
}

}  // namespace pipeslot::platform
