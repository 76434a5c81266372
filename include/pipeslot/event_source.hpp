// What an event loop waits on before it tries a channel's operation again
// (pipeslot/asio/): the layer keeps the channel in WaitMode::nowait, tries
// each operation, and when it finds nothing to do waits on this.
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/handle.hpp>

#include <functional>

namespace pipeslot {

enum class ChannelEvent { readable, client_arrived };

struct EventSource {
    // Readable (POLLIN) when the operation may go on: POSIX, the native backend.
    native_handle_type descriptor = invalid_native_handle;
    bool writable = false;  // the descriptor is to become writable (POLLOUT) instead
    // Else, if set: registers a call made once, from any thread, after the
    // channel's state changed (the fake). It may come when nothing is ready.
    std::function<void(std::function<void()>)> watch;
};

}  // namespace pipeslot
