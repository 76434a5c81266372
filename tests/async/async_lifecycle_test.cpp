// The asynchronous layer's conformance core, continued: large messages,
// flush, peek, disconnect, and how the layer leaves a channel.
#include "async_support.hpp"

#include <gtest/gtest.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>

#include <cstdint>
#include <cstdio>
#include <future>
#include <thread>

#ifdef _WIN32
#include <windows.h>
#else
#include <sys/resource.h>
#endif

namespace pipeslot::test {
namespace {

template <class Sender, class Receiver>
asio::awaitable<void> send_one_large(asio::any_io_executor ex, Sender& sender, Receiver& receiver,
                                     std::vector<std::byte> big) {
    std::error_code send_ec;
    std::size_t sent = 0;
    bool send_done = false;
    sender.async_send(big, [&](std::error_code ec, std::size_t n) {
        send_ec = ec;
        sent = n;
        send_done = true;
    });
    auto [ec, got] = co_await receiver.async_receive_message(no_throw, 2 << 20);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, big);
    co_await wait_until(ex, [&] { return send_done; }, 2000ms);
    EXPECT_TRUE(send_done);
    EXPECT_FALSE(send_ec) << send_ec.message();
    EXPECT_EQ(sent, big.size());
}

// An overlapped WriteFile larger than the pipe's buffer waits for the reader
// and completes whole; so does async_send, both ways.
TEST(AsyncConformance, AMessageLargerThanTheQuotaGoesWhole) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-large");
        co_await send_one_large(ex, client, server, pattern_bytes(1 << 20));
        co_await send_one_large(ex, server, client, pattern_bytes(3 << 19));
    });
}

// A message larger than the socket's buffer arrives in parts; a receive with
// room for it has it whole, as ReadFile does (more_data only for a full buffer).
TEST(AsyncConformance, AReceiveWithRoomTakesALargeMessageWhole) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-large-receive");
        const auto big = pattern_bytes(3 << 19);
        bool sent = false;
        client.async_send(big, [&](std::error_code ec, std::size_t) {
            EXPECT_FALSE(ec) << ec.message();
            sent = true;
        });
        std::vector<std::byte> room(2 << 20);
        auto [ec, n] = co_await server.async_receive(room, no_throw);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(n, big.size());
        EXPECT_TRUE(n == big.size() && std::equal(big.begin(), big.end(), room.begin()));
        std::vector<std::byte> small(1000);  // and one too large for its buffer: more_data, the buffer full
        bool sent_again = false;
        client.async_send(big, [&](std::error_code ec, std::size_t) {
            EXPECT_FALSE(ec) << ec.message();
            sent_again = true;
        });
        auto [part_ec, part] = co_await server.async_receive(small, no_throw);
        EXPECT_EQ(part_ec, errc::more_data);
        EXPECT_EQ(part, small.size());
        auto [rest_ec, rest] = co_await server.async_receive_message(no_throw, 2 << 20);
        EXPECT_FALSE(rest_ec) << rest_ec.message();
        EXPECT_EQ(rest.size(), big.size() - small.size());
        co_await wait_until(ex, [&] { return sent && sent_again; }, 2000ms);  // both done before `big` goes
        EXPECT_TRUE(sent && sent_again);
    });
}

// A whole-message receive refuses one above its limit with a clear error,
// keeps nothing of it, and the channel goes on at the next message.
TEST(AsyncConformance, AMessageOverTheReceiveLimitIsMessageTooLargeAndTheNextComes) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-too-large");
        co_await client.async_send(pattern_bytes(100), asio::use_awaitable);
        co_await client.async_send(bytes_of("next"), asio::use_awaitable);
        auto [ec, refused] = co_await server.async_receive_message(no_throw, 10);
        EXPECT_EQ(ec, errc::message_too_large);
        EXPECT_TRUE(refused.empty());
        auto [next_ec, next] = co_await server.async_receive_message(no_throw, 10);
        EXPECT_FALSE(next_ec) << next_ec.message();
        EXPECT_EQ(text_of(next), "next");
    });
}

// FlushFileBuffers returns once the other end has read everything.
TEST(AsyncConformance, AFlushWaitsUntilThePeerHasReadEverything) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-flush");
        co_await client.async_send(bytes_of("unread"), asio::use_awaitable);
        std::error_code flush_ec;
        bool flushed = false;
        client.async_flush([&](std::error_code ec) {
            flush_ec = ec;
            flushed = true;
        });
        asio::steady_timer later(ex, 30ms);
        co_await later.async_wait(asio::use_awaitable);
        EXPECT_FALSE(flushed);  // the server has not read it
        auto message = co_await server.async_receive_message(asio::use_awaitable);
        EXPECT_EQ(text_of(message), "unread");
        co_await wait_until(ex, [&] { return flushed; }, 2000ms);
        EXPECT_TRUE(flushed);
        EXPECT_FALSE(flush_ec) << flush_ec.message();
        // Nothing unread: at once.
        auto [again_ec] = co_await client.async_flush(no_throw);
        EXPECT_FALSE(again_ec) << again_ec.message();
    });
}

TEST(AsyncConformance, AFlushWhoseReaderClosesIsBrokenPipe) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-flush-closed");
        co_await server.async_send(bytes_of("never read"), asio::use_awaitable);
        std::error_code flush_ec;
        bool flushed = false;
        server.async_flush([&](std::error_code ec) {
            flush_ec = ec;
            flushed = true;
        });
        asio::steady_timer later(ex, 20ms);
        co_await later.async_wait(asio::use_awaitable);
        EXPECT_FALSE(flushed);
        client.close();
        co_await wait_until(ex, [&] { return flushed; }, 4000ms);
        EXPECT_TRUE(flushed);
        EXPECT_EQ(flush_ec, errc::broken_pipe);  // ERROR_BROKEN_PIPE
    });
}

// PeekNamedPipe never waits: the synchronous call, on the async channel's pipe.
TEST(AsyncConformance, PeekSeesAMessageWithoutTakingIt) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-peek");
        co_await client.async_send(bytes_of("peek at me"), asio::use_awaitable);
        std::byte first[4];
        std::error_code ec;
        PeekResult peeked;
        asio::steady_timer later(ex);
        for (int i = 0; i < 2000 && peeked.total_available == 0 && !ec; ++i) {
            peeked = server.channel().peek(first, ec);
            if (peeked.total_available > 0) break;
            later.expires_after(1ms);
            co_await later.async_wait(no_throw);
        }
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(peeked.copied, 4u);
        EXPECT_EQ(peeked.total_available, 10u);
        EXPECT_EQ(peeked.left_in_message, 6u);
        auto message = co_await server.async_receive_message(asio::use_awaitable);
        EXPECT_EQ(text_of(message), "peek at me");
    });
}

// DisconnectNamedPipe: the client's pending read fails with
// ERROR_PIPE_NOT_CONNECTED, and the instance accepts the next client.
TEST(AsyncConformance, ADisconnectEndsTheClientsReceiveAndTheInstanceAcceptsAgain) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-disconnect");
        ServerOptions one;
        one.max_instances = 1;
        AsyncInstance instance(ex, create_instance(name, one));
        auto [open_ec, client] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_FALSE(open_ec) << open_ec.message();
        co_await instance.async_accept(no_throw);
        std::error_code receive_ec;
        bool received = false;
        std::byte buffer[16];
        client.async_receive(buffer, [&](std::error_code ec, std::size_t) {
            receive_ec = ec;
            received = true;
        });
        asio::steady_timer later(ex, 20ms);
        co_await later.async_wait(no_throw);
        EXPECT_FALSE(received);
        std::error_code ec;
        instance.channel().disconnect(ec);
        EXPECT_FALSE(ec) << ec.message();
        co_await wait_until(ex, [&] { return received; }, 2000ms);
        EXPECT_TRUE(received);
        EXPECT_EQ(receive_ec, errc::not_connected);
        // The same instance serves the next client.
        bool accepted = false;
        std::error_code accept_ec;
        instance.async_accept([&](std::error_code e) {
            accept_ec = e;
            accepted = true;
        });
        ClientOptions patient;
        patient.wait = generous;
        auto [next_ec, next] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
        EXPECT_FALSE(next_ec) << next_ec.message();
        co_await wait_until(ex, [&] { return accepted; }, 2000ms);
        EXPECT_TRUE(accepted);
        EXPECT_FALSE(accept_ec) << accept_ec.message();
        co_await next.async_send(bytes_of("next client"), asio::use_awaitable);
        auto message = co_await instance.async_receive_message(asio::use_awaitable);
        EXPECT_EQ(text_of(message), "next client");
    });
}

// A disconnect closes the instance's socket, and its number goes to whatever
// opens next. The channels that take it are served, and so is the
// instance's next client: the loop let go of the old number while it was
// still the instance's (a stale registration's removal would have removed
// the new owner's, leaving its receive waiting for ever).
TEST(AsyncConformance, AfterADisconnectTheNumberReusedAndTheNextClientAreServed) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-reuse");
        ServerOptions one;
        one.max_instances = 1;
        AsyncInstance instance(ex, create_instance(name, one));
        auto [open_ec, first] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_FALSE(open_ec) << open_ec.message();
        co_await instance.async_accept(no_throw);
        std::string got;
        bool received = false;
        const auto receive_on_instance = [&] {
            received = false;
            instance.async_receive_message([&](std::error_code ec, std::vector<std::byte> m) {
                EXPECT_FALSE(ec) << ec.message();
                got = text_of(m);
                received = true;
            });
        };
        receive_on_instance();  // waits: the instance's socket goes on the reactor
        asio::steady_timer later(ex, 20ms);
        co_await later.async_wait(no_throw);
        co_await first.async_send(bytes_of("first"), asio::use_awaitable);
        co_await wait_until(ex, [&] { return received; }, 2000ms);
        EXPECT_EQ(got, "first");
        const auto old_number = instance.channel().event_source(ChannelEvent::readable).descriptor;
        std::error_code ec;
        instance.channel().disconnect(ec);
        EXPECT_FALSE(ec) << ec.message();
        first.close();

        // Other pairs, a receive waiting at both ends of each.
        constexpr int pairs = 4;
        const ServerOptions plain;
        std::vector<std::pair<AsyncInstance, AsyncChannel>> others;
        others.reserve(pairs);
        std::vector<std::string> texts(2 * pairs);
        int pending = 0;
        bool reused = false;
        for (int i = 0; i < pairs; ++i) {
            others.push_back(co_await connect(ex, "async-reuse-other", plain, at_once));
            auto& [server_end, client_end] = others.back();
            const native_handle_type numbers[2] = {server_end.channel().event_source(ChannelEvent::readable).descriptor,
                                                    client_end.channel().event_source(ChannelEvent::readable).descriptor};
            for (const auto number : numbers) reused = reused || (number == old_number && number != invalid_native_handle);
            pending += 2;
            const auto done = [&texts, &pending](int slot) {
                return [&texts, &pending, slot](std::error_code e, std::vector<std::byte> m) {
                    EXPECT_FALSE(e) << e.message();
                    texts[slot] = text_of(m);
                    --pending;
                };
            };
            server_end.async_receive_message(done(2 * i));
            client_end.async_receive_message(done(2 * i + 1));
        }
        // (Whether one took the old number depends on what else the process
        // opened meanwhile; it is reported, not required.)
        if (reused) std::printf("a new channel took the old descriptor number\n");

        // The instance's next client, and a receive that waits on its new socket.
        bool accepted = false;
        instance.async_accept([&](std::error_code e) {
            EXPECT_FALSE(e) << e.message();
            accepted = true;
        });
        ClientOptions patient;
        patient.wait = generous;
        auto [next_ec, next] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
        EXPECT_FALSE(next_ec) << next_ec.message();
        co_await wait_until(ex, [&] { return accepted; }, 2000ms);
        receive_on_instance();
        asio::steady_timer again(ex, 20ms);
        co_await again.async_wait(no_throw);
        co_await next.async_send(bytes_of("next"), asio::use_awaitable);
        co_await wait_until(ex, [&] { return received; }, 2000ms);
        EXPECT_EQ(got, "next");

        for (int i = 0; i < pairs; ++i) {
            auto& [server_end, client_end] = others[i];
            const auto to_server = "to server " + std::to_string(i), to_client = "to client " + std::to_string(i);
            co_await client_end.async_send(bytes_of(to_server), asio::use_awaitable);
            co_await server_end.async_send(bytes_of(to_client), asio::use_awaitable);
        }
        co_await wait_until(ex, [&] { return pending == 0; }, 2000ms);
        EXPECT_EQ(pending, 0) << "a channel's receive was left waiting";
        for (int i = 0; i < pairs; ++i) {
            EXPECT_EQ(texts[2 * i], "to server " + std::to_string(i));
            EXPECT_EQ(texts[2 * i + 1], "to client " + std::to_string(i));
        }
    });
}

// User and system time of this process so far (Windows' clock() is wall time).
double process_cpu_seconds() {
#ifdef _WIN32
    FILETIME created, exited, kernel, user;
    GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user);
    const auto ticks = [](const FILETIME& t) { return (static_cast<std::uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime; };
    return static_cast<double>(ticks(kernel) + ticks(user)) / 1e7;  // 100 ns units
#else
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
#endif
}

// The loop's reactor leaves a descriptor non-blocking; a blocking call made
// on the channel afterwards still sleeps instead of spinning.
TEST(AsyncConformance, AfterTheLoopABlockingReceiveStillSleeps) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [server, client] = co_await connect(ex, "async-then-blocking");
        bool received = false;
        std::byte buffer[16];
        client.async_receive(buffer, [&](std::error_code ec, std::size_t) {
            EXPECT_FALSE(ec) << ec.message();
            received = true;
        });
        asio::steady_timer later(ex, 20ms);  // so that the receive waits on the reactor
        co_await later.async_wait(no_throw);
        co_await server.async_send(bytes_of("wake"), asio::use_awaitable);
        co_await wait_until(ex, [&] { return received; }, 2000ms);
        EXPECT_TRUE(received);
        std::error_code ec;
        client.channel().set_wait_mode(WaitMode::wait, ec);
        EXPECT_FALSE(ec) << ec.message();
        const auto cpu_before = process_cpu_seconds();
        client.channel().receive(buffer, std::chrono::milliseconds(500), ec);
        const double cpu_seconds = process_cpu_seconds() - cpu_before;
        EXPECT_EQ(ec, errc::timed_out);
        EXPECT_LT(cpu_seconds, 0.25) << "the receive spun instead of sleeping";
    });
}

TEST(AsyncConformance, CallbacksAndFuturesToo) {
    const auto name = unique_pipe_name("async-future");
    asio::io_context io;
    AsyncInstance instance(io.get_executor(), create_instance(name));
    auto client = AsyncChannel(io.get_executor(), open_channel(name));
    std::vector<std::byte> got;
    instance.async_receive_message([&](std::error_code ec, std::vector<std::byte> m) {
        EXPECT_FALSE(ec) << ec.message();
        got = std::move(m);
    });
    auto sent = client.async_send(bytes_of("by future"), asio::use_future);
    std::thread runner([&] { io.run_for(generous); });
    ASSERT_EQ(sent.wait_for(generous), std::future_status::ready);
    EXPECT_EQ(sent.get(), 9u);
    runner.join();
    EXPECT_EQ(text_of(got), "by future");
}

}  // namespace
}  // namespace pipeslot::test
