// The asynchronous layer's conformance core (pipeslot/asio/), against the
// public API only: it runs on the native backend and on the fake (--fake),
// and asserts what Windows' overlapped named-pipe calls report.
#include "async_support.hpp"

#include <gtest/gtest.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>

#include <cstdint>
#include <future>
#include <thread>

#ifdef _WIN32
#include <windows.h>
#else
#include <sys/resource.h>
#endif

namespace pipeslot::test {
namespace {

TEST(AsyncConformance, MessagesKeepTheirBoundariesBothWays) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-messages");
        const auto first = bytes_of("first"), second = bytes_of("second message");
        co_await client.async_send(first, asio::use_awaitable);
        co_await client.async_send(second, asio::use_awaitable);
        std::byte buffer[64];
        auto n = co_await server.async_receive(buffer, asio::use_awaitable);
        EXPECT_EQ(text_of(std::span<const std::byte>(buffer, n)), "first");
        n = co_await server.async_receive(buffer, asio::use_awaitable);
        EXPECT_EQ(text_of(std::span<const std::byte>(buffer, n)), "second message");
        co_await server.async_send(bytes_of("reply"), asio::use_awaitable);
        const auto reply = co_await client.async_receive_message(asio::use_awaitable);
        EXPECT_EQ(text_of(reply), "reply");
    });
}

TEST(AsyncConformance, AReceiveWaitsForTheMessage) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-wait");
        std::byte buffer[16];
        std::size_t got = 0;
        bool done = false;
        server.async_receive(buffer, [&](std::error_code ec, std::size_t n) {
            EXPECT_FALSE(ec) << ec.message();
            got = n;
            done = true;
        });
        asio::steady_timer later(ex, 20ms);
        co_await later.async_wait(asio::use_awaitable);
        EXPECT_FALSE(done);  // nothing was sent yet
        co_await client.async_send(bytes_of("late"), asio::use_awaitable);
        while (!done) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_EQ(text_of(std::span<const std::byte>(buffer, got)), "late");
    });
}

TEST(AsyncConformance, APartOfAMessageIsMoreData) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-more-data");
        co_await client.async_send(bytes_of("0123456789"), asio::use_awaitable);
        std::byte part[4];
        auto [ec, n] = co_await server.async_receive(part, no_throw);
        EXPECT_EQ(ec, errc::more_data);  // Windows: ERROR_MORE_DATA, with the bytes
        EXPECT_EQ(text_of(std::span<const std::byte>(part, n)), "0123");
        std::tie(ec, n) = co_await server.async_receive(part, no_throw);
        EXPECT_EQ(ec, errc::more_data);
        EXPECT_EQ(text_of(std::span<const std::byte>(part, n)), "4567");
        std::tie(ec, n) = co_await server.async_receive(part, no_throw);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(text_of(std::span<const std::byte>(part, n)), "89");
    });
}

TEST(AsyncConformance, ByteReadModeReadsAcrossMessages) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        ServerOptions options;
        options.type = PipeType::byte;
        options.read_mode = ReadMode::byte;
        auto [server, client] = co_await connect(ex, "async-bytes", options);
        co_await client.async_send(bytes_of("ab"), asio::use_awaitable);
        co_await client.async_send(bytes_of("cd"), asio::use_awaitable);
        // Both sends are in once the peek sees them; one receive then takes all.
        std::error_code ec;
        for (int i = 0; i < 1000 && server.channel().peek({}, ec).total_available < 4; ++i)
            co_await asio::steady_timer(ex, 1ms).async_wait(asio::use_awaitable);
        std::byte buffer[16];
        const auto n = co_await server.async_receive(buffer, asio::use_awaitable);
        EXPECT_EQ(text_of(std::span<const std::byte>(buffer, n)), "abcd");
    });
}

TEST(AsyncConformance, ABatchArrivesAsSeparateMessages) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-batch");
        const auto a = bytes_of("one"), b = bytes_of("two"), c = bytes_of("three");
        const std::span<const std::byte> batch[] = {a, b, c};
        const auto sent = co_await client.async_send_messages(batch, asio::use_awaitable);
        EXPECT_EQ(sent, 3u);
        for (const char* expected : {"one", "two", "three"})
            EXPECT_EQ(text_of(co_await server.async_receive_message(asio::use_awaitable)), expected);
    });
}

TEST(AsyncConformance, TransactSendsAndTakesTheReply) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-transact");
        std::byte reply[32];
        std::size_t got = 0;
        std::error_code transact_ec = make_error_code(errc::timed_out);
        client.async_transact(bytes_of("question"), reply, [&](std::error_code ec, std::size_t n) {
            transact_ec = ec;
            got = n;
        });
        const auto request = co_await server.async_receive_message(asio::use_awaitable);
        EXPECT_EQ(text_of(request), "question");
        co_await server.async_send(bytes_of("answer"), asio::use_awaitable);
        while (transact_ec == errc::timed_out) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_FALSE(transact_ec) << transact_ec.message();
        EXPECT_EQ(text_of(std::span<const std::byte>(reply, got)), "answer");
    });
}

TEST(AsyncConformance, TransactWithUnreadDataIsPipeBusy) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-transact-busy");
        co_await server.async_send(bytes_of("unread"), asio::use_awaitable);
        std::error_code ec;
        for (int i = 0; i < 1000 && client.channel().peek({}, ec).total_available == 0; ++i)
            co_await asio::steady_timer(ex, 1ms).async_wait(asio::use_awaitable);
        std::byte reply[8];
        auto [transact_ec, n] = co_await client.async_transact(bytes_of("q"), reply, no_throw);
        EXPECT_EQ(transact_ec, errc::pipe_busy);  // ERROR_PIPE_BUSY
        EXPECT_EQ(n, 0u);
    });
}

TEST(AsyncConformance, CancellingOneReceiveLeavesTheSendAndTheChannel) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-cancel-one");
        asio::cancellation_signal stop_receive;
        std::byte buffer[16];
        std::error_code receive_ec;
        bool received = false;
        server.async_receive(buffer, asio::bind_cancellation_slot(stop_receive.slot(), [&](std::error_code ec, std::size_t) {
                                 receive_ec = ec;
                                 received = true;
                             }));
        co_await asio::post(ex, asio::use_awaitable);
        stop_receive.emit(asio::cancellation_type::terminal);
        // The server's send, pending or not, is not touched.
        co_await server.async_send(bytes_of("still here"), asio::use_awaitable);
        while (!received) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_EQ(receive_ec, errc::cancelled);
        EXPECT_EQ(text_of(co_await client.async_receive_message(asio::use_awaitable)), "still here");
        // The server end still receives what comes next.
        co_await client.async_send(bytes_of("next"), asio::use_awaitable);
        const auto n = co_await server.async_receive(buffer, asio::use_awaitable);
        EXPECT_EQ(text_of(std::span<const std::byte>(buffer, n)), "next");
    });
}

TEST(AsyncConformance, CancelEndsEveryPendingOperation) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-cancel-all");
        std::byte a[8], b[8];
        int ended = 0;
        std::error_code first, second;
        server.async_receive(a, [&](std::error_code ec, std::size_t) { first = ec, ++ended; });
        server.async_receive(b, [&](std::error_code ec, std::size_t) { second = ec, ++ended; });
        co_await asio::post(ex, asio::use_awaitable);
        server.cancel();
        while (ended < 2) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_EQ(first, errc::cancelled);
        EXPECT_EQ(second, errc::cancelled);
    });
}

TEST(AsyncConformance, ATimeoutComposesWithATimer) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-timeout");
        std::byte buffer[8];
        asio::steady_timer timer(ex, 30ms);
        auto [order, receive_ec, n, timer_ec] =
            co_await asio::experimental::make_parallel_group(
                server.async_receive(buffer, asio::experimental::deferred), timer.async_wait(asio::experimental::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        EXPECT_EQ(order[0], 1u);  // the timer first
        EXPECT_EQ(receive_ec, errc::cancelled);
        EXPECT_EQ(n, 0u);
        EXPECT_FALSE(timer_ec);
    });
}

TEST(AsyncConformance, AClosedPeerIsBrokenPipe) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-broken");
        std::byte buffer[8];
        std::error_code receive_ec;
        bool done = false;
        server.async_receive(buffer, [&](std::error_code ec, std::size_t) { receive_ec = ec, done = true; });
        co_await asio::post(ex, asio::use_awaitable);
        client.close();
        while (!done) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_EQ(receive_ec, errc::broken_pipe);  // ERROR_BROKEN_PIPE
    });
}

TEST(AsyncConformance, AnAcceptWaitsForItsClient) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-accept");
        AsyncInstance instance(ex, create_instance(name));
        std::error_code accept_ec = make_error_code(errc::timed_out);
        instance.async_accept([&](std::error_code ec) { accept_ec = ec; });
        co_await asio::steady_timer(ex, 20ms).async_wait(asio::use_awaitable);
        EXPECT_EQ(accept_ec, errc::timed_out);  // still waiting: no client yet
        auto [open_ec, client] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_FALSE(open_ec) << open_ec.message();
        while (accept_ec == errc::timed_out) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_FALSE(accept_ec) << accept_ec.message();  // it came during the wait
    });
}

TEST(AsyncConformance, ABusyPipeIsPipeBusyOrWaitedFor) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        ServerOptions one;
        one.max_instances = 1;
        const auto name = unique_pipe_name("async-busy");
        AsyncInstance instance(ex, create_instance(name, one));
        auto [first_ec, first] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_FALSE(first_ec) << first_ec.message();
        if (first_ec) co_return;
        auto [busy_ec, busy] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_EQ(busy_ec, errc::pipe_busy);  // ERROR_PIPE_BUSY, without waiting
        EXPECT_FALSE(busy.is_open());

        ClientOptions patient;
        patient.wait = std::chrono::seconds(20);
        std::error_code waited_ec = make_error_code(errc::timed_out);
        AsyncChannel waited(ex, MessageChannel());
        async::async_open(ex, ipc(), name, patient, [&](std::error_code ec, AsyncChannel c) {
            waited_ec = ec;
            waited = std::move(c);
        });
        co_await asio::steady_timer(ex, 20ms).async_wait(asio::use_awaitable);
        EXPECT_EQ(waited_ec, errc::timed_out);  // still waiting
        // The instance frees up: disconnect the first client and listen again.
        std::error_code ec;
        instance.channel().disconnect(ec);
        EXPECT_FALSE(ec) << ec.message();
        auto [accept_ec] = co_await instance.async_accept(no_throw);
        while (waited_ec == errc::timed_out) co_await asio::post(ex, asio::use_awaitable);
        EXPECT_FALSE(waited_ec) << waited_ec.message();
        EXPECT_TRUE(waited.is_open());
        EXPECT_TRUE(!accept_ec || accept_ec == errc::already_connected) << accept_ec.message();
    });
}

TEST(AsyncConformance, OpeningANameWithoutAnInstanceIsNotFound) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        ClientOptions patient;
        patient.wait = std::chrono::seconds(5);
        const auto name = unique_pipe_name("async-none");
        auto [ec, channel] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
        EXPECT_EQ(ec, errc::not_found);  // ERROR_FILE_NOT_FOUND, at once
    });
}

}  // namespace
}  // namespace pipeslot::test
