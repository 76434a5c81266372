// Named pipes on Windows: the native calls, overlapped so that every blocking
// call has a timeout and can be cancelled (CancelIoEx).
#include "../common/access.hpp"
#include "../common/platform.hpp"
#include "../common/send_each.hpp"
#include "win.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>
#include <memory>
#include <optional>
#include <sddl.h>

namespace pipeslot::platform {

struct Channel {
    HANDLE handle = INVALID_HANDLE_VALUE;
    bool is_server = false;
    PipeType type = PipeType::byte;
    std::atomic<ReadMode> read_mode{ReadMode::byte};
    std::atomic<WaitMode> wait_mode{WaitMode::wait};
    std::mutex mode_mutex;  // SetNamedPipeHandleState sets both modes at once
    bool can_read = true, can_write = true;
    // FlushFileBuffers blocks even on an overlapped handle: cancel() ends it
    // on the threads waiting in it (CancelSynchronousIo).
    std::mutex flush_mutex;
    std::vector<HANDLE> flushing;
    std::atomic<std::uint64_t> cancels{0};
};

void ChannelDeleter::operator()(Channel* c) const noexcept {
    if (!c) return;
    if (c->handle != INVALID_HANDLE_VALUE) CloseHandle(c->handle);
    delete c;
}

namespace {

// The errors a pipe call reports when the other end has gone, the same on every backend.
std::error_code pipe_error(DWORD error) {
    switch (error) {
    case ERROR_BROKEN_PIPE: return errc::broken_pipe;
    case ERROR_NO_DATA: return errc::pipe_closing;  // a write after the peer closed its handle
    case ERROR_PIPE_NOT_CONNECTED: return errc::not_connected;
    case ERROR_PIPE_LISTENING: return errc::pipe_listening;  // no client yet
    default: return win32::error_from(error);
    }
}

std::error_code io_error(const win32::IoResult& r) {
    if (r.timed_out) return errc::timed_out;
    return pipe_error(r.error);
}

DWORD wait_for_free_instance(const Deadline& deadline, bool server_default) {
    if (server_default) return NMPWAIT_USE_DEFAULT_WAIT;
    if (deadline.is_forever()) return NMPWAIT_WAIT_FOREVER;
    const auto ms = deadline.remaining_ms(NMPWAIT_WAIT_FOREVER - 1);
    return ms == 0 ? 1 : static_cast<DWORD>(ms);  // 0 would mean the server's default
}

// \\?\pipe\NAME: the name exactly as given. The \\.\ form would be
// normalised first ('/' becomes '\', ".." and trailing dots are resolved away).
// Remote names go to the system as written: SMB carries them.
std::optional<std::wstring> native_path(const PipeName& name) {
    auto leaf = win32::to_wide(name.name());
    if (!leaf) return std::nullopt;
    if (name.is_local()) return L"\\\\?\\pipe\\" + *leaf;
    auto server = win32::to_wide(name.server());
    if (!server) return std::nullopt;
    return L"\\\\" + *server + L"\\pipe\\" + *leaf;
}

std::error_code string_sid_of_token(HANDLE token, std::string& out) {
    DWORD size = 0;
    GetTokenInformation(token, TokenUser, nullptr, 0, &size);
    auto buffer = std::make_unique<std::byte[]>(size);
    if (!GetTokenInformation(token, TokenUser, buffer.get(), size, &size)) return win32::last_error();
    wchar_t* text = nullptr;
    if (!ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(buffer.get())->User.Sid, &text))
        return win32::last_error();
    out = win32::to_utf8(text);
    LocalFree(text);
    return {};
}

// The SID string of a user given as a SID string or an account name.
std::optional<std::string> sid_of(const std::string& user) {
    if (user.rfind("S-", 0) == 0 || user.rfind("s-", 0) == 0) return user;
    const auto wide = win32::to_wide(user);
    if (!wide) return std::nullopt;
    DWORD sid_size = 0, domain_size = 0;
    SID_NAME_USE use;
    LookupAccountNameW(nullptr, wide->c_str(), nullptr, &sid_size, nullptr, &domain_size, &use);
    if (sid_size == 0) return std::nullopt;
    auto sid = std::make_unique<std::byte[]>(sid_size);
    std::wstring domain(domain_size, L'\0');
    if (!LookupAccountNameW(nullptr, wide->c_str(), sid.get(), &sid_size, domain.data(), &domain_size, &use))
        return std::nullopt;
    wchar_t* text = nullptr;
    if (!ConvertSidToStringSidW(sid.get(), &text)) return std::nullopt;
    std::string out = win32::to_utf8(text);
    LocalFree(text);
    return out;
}

}  // namespace

std::error_code server_user(const Channel& c, std::string& user);

namespace {
bool served_by(const Channel& c, const std::string& wanted) {
    const auto sid = sid_of(wanted);
    std::string actual;
    if (!sid || server_user(c, actual)) return false;
    return CompareStringOrdinal(win32::to_wide(*sid).value_or(L"").c_str(), -1,
                                win32::to_wide(actual).value_or(L"").c_str(), -1, TRUE) == CSTR_EQUAL;
}
}  // namespace

std::error_code create_instance(const PipeName& name, const ServerOptions& o, ChannelPtr& out) {
    const auto wide = native_path(name);
    if (!wide) return errc::invalid_name;
    const DWORD access = o.access == PipeAccess::inbound    ? PIPE_ACCESS_INBOUND
                         : o.access == PipeAccess::outbound ? PIPE_ACCESS_OUTBOUND
                                                            : PIPE_ACCESS_DUPLEX;
    const DWORD open_mode = access | FILE_FLAG_OVERLAPPED | (o.first_instance ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    const DWORD pipe_mode = (o.type == PipeType::message ? PIPE_TYPE_MESSAGE : PIPE_TYPE_BYTE) |
                            (o.read_mode == ReadMode::message ? PIPE_READMODE_MESSAGE : PIPE_READMODE_BYTE) |
                            (o.wait_mode == WaitMode::nowait ? PIPE_NOWAIT : PIPE_WAIT) | (o.reject_remote_clients ? PIPE_REJECT_REMOTE_CLIENTS : PIPE_ACCEPT_REMOTE_CLIENTS);
    const DWORD default_wait = o.default_wait.is_forever() ? NMPWAIT_WAIT_FOREVER
                               : o.default_wait.value().count() == 0
                                   ? 1  // 0 would mean Windows' own 50 ms
                                   : static_cast<DWORD>(std::min<long long>(o.default_wait.value().count(), NMPWAIT_WAIT_FOREVER - 1));
    const HANDLE h = CreateNamedPipeW(wide->c_str(), open_mode, pipe_mode,
                                      o.max_instances == unlimited_instances ? PIPE_UNLIMITED_INSTANCES : o.max_instances,
                                      static_cast<DWORD>(o.out_buffer_size), static_cast<DWORD>(o.in_buffer_size),
                                      default_wait, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        const DWORD e = GetLastError();
        if (e == ERROR_PIPE_BUSY) return errc::too_many_instances;
        return win32::error_from(e);
    }
    auto c = std::make_unique<Channel>();
    c->handle = h;
    c->is_server = true;
    c->type = o.type;
    c->read_mode = o.read_mode;
    c->wait_mode = o.wait_mode;
    c->can_read = o.access != PipeAccess::outbound;
    c->can_write = o.access != PipeAccess::inbound;
    out.reset(c.release());
    return {};
}

std::error_code wait_for_instance(const PipeName& name, const ClientOptions& o, const Deadline& wait) {
    const auto wide = native_path(name);
    if (!wide) return errc::invalid_name;
    if (WaitNamedPipeW(wide->c_str(), wait_for_free_instance(wait, o.use_server_default_wait))) return {};
    return win32::last_error();  // ERROR_FILE_NOT_FOUND: not_found; ERROR_SEM_TIMEOUT: timed_out
}

std::error_code open_channel(const PipeName& name, const ClientOptions& o, const Deadline& wait, ChannelPtr& out) {
    const auto wide = native_path(name);
    if (!wide) return errc::invalid_name;
    const DWORD access = (detail::reads(o.access) ? GENERIC_READ : 0) |
                         (detail::writes(o.access) ? GENERIC_WRITE : 0) | FILE_READ_ATTRIBUTES |
                         FILE_WRITE_ATTRIBUTES;  // to set the read mode
    HANDLE h;
    for (;;) {
        h = CreateFileW(wide->c_str(), access, 0, nullptr, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr);
        if (h != INVALID_HANDLE_VALUE) break;
        const DWORD e = GetLastError();
        if (e != ERROR_PIPE_BUSY) return e == ERROR_FILE_NOT_FOUND ? make_error_code(errc::not_found) : win32::error_from(e);
        if (wait.expired() && !o.use_server_default_wait) return errc::pipe_busy;
        // The documented race: a free instance may be taken again before CreateFile; so loop.
        if (!WaitNamedPipeW(wide->c_str(), wait_for_free_instance(wait, o.use_server_default_wait))) {
            const DWORD w = GetLastError();
            if (w == ERROR_FILE_NOT_FOUND) return errc::not_found;
            return errc::pipe_busy;  // ERROR_SEM_TIMEOUT
        }
    }
    auto c = std::make_unique<Channel>();
    c->handle = h;
    if (!o.server_user.empty() && !served_by(*c, o.server_user)) return errc::not_found;  // another user's pipe
    DWORD flags = 0;
    GetNamedPipeInfo(h, &flags, nullptr, nullptr, nullptr);
    c->type = (flags & PIPE_TYPE_MESSAGE) ? PipeType::message : PipeType::byte;
    const auto mode = o.read_mode.value_or(c->type == PipeType::message ? ReadMode::message : ReadMode::byte);
    if (mode == ReadMode::message && c->type == PipeType::byte) return errc::invalid_argument;
    if (mode == ReadMode::message) {
        DWORD state = PIPE_READMODE_MESSAGE;
        if (!SetNamedPipeHandleState(h, &state, nullptr, nullptr)) return win32::last_error();
    }
    c->read_mode = mode;
    c->can_read = detail::reads(o.access);
    c->can_write = detail::writes(o.access);
    out.reset(c.release());
    return {};
}

std::error_code accept(Channel& c, const Deadline& deadline) {
    const auto r = win32::overlapped_io(c.handle, deadline, [&](OVERLAPPED* ov) { return ConnectNamedPipe(c.handle, ov); });
    if (r.timed_out) return errc::timed_out;
    // Connected before we asked (ERROR_PIPE_CONNECTED), or connected and gone
    // already (ERROR_NO_DATA; its data can still be read): reported as Windows does.
    if (r.error == ERROR_NO_DATA) return errc::no_data;
    return pipe_error(r.error);
}

std::error_code disconnect(Channel& c) {
    if (!DisconnectNamedPipe(c.handle)) return pipe_error(GetLastError());
    return {};
}

std::error_code flush(Channel& c) {
    const auto ticket = c.cancels.load();
    const HANDLE self = OpenThread(THREAD_TERMINATE, FALSE, GetCurrentThreadId());
    if (!self) return win32::last_error();
    {
        std::lock_guard lock(c.flush_mutex);
        if (c.cancels != ticket) {
            CloseHandle(self);
            return errc::cancelled;
        }
        c.flushing.push_back(self);
    }
    const BOOL flushed = FlushFileBuffers(c.handle);
    const DWORD error = flushed ? 0 : GetLastError();
    {
        std::lock_guard lock(c.flush_mutex);
        c.flushing.erase(std::find(c.flushing.begin(), c.flushing.end(), self));
        CloseHandle(self);
    }
    if (flushed) return {};
    return error == ERROR_OPERATION_ABORTED ? make_error_code(errc::cancelled) : pipe_error(error);
}

std::size_t receive(Channel& c, std::span<std::byte> buffer, const Deadline& deadline, std::error_code& ec) {
    if (!c.can_read) {
        ec = errc::access_denied;
        return 0;
    }
    const auto size = static_cast<DWORD>(std::min<std::size_t>(buffer.size(), MAXDWORD));
    for (;;) {
        const auto r = win32::overlapped_io(c.handle, deadline,
                                            [&](OVERLAPPED* ov) { return ReadFile(c.handle, buffer.data(), size, nullptr, ov); });
        if (r.error == ERROR_MORE_DATA) {
            ec = errc::more_data;
            return r.bytes;
        }
        if (r.error == ERROR_NO_DATA) {  // a PIPE_NOWAIT read with nothing to read
            ec = errc::no_data;
            return 0;
        }
        if (r.timed_out || r.error) {
            ec = io_error(r);
            return r.bytes;
        }
        // Byte read mode skips zero-length messages, as the POSIX backend does.
        if (r.bytes == 0 && c.read_mode == ReadMode::byte && !buffer.empty()) continue;
        return r.bytes;
    }
}

// PIPE_NOWAIT belongs to the handle: a write on it cannot wait.
std::size_t send_waiting(Channel& c, std::span<const std::byte> data, const Deadline& deadline, std::error_code& ec) {
    if (c.wait_mode == WaitMode::nowait) {
        ec = errc::not_supported;
        return 0;
    }
    return send(c, data, deadline, ec);
}

std::size_t send(Channel& c, std::span<const std::byte> data, const Deadline& deadline, std::error_code& ec) {
    if (!c.can_write) {
        ec = errc::access_denied;
        return 0;
    }
    if (data.empty() && c.type == PipeType::byte) return 0;
    const auto r = win32::overlapped_io(c.handle, deadline, [&](OVERLAPPED* ov) {
        return WriteFile(c.handle, data.data(), static_cast<DWORD>(data.size()), nullptr, ov);
    });
    if (r.timed_out || r.error) {
        ec = io_error(r);
        return 0;
    }
    return r.bytes;
}

// A message-mode pipe takes one message per WriteFile.
std::size_t send_messages(Channel& c, std::span<const std::span<const std::byte>> messages, const Deadline& deadline,
                          std::error_code& ec) {
    return detail::send_each(
        messages, [&](std::span<const std::byte> m, std::error_code& e) { return send(c, m, deadline, e); }, ec);
}

PeekResult peek(Channel& c, std::span<std::byte> buffer, std::error_code& ec) {
    if (!c.can_read) {
        ec = errc::access_denied;
        return {};
    }
    DWORD copied = 0, total = 0, left = 0;
    if (!PeekNamedPipe(c.handle, buffer.empty() ? nullptr : buffer.data(),
                       static_cast<DWORD>(std::min<std::size_t>(buffer.size(), MAXDWORD)), &copied, &total, &left)) {
        ec = pipe_error(GetLastError());
        return {};
    }
    if (c.type == PipeType::byte) left = 0;
    return {copied, total, left};
}

std::size_t transact(Channel& c, std::span<const std::byte> request, std::span<std::byte> reply,
                     const Deadline& deadline, std::error_code& ec) {
    if (!c.can_read || !c.can_write) {
        ec = errc::access_denied;
        return 0;
    }
    const auto r = win32::overlapped_io(c.handle, deadline, [&](OVERLAPPED* ov) {
        return TransactNamedPipe(c.handle, const_cast<std::byte*>(request.data()), static_cast<DWORD>(request.size()),
                                 reply.data(), static_cast<DWORD>(std::min<std::size_t>(reply.size(), MAXDWORD)),
                                 nullptr, ov);
    });
    if (r.error == ERROR_MORE_DATA) ec = errc::more_data;
    else if (r.error == ERROR_PIPE_BUSY) ec = errc::pipe_busy;  // unread data in the pipe
    else if (r.timed_out || r.error) ec = io_error(r);
    return r.bytes;
}

namespace {
// SetNamedPipeHandleState sets the read and the wait mode together.
std::error_code set_modes_locked(Channel& c, ReadMode read, WaitMode wait) {
    DWORD state = (read == ReadMode::message ? PIPE_READMODE_MESSAGE : PIPE_READMODE_BYTE) |
                  (wait == WaitMode::nowait ? PIPE_NOWAIT : PIPE_WAIT);
    if (!SetNamedPipeHandleState(c.handle, &state, nullptr, nullptr)) return win32::last_error();
    c.read_mode = read;
    c.wait_mode = wait;
    return {};
}
}  // namespace

std::error_code set_read_mode(Channel& c, ReadMode mode) {
    if (mode == ReadMode::message && c.type == PipeType::byte) return errc::invalid_argument;
    std::lock_guard lock(c.mode_mutex);
    return set_modes_locked(c, mode, c.wait_mode);
}

std::error_code set_wait_mode(Channel& c, WaitMode mode) {
    std::lock_guard lock(c.mode_mutex);
    return set_modes_locked(c, c.read_mode, mode);
}

ChannelInfo info(const Channel& c, std::error_code& ec) {
    DWORD flags = 0, out_size = 0, in_size = 0, max = 0;
    if (!GetNamedPipeInfo(c.handle, &flags, &out_size, &in_size, &max)) {
        ec = win32::last_error();
        return {};
    }
    DWORD state = 0, current = 0;
    if (!GetNamedPipeHandleStateW(c.handle, &state, &current, nullptr, nullptr, nullptr, 0)) {
        ec = win32::last_error();
        return {};
    }
    return {c.type,   c.read_mode, max == PIPE_UNLIMITED_INSTANCES ? unlimited_instances : static_cast<unsigned>(max),
            in_size,  out_size,    c.is_server,
            current,  (state & PIPE_NOWAIT) ? WaitMode::nowait : WaitMode::wait};
}

void cancel(Channel& c) noexcept {
    CancelIoEx(c.handle, nullptr);
    std::lock_guard lock(c.flush_mutex);
    ++c.cancels;
    for (const HANDLE thread : c.flushing) CancelSynchronousIo(thread);
}

std::error_code client_process_id(const Channel& c, std::int64_t& pid) {
    ULONG id = 0;
    if (!GetNamedPipeClientProcessId(c.handle, &id)) return pipe_error(GetLastError());
    pid = id;
    return {};
}

std::error_code client_user(const Channel& c, std::string& user) {
    if (!c.is_server) return errc::invalid_argument;
    if (!ImpersonateNamedPipeClient(c.handle)) return pipe_error(GetLastError());
    HANDLE token = nullptr;
    const BOOL opened = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token);
    const auto open_error = opened ? std::error_code() : win32::last_error();
    RevertToSelf();
    if (!opened) return open_error;
    const auto ec = string_sid_of_token(token, user);
    CloseHandle(token);
    return ec;
}

// Wine's kernel32 has no GetNamedPipeClientComputerNameW: its stub aborts
// the process when called. Under Wine the call is not_supported instead.
bool has_client_computer_name() {
    static const bool has = [] {
        const HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
        return !(ntdll && GetProcAddress(ntdll, "wine_get_version"));
    }();
    return has;
}

namespace {
// What the blocking calls above report for the same Windows result.
std::error_code overlapped_error(OverlappedCall call, unsigned long error) {
    if (error == ERROR_NO_DATA && (call == OverlappedCall::read || call == OverlappedCall::connect))
        return errc::no_data;  // a connect: the client came and went already
    return pipe_error(error);
}
}  // namespace

// No readiness on Windows: the loop does the overlapped calls itself.
EventSource event_source(const Channel& c, ChannelEvent) noexcept {
    EventSource source;
    source.overlapped = win32::as_native(c.handle);
    source.overlapped_error = &overlapped_error;
    return source;
}

std::error_code client_computer_name(const Channel& c, std::string& name) {
    if (!has_client_computer_name()) return errc::not_supported;
    wchar_t buffer[256] = {};  // MAX_COMPUTERNAME_LENGTH is 15; a DNS name or an address fits too
    if (!GetNamedPipeClientComputerNameW(c.handle, buffer, sizeof buffer)) return pipe_error(GetLastError());
    name = win32::to_utf8(buffer);
    return {};
}

std::error_code server_process_id(const Channel& c, std::int64_t& pid) {
    ULONG id = 0;
    if (!GetNamedPipeServerProcessId(c.handle, &id)) return pipe_error(GetLastError());
    pid = id;
    return {};
}

std::error_code server_user(const Channel& c, std::string& user) {
    if (c.is_server) {
        user = current_user();
        return {};
    }
    std::int64_t pid = 0;
    if (auto ec = server_process_id(c, pid)) return ec;
    const HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid));
    if (!process) return win32::last_error();
    HANDLE token = nullptr;
    std::error_code ec;
    if (OpenProcessToken(process, TOKEN_QUERY, &token)) {
        ec = string_sid_of_token(token, user);
        CloseHandle(token);
    } else {
        ec = win32::last_error();
    }
    CloseHandle(process);
    return ec;
}

std::string current_user() {
    HANDLE token = nullptr;
    std::string user;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        (void)string_sid_of_token(token, user);
        CloseHandle(token);
    }
    return user;
}

// No accept group: PipeServer gives each instance a thread waiting in
// ConnectNamedPipe, as Windows' own servers do; the group's functions are
// never reached.
struct AcceptGroup {};
void AcceptGroupDeleter::operator()(AcceptGroup* g) const noexcept { delete g; }
AcceptGroupPtr make_accept_group(std::span<Channel* const>, std::error_code& ec) {
    ec.clear();
    return nullptr;
}
std::size_t wait_any(AcceptGroup&, std::error_code& ec) {
    ec = errc::not_supported;
    return 0;
}
void rearm(AcceptGroup&, std::size_t) noexcept {}
void stop(AcceptGroup&) noexcept {}

}  // namespace pipeslot::platform
