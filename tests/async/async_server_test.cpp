// AsyncServer: instances kept listening on one executor, a coroutine or a
// handler per connection, and a stop that ends every connection's waits.
#include "async_support.hpp"

#include <pipeslot/asio/server.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace pipeslot::test {
namespace {

using async::AsyncServer;

asio::awaitable<void> echo_client(asio::any_io_executor ex, std::string name, int id, int rounds, int* good) {
    ClientOptions patient;
    patient.wait = generous;
    auto [open_ec, client] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
    EXPECT_FALSE(open_ec) << open_ec.message();
    if (open_ec) co_return;
    for (int r = 0; r < rounds; ++r) {
        const auto request = "client " + std::to_string(id) + " round " + std::to_string(r);
        std::byte reply[128];
        auto [ec, n] = co_await client.async_transact(bytes_of(request), reply, no_throw);
        EXPECT_FALSE(ec) << ec.message();
        if (ec) co_return;
        EXPECT_EQ(text_of(std::span<const std::byte>(reply, n)), "echo:" + request);
    }
    ++*good;
}

TEST(AsyncServerConformance, ServesManyClientsAtOnceFromOneThread) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-server");
        std::error_code ec;
        const ServerOptions options;
        auto server = AsyncServer::start(ex, name, options, 4, AsyncServer::CoroutineHandler(echo), ec, ipc());
        EXPECT_FALSE(ec) << ec.message();
        constexpr int clients = 40, rounds = 5;
        int good = 0;
        auto done = std::make_shared<asio::steady_timer>(ex, std::chrono::hours(1));
        int running = clients;
        for (int i = 0; i < clients; ++i)
            asio::co_spawn(ex, echo_client(ex, name, i, rounds, &good), [&, done](std::exception_ptr) {
                if (--running == 0) done->cancel();
            });
        co_await done->async_wait(no_throw);
        EXPECT_EQ(good, clients);
        server.stop();
    });
}

TEST(AsyncServerConformance, AHandlerKeepsItsConnectionAsLongAsItHoldsIt) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-server-handler");
        std::error_code ec;
        int connections = 0;
        auto server = AsyncServer::start(
            ex, name, ServerOptions(), 1,
            [&](std::shared_ptr<AsyncInstance> connection) {
                ++connections;
                auto reply = std::make_shared<std::vector<std::byte>>(bytes_of("hello from the handler"));
                connection->async_send(*reply, [connection, reply](std::error_code, std::size_t) {});
            },
            ec, ipc());
        EXPECT_FALSE(ec) << ec.message();
        if (ec) co_return;
        for (int i = 0; i < 3; ++i) {
            ClientOptions patient;
            patient.wait = generous;
            auto [open_ec, client] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
            EXPECT_FALSE(open_ec) << open_ec.message();
            auto [receive_ec, message] = co_await client.async_receive_message(no_throw);
            EXPECT_FALSE(receive_ec) << receive_ec.message();
            EXPECT_EQ(text_of(message), "hello from the handler");
            // The handler has let go of its instance: the server closed it.
            std::byte more[8];
            auto [closed_ec, n] = co_await client.async_receive(more, no_throw);
            EXPECT_EQ(closed_ec, errc::broken_pipe);
            EXPECT_EQ(n, 0u);
        }
        EXPECT_EQ(connections, 3);
        server.stop();
    });
}

TEST(AsyncServerConformance, StopEndsEveryConnectionAndTheName) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-server-stop");
        std::error_code ec;
        int connected = 0, ended_cancelled = 0;
        auto waiting_handler = [&](AsyncInstance& connection) -> asio::awaitable<void> {
            ++connected;
            std::byte buffer[16];
            auto [receive_ec, n] = co_await connection.async_receive(buffer, no_throw);
            if (receive_ec == errc::cancelled) ++ended_cancelled;
        };
        auto server = AsyncServer::start(ex, name, ServerOptions(), 2, AsyncServer::CoroutineHandler(waiting_handler),
                                         ec, ipc());
        EXPECT_FALSE(ec) << ec.message();
        if (ec) co_return;
        std::vector<AsyncChannel> clients;
        ClientOptions patient;
        patient.wait = generous;
        for (int i = 0; i < 3; ++i) {
            auto [open_ec, client] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
            EXPECT_FALSE(open_ec) << open_ec.message();
            clients.push_back(std::move(client));
        }
        co_await wait_until(ex, [&] { return connected == 3; }, 1000ms);
        EXPECT_EQ(connected, 3);
        server.stop();
        EXPECT_FALSE(server.running());
        co_await wait_until(ex, [&] { return ended_cancelled == 3; }, 1000ms);
        EXPECT_EQ(ended_cancelled, 3);
        // Every instance is closed: the clients see the pipe broken, and the name is gone.
        std::byte buffer[8];
        auto [broken_ec, n] = co_await clients[0].async_receive(buffer, no_throw);
        EXPECT_EQ(broken_ec, errc::broken_pipe);
        auto [gone_ec, none] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_EQ(gone_ec, errc::not_found);
    });
}

TEST(AsyncServerConformance, AFullServerTakesTheNextClientWhenAConnectionEnds) {
    run_coroutine([](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-server-full");
        std::error_code ec;
        ServerOptions two;
        two.max_instances = 2;
        auto server = AsyncServer::start(ex, name, two, 2, AsyncServer::CoroutineHandler(echo), ec, ipc());
        EXPECT_FALSE(ec) << ec.message();
        if (ec) co_return;
        ClientOptions patient;
        patient.wait = generous;
        auto [first_ec, first] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
        auto [second_ec, second] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
        EXPECT_FALSE(first_ec || second_ec);
        auto [busy_ec, busy] = co_await async::async_open(ex, ipc(), name, at_once, no_throw);
        EXPECT_EQ(busy_ec, errc::pipe_busy);  // both instances are taken
        first.close();
        auto [third_ec, third] = co_await async::async_open(ex, ipc(), name, patient, no_throw);
        EXPECT_FALSE(third_ec) << third_ec.message();
        std::byte reply[32];
        auto [ec3, n] = co_await third.async_transact(bytes_of("again"), reply, no_throw);
        EXPECT_FALSE(ec3) << ec3.message();
        EXPECT_EQ(text_of(std::span<const std::byte>(reply, n)), "echo:again");
        server.stop();
    });
}

TEST(AsyncServerConformance, AnErrorCreatingTheInstancesComesBackFromStart) {
    asio::io_context io;
    std::error_code ec;
    ServerOptions bad;
    bad.max_instances = 0;
    auto server = AsyncServer::start(io.get_executor(), "\\\\.\\pipe\\" + std::string(300, 'x'), bad, 1,
                                     [](std::shared_ptr<AsyncInstance>) {}, ec, ipc());
    EXPECT_TRUE(ec);
    EXPECT_FALSE(server.running());
}

}  // namespace
}  // namespace pipeslot::test
