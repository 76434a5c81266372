#include "platform.hpp"
#include "throw.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/pipe.hpp>

#include <utility>

namespace pipeslot {

PipeEnd::PipeEnd(PipeEnd&& other) noexcept : handle_(other.release()) {}

PipeEnd& PipeEnd::operator=(PipeEnd&& other) noexcept {
    if (this != &other) {
        close_handle();
        handle_ = other.release();
    }
    return *this;
}

PipeEnd::~PipeEnd() { close_handle(); }

native_handle_type PipeEnd::release() noexcept { return std::exchange(handle_, invalid_native_handle); }

void PipeEnd::close_handle() noexcept {
    if (handle_ != invalid_native_handle) platform::close_handle(release());
}

void PipeEnd::set_inheritable(bool inheritable, std::error_code& ec) {
    ec = handle_ == invalid_native_handle ? make_error_code(errc::invalid_argument)
                                          : platform::set_inheritable(handle_, inheritable);
}

std::size_t PipeEnd::buffer_size(std::error_code& ec) const {
    std::size_t size = 0;
    ec = handle_ == invalid_native_handle ? make_error_code(errc::invalid_argument)
                                          : platform::pipe_buffer_size(handle_, size);
    return size;
}

std::size_t PipeReadEnd::read(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) {
    if (handle_ == invalid_native_handle || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    ec.clear();
    return platform::read(handle_, buffer, detail::Deadline(timeout), ec);  // empty: waits for data, takes none
}

std::size_t PipeWriteEnd::write(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) {
    if (handle_ == invalid_native_handle || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return 0;
    }
    ec.clear();
    if (data.empty()) return 0;  // nothing to send; never a zero-length write on the wire
    return platform::write(handle_, data, detail::Deadline(timeout), ec);
}

EventSource PipeReadEnd::readable_source() const { return {platform::pollable_descriptor(handle_), false, {}}; }
EventSource PipeWriteEnd::writable_source() const { return {platform::pollable_descriptor(handle_), true, {}}; }

Pipe Pipe::create(const PipeOptions& options, std::error_code& ec) {
    if (options.buffer_size > max_pipe_buffer_size) {
        ec = errc::invalid_argument;
        return {};
    }
    platform::PipeHandles handles;
    ec = platform::create_pipe(options.buffer_size, /*for_children=*/false, handles);
    if (ec) return {};
    return Pipe{PipeReadEnd(handles.read), PipeWriteEnd(handles.write)};
}

Pipe Pipe::create(const PipeOptions& options) {
    return detail::or_throw("Pipe::create", [&](std::error_code& ec) { return create(options, ec); });
}

}  // namespace pipeslot
