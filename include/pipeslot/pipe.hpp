// Pipe: an anonymous, half-duplex byte stream, typically used to redirect a
// child process's standard input or output (see process.hpp).
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/handle.hpp>
#include <pipeslot/stream.hpp>

#include <cstddef>
#include <system_error>

namespace pipeslot {

inline constexpr std::size_t max_pipe_buffer_size = std::size_t{1} << 30;

struct PipeOptions {
    // A hint for the pipe's buffer in bytes; 0 keeps the system default. The
    // system may round it up, or cap it at its own limit; above
    // max_pipe_buffer_size it is errc::invalid_argument.
    std::size_t buffer_size = 0;
};

// An owned pipe end. Not inherited by child processes unless set_inheritable
// is called; even then, a child spawned by pipeslot receives only the ends
// given as its stdin, stdout or stderr.
class PIPESLOT_API PipeEnd {
public:
    PipeEnd() noexcept = default;
    explicit PipeEnd(native_handle_type adopted) noexcept : handle_(adopted) {}
    PipeEnd(PipeEnd&& other) noexcept;
    PipeEnd& operator=(PipeEnd&& other) noexcept;
    ~PipeEnd();

    native_handle_type native_handle() const noexcept { return handle_; }
    native_handle_type release() noexcept;
    void set_inheritable(bool inheritable, std::error_code& ec);
    // The pipe's buffer in bytes, as the system sized it (GetNamedPipeInfo;
    // F_GETPIPE_SZ): what a writer may put in it before a reader takes some.
    std::size_t buffer_size(std::error_code& ec) const;

protected:
    void close_handle() noexcept;
    native_handle_type handle_ = invalid_native_handle;
};

class PIPESLOT_API PipeReadEnd final : public PipeEnd, public ByteReader {
public:
    using PipeEnd::PipeEnd;
    using ByteReader::read;
    std::size_t read(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) override;
    void close() noexcept override { close_handle(); }
    bool is_open() const noexcept override { return handle_ != invalid_native_handle; }
    EventSource readable_source() const override;
};

class PIPESLOT_API PipeWriteEnd final : public PipeEnd, public ByteWriter {
public:
    using PipeEnd::PipeEnd;
    using ByteWriter::write;
    std::size_t write(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) override;
    void close() noexcept override { close_handle(); }
    bool is_open() const noexcept override { return handle_ != invalid_native_handle; }
    EventSource writable_source() const override;
};

struct PIPESLOT_API Pipe {
    PipeReadEnd read_end;
    PipeWriteEnd write_end;

    static Pipe create(const PipeOptions& options, std::error_code& ec);
    static Pipe create(const PipeOptions& options = {});  // throws std::system_error
};

}  // namespace pipeslot
