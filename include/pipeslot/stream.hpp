// The byte-stream interfaces that application code can depend on, so that a
// test can hand it a mock or a fake instead of a real pipe end.
#pragma once

#include <pipeslot/event_source.hpp>
#include <pipeslot/export.hpp>
#include <pipeslot/timeout.hpp>

#include <cstddef>
#include <span>
#include <system_error>

namespace pipeslot {

class PIPESLOT_API ByteReader {
public:
    virtual ~ByteReader() = default;

    // Blocks until at least one byte is there, then returns what is there, up
    // to buffer.size(). Once every writer has gone and the buffer is drained:
    // 0 with errc::end_of_stream. An empty buffer is errc::invalid_argument.
    virtual std::size_t read(std::span<std::byte> buffer, Timeout timeout,
                             std::error_code& ec) = 0;
    std::size_t read(std::span<std::byte> buffer, Timeout timeout = Timeout::forever());

    virtual void close() noexcept = 0;
    virtual bool is_open() const noexcept = 0;
    // What an event loop waits on before it reads again (pipeslot/asio/);
    // none: the loop looks again a little later.
    virtual EventSource readable_source() const { return {}; }
};

class PIPESLOT_API ByteWriter {
public:
    virtual ~ByteWriter() = default;

    // Writes every byte before returning, unless the timeout expires or the
    // reader has gone (errc::broken_pipe); returns how many bytes were written.
    virtual std::size_t write(std::span<const std::byte> data, Timeout timeout,
                              std::error_code& ec) = 0;
    std::size_t write(std::span<const std::byte> data, Timeout timeout = Timeout::forever());

    virtual void close() noexcept = 0;
    virtual bool is_open() const noexcept = 0;
    // What an event loop waits on before it writes again (pipeslot/asio/).
    virtual EventSource writable_source() const { return {}; }
};

}  // namespace pipeslot
