// Mailslots on Windows: the native calls. A mailslot handle cannot be waited
// on, and Wine reads it synchronously even with an OVERLAPPED (so CancelIoEx
// cannot reach the read): the kernel's read timeout is kept at 0, and receive
// waits itself, checking every few milliseconds, on an event cancel() sets.
#include "../common/platform.hpp"
#include "win.hpp"

#include <pipeslot/error.hpp>

#include <atomic>
#include <mutex>

namespace pipeslot::platform {

struct MailslotReader {
    HANDLE handle = INVALID_HANDLE_VALUE;
    HANDLE cancel_event = nullptr;
    std::atomic<std::uint64_t> generation{0};
    std::mutex mutex;
    Timeout read_timeout = Timeout::forever();
};

struct MailslotWriter {
    HANDLE handle = INVALID_HANDLE_VALUE;
    bool local = false;
};

void MailslotReaderDeleter::operator()(MailslotReader* m) const noexcept {
    if (!m) return;
    if (m->handle != INVALID_HANDLE_VALUE) CloseHandle(m->handle);
    if (m->cancel_event) CloseHandle(m->cancel_event);
    delete m;
}

void MailslotWriterDeleter::operator()(MailslotWriter* w) const noexcept {
    if (!w) return;
    if (w->handle != INVALID_HANDLE_VALUE) CloseHandle(w->handle);
    delete w;
}

std::error_code create_mailslot(const MailslotName& name, const MailslotOptions& options, MailslotReaderPtr& out) {
    const auto path = win32::to_wide(name.str());
    if (!path) return errc::invalid_name;
    const HANDLE h = CreateMailslotW(path->c_str(), static_cast<DWORD>(options.max_message_size), 0, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        const DWORD e = GetLastError();
        return e == ERROR_ALREADY_EXISTS ? make_error_code(errc::name_in_use) : win32::error_from(e);
    }
    auto m = MailslotReaderPtr(new MailslotReader);
    m->handle = h;
    m->read_timeout = options.read_timeout;
    m->cancel_event = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    if (!m->cancel_event) return win32::last_error();
    out = std::move(m);
    return {};
}

std::size_t receive(MailslotReader& m, std::span<std::byte> buffer, std::error_code& ec) {
    const auto ticket = m.generation.load();
    const Deadline deadline = [&] {
        std::lock_guard lock(m.mutex);
        return Deadline(m.read_timeout);
    }();
    DWORD pause_ms = 1;
    for (;;) {
        DWORD next = MAILSLOT_NO_MESSAGE;
        if (!GetMailslotInfo(m.handle, nullptr, &next, nullptr, nullptr)) {
            ec = win32::last_error();
            return 0;
        }
        if (next != MAILSLOT_NO_MESSAGE) {
            // Checked before reading: Wine loses a message read into too small a buffer.
            if (next > buffer.size()) {
                ec = errc::buffer_too_small;
                return 0;
            }
            DWORD n = 0;
            if (ReadFile(m.handle, buffer.data(), static_cast<DWORD>(buffer.size()), &n, nullptr)) return n;
            const DWORD e = GetLastError();
            if (e == ERROR_INSUFFICIENT_BUFFER) {
                ec = errc::buffer_too_small;
                return 0;
            }
            // ERROR_SEM_TIMEOUT, or Wine's ERROR_BROKEN_PIPE: gone meanwhile, wait on.
            if (e != ERROR_SEM_TIMEOUT && e != ERROR_BROKEN_PIPE) {
                ec = win32::error_from(e);
                return 0;
            }
        }
        if (deadline.expired()) {
            ec = errc::timed_out;
            return 0;
        }
        const DWORD wait = std::min<DWORD>(pause_ms, win32::wait_ms(deadline));
        if (WaitForSingleObject(m.cancel_event, wait) == WAIT_OBJECT_0) {
            if (m.generation.load() != ticket) {
                ec = errc::cancelled;
                return 0;
            }
            ResetEvent(m.cancel_event);  // an older cancel, meant for calls already gone
        }
        pause_ms = std::min<DWORD>(pause_ms * 2, 16);
    }
}

MailslotInfo info(MailslotReader& m, std::error_code& ec) {
    ec.clear();
    DWORD max = 0, next = 0, count = 0;
    if (!GetMailslotInfo(m.handle, &max, &next, &count, nullptr)) {
        ec = win32::last_error();
        return {};
    }
    MailslotInfo i;
    i.max_message_size = max;
    if (next != MAILSLOT_NO_MESSAGE) i.next_message_size = next;
    i.message_count = count;
    std::lock_guard lock(m.mutex);
    i.read_timeout = m.read_timeout;  // the kernel's stays 0: see the top of this file
    return i;
}

std::error_code set_read_timeout(MailslotReader& m, Timeout timeout) {
    std::lock_guard lock(m.mutex);
    m.read_timeout = timeout;
    return {};
}

void cancel(MailslotReader& m) noexcept {
    m.generation.fetch_add(1);
    SetEvent(m.cancel_event);
}

std::error_code open_broadcaster(const MailslotName& name, MailslotWriterPtr& out) {
    const auto path = win32::to_wide(name.str());
    if (!path) return errc::invalid_name;
    // Shared for writing too: any number of writers may hold the mailslot at once.
    const HANDLE h = CreateFileW(path->c_str(), GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                                 OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        const DWORD e = GetLastError();
        return (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) ? make_error_code(errc::not_found)
                                                                       : win32::error_from(e);
    }
    out.reset(new MailslotWriter{h, name.is_local()});
    return {};
}

std::error_code send(MailslotWriter& w, std::span<const std::byte> message, const Deadline&) {
    if (!w.local && message.size() > max_network_mailslot_message) return errc::message_too_large;
    DWORD written = 0;
    if (!WriteFile(w.handle, message.data(), static_cast<DWORD>(message.size()), &written, nullptr)) {
        const DWORD e = GetLastError();
        // Over the reader's maximum (Windows reports the parameter as wrong).
        if (e == ERROR_INVALID_PARAMETER || e == ERROR_INSUFFICIENT_BUFFER) return errc::message_too_large;
        return win32::error_from(e);
    }
    return {};
}

}  // namespace pipeslot::platform
