// What the asynchronous tests share: a bounded coroutine runner, the
// completion token that returns errors as values, and a connected pair.
#pragma once

#include "support/support.hpp"

#include <pipeslot/asio/channel.hpp>

#include <gtest/gtest.h>

#include <asio/experimental/as_tuple.hpp>

#include <cstring>
#include <exception>
#include <string>
#include <utility>

namespace pipeslot::test {

using namespace std::chrono_literals;
using async::AsyncChannel;
using async::AsyncInstance;

// Runs `body` as a coroutine on a fresh io_context, bounded: a hang fails the test.
template <class Body>
inline void run_coroutine(std::chrono::seconds bound, Body body) {
    asio::io_context io;
    bool finished = false;
    std::exception_ptr failure;
    asio::co_spawn(io, body(io.get_executor()), [&](std::exception_ptr e) {
        finished = true;
        failure = e;
    });
    io.run_for(bound);
    ASSERT_TRUE(finished) << "the coroutine did not finish within " << bound.count() << " s";
    if (failure) std::rethrow_exception(failure);
}
template <class Body>
inline void run_coroutine(Body body) {
    run_coroutine(generous, std::move(body));
}

inline constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);

// Named, not `{}`: g++ 12 destroys a braced temporary in a co_await twice.
inline const ClientOptions at_once;

// A server instance and a client opened asynchronously, the accept completed.
// (No default arguments: g++ 12 frees a coroutine's defaulted parameters twice.)
inline asio::awaitable<std::pair<AsyncInstance, AsyncChannel>> connect(asio::any_io_executor ex, std::string purpose,
                                                                 ServerOptions server, ClientOptions client) {
    const auto name = unique_pipe_name(purpose);
    AsyncInstance instance(ex, create_instance(name, server));
    auto [open_ec, channel] = co_await async::async_open(ex, ipc(), name, client, no_throw);
    EXPECT_FALSE(open_ec) << open_ec.message();
    auto [accept_ec] = co_await instance.async_accept(no_throw);
    EXPECT_EQ(accept_ec, errc::already_connected);  // the client came first
    co_return std::pair(std::move(instance), std::move(channel));
}

inline asio::awaitable<std::pair<AsyncInstance, AsyncChannel>> connect(asio::any_io_executor ex, std::string purpose) {
    co_return co_await connect(ex, std::move(purpose), ServerOptions(), ClientOptions());
}
inline asio::awaitable<std::pair<AsyncInstance, AsyncChannel>> connect(asio::any_io_executor ex, std::string purpose,
                                                                 ServerOptions server) {
    co_return co_await connect(ex, std::move(purpose), std::move(server), ClientOptions());
}

// A server's connection: replies "echo:" + each request until the client goes.
inline asio::awaitable<void> echo(AsyncInstance& connection) {
    for (;;) {
        auto [ec, request] = co_await connection.async_receive_message(no_throw);
        if (ec) co_return;
        auto reply = bytes_of("echo:");
        reply.insert(reply.end(), request.begin(), request.end());
        auto [send_ec, n] = co_await connection.async_send(reply, no_throw);
        if (send_ec) co_return;
    }
}

// Until `done` holds (a handler set it), looking every millisecond, for at most `bound`.
template <class Done>
asio::awaitable<void> wait_until(asio::any_io_executor ex, Done done, std::chrono::milliseconds bound) {
    asio::steady_timer tick(ex);
    for (auto waited = 0ms; !done() && waited < bound; waited += 1ms) {
        tick.expires_after(1ms);
        co_await tick.async_wait(no_throw);
    }
}

}  // namespace pipeslot::test
