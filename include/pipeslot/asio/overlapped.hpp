// Windows: a named pipe's operations as overlapped calls of their own
// (ReadFile, WriteFile, ConnectNamedPipe, TransactNamedPipe) that the
// io_context's completion port completes. The channel stays in wait mode, so
// a read waits for its message and a write larger than the quota waits for
// the reader, as the blocking calls do, without a thread.
#pragma once

#include <pipeslot/asio/retry.hpp>

#if defined(ASIO_HAS_WINDOWS_OVERLAPPED_PTR) || defined(BOOST_ASIO_HAS_WINDOWS_OVERLAPPED_PTR)
#define PIPESLOT_ASIO_OVERLAPPED 1

namespace pipeslot::async::detail {

// A channel's handle bound to an executor's completion port.
struct OverlappedHandle {
    HANDLE handle = INVALID_HANDLE_VALUE;
    std::error_code (*error_of)(OverlappedCall, unsigned long) = nullptr;
    explicit operator bool() const noexcept { return error_of != nullptr; }
};

// The binding belongs to the file object, for its life, so a duplicate
// handle makes it: the stream_handle that binds closes what it holds. Empty
// if `source` has no handle, or it is bound already (one port per handle).
inline OverlappedHandle bind_to_port(const net::any_io_executor& ex, const EventSource& source) {
    if (source.overlapped == invalid_native_handle || !source.overlapped_error) return {};
    const auto handle = reinterpret_cast<HANDLE>(source.overlapped);
    HANDLE binding = nullptr;
    if (!DuplicateHandle(GetCurrentProcess(), handle, GetCurrentProcess(), &binding, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return {};
    net::windows::stream_handle binder(ex);
    std::error_code ec;
    binder.assign(binding, ec);
    if (ec) {
        CloseHandle(binding);
        return {};
    }
    return {handle, source.overlapped_error};
}

// Starts one call, `start(OVERLAPPED*)` returning its BOOL, and completes
// `handler` with (the portable code, the bytes) from the port. Its
// cancellation slot cancels this call alone (CancelIoEx on its OVERLAPPED).
template <class Handler, class Start>
void start_overlapped(const net::any_io_executor& ex, const OverlappedHandle& target, OverlappedCall call,
                      Start start, Handler handler) {
    auto slot = net::get_associated_cancellation_slot(handler);
    net::windows::overlapped_ptr ov(
        ex, adapt(std::move(handler), ex,
                  [error_of = target.error_of, call](auto& h, std::error_code ec, std::size_t bytes) {
                      auto slot = net::get_associated_cancellation_slot(h);
                      if (slot.is_connected()) slot.clear();
                      std::move(h)(ec ? error_of(call, static_cast<unsigned long>(ec.value())) : std::error_code(),
                                   bytes);
                  }));
    OVERLAPPED* const raw = ov.get();
    if (slot.is_connected())
        slot.assign([handle = target.handle, raw](net::cancellation_type) { CancelIoEx(handle, raw); });
    if (!start(raw)) {
        const DWORD error = GetLastError();
        // Pending, or finished with part of a message (a warning, which the
        // port still completes); anything else finished with no completion.
        if (error != ERROR_IO_PENDING && error != ERROR_MORE_DATA)
            return ov.complete(std::error_code(static_cast<int>(error), std::system_category()), 0);
    }
    ov.release();
}

}  // namespace pipeslot::async::detail

#endif
