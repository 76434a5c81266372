// Mailslots, broadcasters and anonymous pipes on the loop (pipeslot/asio/):
// what Windows' ReadFile/WriteFile on them report, asynchronously.
#include "async_support.hpp"

#include <pipeslot/asio/mailslot.hpp>
#include <pipeslot/asio/pipe.hpp>
#include <pipeslot/process.hpp>

#include <gtest/gtest.h>

#include <cstring>

namespace pipeslot::test {
namespace {

using async::AsyncBroadcaster;
using async::AsyncMailslot;
using async::AsyncReader;
using async::AsyncWriter;

TEST(AsyncMailslotConformance, AReceiveWaitsForTheNextMessage) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_mailslot_name("async-receive");
        AsyncMailslot slot(ex, create_mailslot(name));
        AsyncBroadcaster broadcaster(ex, open_broadcaster(name));
        std::vector<std::byte> got;
        bool done = false;
        slot.async_receive_message([&](std::error_code ec, std::vector<std::byte> message) {
            EXPECT_FALSE(ec) << ec.message();
            got = std::move(message);
            done = true;
        });
        asio::steady_timer later(ex, 20ms);
        co_await later.async_wait(asio::use_awaitable);
        EXPECT_FALSE(done);  // nothing sent yet
        auto [send_ec] = co_await broadcaster.async_send(bytes_of("to the slot"), no_throw);
        EXPECT_FALSE(send_ec) << send_ec.message();
        co_await wait_until(ex, [&] { return done; }, 2000ms);
        EXPECT_TRUE(done);
        EXPECT_EQ(text_of(got), "to the slot");
    });
}

TEST(AsyncMailslotConformance, AMessageLargerThanTheBufferIsBufferTooSmallAndStays) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_mailslot_name("async-small-buffer");
        AsyncMailslot slot(ex, create_mailslot(name));
        AsyncBroadcaster broadcaster(ex, open_broadcaster(name));
        co_await broadcaster.async_send(bytes_of("a message of 26 bytes long"), asio::use_awaitable);
        co_await broadcaster.async_send(bytes_of("next"), asio::use_awaitable);
        std::byte small[8];
        auto [ec, n] = co_await slot.async_receive(small, no_throw);
        EXPECT_EQ(ec, errc::buffer_too_small);  // ERROR_INSUFFICIENT_BUFFER
        EXPECT_EQ(n, 0u);
        auto [whole_ec, whole] = co_await slot.async_receive_message(no_throw);
        EXPECT_FALSE(whole_ec) << whole_ec.message();
        EXPECT_EQ(text_of(whole), "a message of 26 bytes long");
        auto [next_ec, next_n] = co_await slot.async_receive(small, no_throw);
        EXPECT_FALSE(next_ec) << next_ec.message();
        EXPECT_EQ(text_of(std::span<const std::byte>(small, next_n)), "next");
    });
}

TEST(AsyncMailslotConformance, CancellingAReceiveEndsItAlone) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_mailslot_name("async-cancel");
        AsyncMailslot slot(ex, create_mailslot(name));
        asio::cancellation_signal signal;
        std::error_code got;
        bool done = false;
        slot.async_receive_message(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::vector<std::byte>) {
            got = ec;
            done = true;
        }));
        asio::steady_timer later(ex, 10ms);
        co_await later.async_wait(asio::use_awaitable);
        signal.emit(asio::cancellation_type::terminal);
        co_await wait_until(ex, [&] { return done; }, 2000ms);
        EXPECT_EQ(got, errc::cancelled);
        // The slot goes on: a message sent now is received.
        AsyncBroadcaster broadcaster(ex, open_broadcaster(name));
        co_await broadcaster.async_send(bytes_of("after"), asio::use_awaitable);
        auto message = co_await slot.async_receive_message(asio::use_awaitable);
        EXPECT_EQ(text_of(message), "after");
    });
}

// Writes `data` and reads it back on the same loop: more than the pipe's buffer holds.
asio::awaitable<void> write_and_read_through(asio::any_io_executor ex, AsyncReader& reader, AsyncWriter& writer,
                                             std::size_t size) {
    const auto data = pattern_bytes(size);
    std::size_t written = 0;
    std::error_code write_ec;
    bool write_done = false;
    writer.async_write(data, [&](std::error_code ec, std::size_t n) {
        write_ec = ec;
        written = n;
        write_done = true;
        writer.close();  // the reader sees the end
    });
    std::vector<std::byte> got;
    for (;;) {
        std::byte buffer[16384];
        auto [ec, n] = co_await reader.async_read_some(buffer, no_throw);
        got.insert(got.end(), buffer, buffer + n);
        if (ec) {
            EXPECT_EQ(ec, errc::end_of_stream);
            break;
        }
    }
    EXPECT_TRUE(write_done);
    EXPECT_FALSE(write_ec) << write_ec.message();
    EXPECT_EQ(written, size);
    EXPECT_EQ(got, data);
    (void)ex;
}

TEST(AsyncPipeConformance, BytesGoThroughInOrderAndTheEndIsEndOfStream) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pipe = create_pipe();
        AsyncReader reader(ex, std::move(pipe.read_end));
        AsyncWriter writer(ex, std::move(pipe.write_end));
        co_await write_and_read_through(ex, reader, writer, 1 << 20);
    });
}

TEST(AsyncPipeConformance, AWriteWithNoReaderIsPipeClosing) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto pipe = create_pipe();
        pipe.read_end->close();
        AsyncWriter writer(ex, std::move(pipe.write_end));
        auto [ec, n] = co_await writer.async_write(bytes_of("nobody"), no_throw);
        EXPECT_EQ(ec, errc::pipe_closing);  // ERROR_NO_DATA
        EXPECT_EQ(n, 0u);
    });
}

TEST(AsyncPipeConformance, AChildsOutputIsReadOnTheLoop) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system's");
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto out = Pipe::create();
        auto command = child("gen", {"200000"});
        command.std_out = Stdio::from(std::move(out.write_end));
        auto process = Process::spawn(std::move(command));
        AsyncReader reader(ex, std::move(out.read_end));
        std::vector<std::byte> got;
        for (;;) {
            std::byte buffer[8192];
            auto [ec, n] = co_await reader.async_read_some(buffer, no_throw);
            got.insert(got.end(), buffer, buffer + n);
            if (ec) {
                EXPECT_EQ(ec, errc::end_of_stream);
                break;
            }
        }
        EXPECT_EQ(process.wait(), 0);
        EXPECT_EQ(got, pattern_bytes(200000));
    });
}

}  // namespace
}  // namespace pipeslot::test
