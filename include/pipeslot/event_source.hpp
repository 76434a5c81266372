// What an event loop needs to run a channel's operations (pipeslot/asio/).
// On POSIX and the fake, the layer keeps the channel in WaitMode::nowait,
// tries each operation, and when it finds nothing to do waits on this. On
// Windows it starts the operation itself, overlapped, on its completion port.
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/handle.hpp>

#include <functional>
#include <system_error>

namespace pipeslot {

enum class ChannelEvent { readable, client_arrived };

// The overlapped calls an event loop makes on a Windows handle itself.
enum class OverlappedCall { read, write, connect, transact };

struct EventSource {
    // Readable (POLLIN) when the operation may go on: POSIX, the native backend.
    native_handle_type descriptor = invalid_native_handle;
    bool writable = false;  // the descriptor is to become writable (POLLOUT) instead
    // Else, if set: registers a call made once, from any thread, after the
    // channel's state changed (the fake). It may come when nothing is ready.
    std::function<void(std::function<void()>)> watch;
    // Windows: the overlapped handle the loop makes ReadFile, WriteFile,
    // ConnectNamedPipe and TransactNamedPipe calls on, in wait mode, and the
    // portable code of what one of them reports (GetLastError() or the
    // completion's), the same as the blocking call would give.
    native_handle_type overlapped = invalid_native_handle;
    std::error_code (*overlapped_error)(OverlappedCall call, unsigned long windows_error) = nullptr;
    // POSIX, if set: registers a call the channel makes just before it closes
    // `descriptor` (on the thread that closes it; a later one replaces it),
    // so a loop may keep the descriptor registered from one wait to the next
    // and let it go while the number is still the channel's.
    std::function<void(std::function<void()>)> notify_before_close = nullptr;
};

}  // namespace pipeslot
