// Byte streams on an Asio executor: an anonymous pipe's ends (a child's
// output read on the loop), or any ByteReader / ByteWriter (the fake's).
// Each operation takes a cancellation slot; cancel() ends them all with
// errc::cancelled.
#pragma once

#include <pipeslot/asio/retry.hpp>
#include <pipeslot/pipe.hpp>
#include <pipeslot/stream.hpp>

#include <cstddef>
#include <memory>
#include <span>

namespace pipeslot::async {

class AsyncReader : public detail::AsyncObject<std::unique_ptr<ByteReader>> {
public:
    AsyncReader(executor_type ex, std::unique_ptr<ByteReader> reader) : AsyncObject(std::move(ex), std::move(reader)) {}
    AsyncReader(executor_type ex, PipeReadEnd end)
        : AsyncReader(std::move(ex), std::make_unique<PipeReadEnd>(std::move(end))) {}

    bool is_open() const noexcept { return core_->object && core_->object->is_open(); }

    // What is there, at least one byte; 0 with errc::end_of_stream once
    // every writer has gone. void(std::error_code, std::size_t).
    template <class Token>
    auto async_read_some(std::span<std::byte> buffer, Token&& token) {
        return detail::async_retry<std::size_t>(
            executor_, core_->pending,
            [core = core_.get(), buffer](std::error_code& ec) -> std::optional<std::size_t> {
                if (!core->object) return ec = errc::invalid_argument, 0;
                const auto n = core->object->read(buffer, Timeout::none(), ec);
                if (ec == errc::timed_out) return std::nullopt;
                return n;
            },
            [core = core_.get()] { return core->object ? core->object->readable_source() : EventSource{}; },
            std::forward<Token>(token));
    }

    void close() {
        cancel();
        if (core_->object) core_->object->close();
    }
};

class AsyncWriter : public detail::AsyncObject<std::unique_ptr<ByteWriter>> {
public:
    AsyncWriter(executor_type ex, std::unique_ptr<ByteWriter> writer) : AsyncObject(std::move(ex), std::move(writer)) {}
    AsyncWriter(executor_type ex, PipeWriteEnd end)
        : AsyncWriter(std::move(ex), std::make_unique<PipeWriteEnd>(std::move(end))) {}

    bool is_open() const noexcept { return core_->object && core_->object->is_open(); }

    // Every byte, as room comes; completes with how many were written (all,
    // unless an error: errc::pipe_closing if the reader was gone before the
    // first, errc::broken_pipe after some). void(std::error_code, std::size_t).
    template <class Token>
    auto async_write(std::span<const std::byte> data, Token&& token) {
        auto done = std::make_shared<std::size_t>(0);
        return detail::async_retry<std::size_t>(
            executor_, core_->pending,
            [core = core_.get(), data, done](std::error_code& ec) -> std::optional<std::size_t> {
                if (!core->object) return ec = errc::invalid_argument, 0;
                *done += core->object->write(data.subspan(*done), Timeout::none(), ec);
                if (ec == errc::timed_out) {
                    ec.clear();
                    if (*done < data.size()) return std::nullopt;
                }
                if (ec == errc::pipe_closing && *done > 0) ec = errc::broken_pipe;
                return *done;
            },
            [core = core_.get()] { return core->object ? core->object->writable_source() : EventSource{}; },
            std::forward<Token>(token));
    }

    void close() {
        cancel();
        if (core_->object) core_->object->close();
    }
};

}  // namespace pipeslot::async
