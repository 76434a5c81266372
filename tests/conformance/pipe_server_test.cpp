// Conformance: the ready-made multithreaded server, and load.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::generous;
using test::text_of;

PipeServer::RequestHandler echo() {
    return [](std::span<const std::byte> request) {
        auto reply = test::bytes_of("echo:");
        reply.insert(reply.end(), request.begin(), request.end());
        return reply;
    };
}

TEST(PipeServerConformance, ServesRequestsAndStopsCleanly) {
    const auto name = test::unique_pipe_name("server");
    std::error_code ec;
    auto server = PipeServer::start(name, {}, 4, echo(), ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_TRUE(server.running());
    for (int i = 0; i < 3; ++i) {
        std::vector<std::byte> reply(64);
        const auto n = test::ipc().call(name, test::as_bytes("hi " + std::to_string(i)), reply, generous, ec);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(text_of(std::span(reply).first(n)), "echo:hi " + std::to_string(i));
    }
    // A client still connected does not keep stop() from returning.
    auto lingering = test::open_channel(name);
    server.stop();
    EXPECT_FALSE(server.running());
    std::vector<std::byte> buffer(8);
    lingering.receive(buffer, generous, ec);
    // Disconnected if its thread had taken it, else the instance closed under it.
    EXPECT_TRUE(ec == errc::not_connected || ec == errc::broken_pipe) << ec.message();
    EXPECT_EQ(test::ipc().open_channel(name, {}, ec).is_open(), false);
    EXPECT_EQ(ec, errc::not_found);
}

TEST(PipeServerConformance, ReportsCreateErrorsAndBadArguments) {
    const auto name = test::unique_pipe_name("server-errors");
    ServerOptions two;
    two.max_instances = 2;
    std::error_code ec;
    PipeServer::start(name, two, 3, echo(), ec, test::ipc());
    EXPECT_EQ(ec, errc::too_many_instances);
    PipeServer::start(name, {}, 0, echo(), ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_argument);
    PipeServer::start(name, {}, 1, PipeServer::RequestHandler{}, ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_argument);
}

// N instances serve N clients at once (a thread for each), and each serves
// again after its client leaves, many times over (on POSIX the threads are
// pooled: any of them may serve an instance the next time).
TEST(PipeServerConformance, EveryInstanceServesAtOnceAndAgainAfterEachClient) {
    constexpr int instances = 4;
    const auto name = test::unique_pipe_name("server-reuse");
    std::mutex mutex;
    std::condition_variable changed;
    int inside = 0, most_inside = 0;
    bool all_were_in = false;
    std::error_code ec;
    auto server = PipeServer::start(
        name, {}, instances,
        PipeServer::RequestHandler([&](std::span<const std::byte> request) {
            std::unique_lock lock(mutex);
            most_inside = std::max(most_inside, ++inside);
            if (inside == instances) all_were_in = true;
            changed.notify_all();
            if (text_of(request) == "together") changed.wait_for(lock, 20s, [&] { return all_were_in; });
            --inside;
            return test::bytes_of("ok");
        }),
        ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    std::vector<std::thread> together;
    for (int t = 0; t < instances; ++t) {
        together.emplace_back([&] {
            std::vector<std::byte> reply(8);
            std::error_code io;
            const auto n = test::ipc().call(name, test::as_bytes("together"), reply, generous, io);
            EXPECT_FALSE(io) << io.message();
            EXPECT_EQ(text_of(std::span(reply).first(n)), "ok");
        });
    }
    for (auto& t : together) t.join();
    EXPECT_EQ(most_inside, instances) << "every instance had its client at the same time";
    for (int i = 0; i < 10 * instances; ++i) {
        std::vector<std::byte> reply(8);
        const auto n = test::ipc().call(name, test::as_bytes("alone"), reply, generous, ec);
        ASSERT_FALSE(ec) << "call " << i << ": " << ec.message();
        EXPECT_EQ(text_of(std::span(reply).first(n)), "ok");
    }
    server.stop();
}

// A server whose every thread is busy does not hold up the name's other
// instances: a new client connects to a free one at once (on POSIX the
// server's idle threads accept clients themselves; with none idle, the
// name's own accept thread must).
TEST(PipeServerConformance, ABusyServerLeavesNewClientsToTheNamesOtherInstances) {
    const auto name = test::unique_pipe_name("server-busy");
    std::mutex mutex;
    std::condition_variable changed;
    bool entered = false, released = false;
    std::error_code ec;
    auto server = PipeServer::start(
        name, {}, 1,
        PipeServer::RequestHandler([&](std::span<const std::byte>) {
            std::unique_lock lock(mutex);
            entered = true;
            changed.notify_all();
            changed.wait_for(lock, generous, [&] { return released; });
            return test::bytes_of("done");
        }),
        ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    std::thread holder([&] {
        std::vector<std::byte> reply(8);
        std::error_code io;
        const auto n = test::ipc().call(name, test::as_bytes("hold"), reply, generous, io);
        EXPECT_FALSE(io) << io.message();
        EXPECT_EQ(text_of(std::span(reply).first(n)), "done");
    });
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(changed.wait_for(lock, generous, [&] { return entered; }));
    }
    // The server's one thread is inside its handler: the only free instance is this one.
    auto other = test::create_instance(name);
    auto client = test::open_channel(name);
    other.accept(generous, ec);
    EXPECT_TRUE(!ec || ec == errc::already_connected) << ec.message();
    other.send(test::as_bytes("from the other"), generous, ec);
    ASSERT_FALSE(ec) << ec.message();
    std::vector<std::byte> buffer(32);
    const auto n = client.receive(buffer, generous, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(text_of(std::span(buffer).first(n)), "from the other");
    {
        std::lock_guard lock(mutex);
        released = true;
        changed.notify_all();
    }
    holder.join();
    server.stop();
}

// Servers that stop while clients keep connecting leave no client waiting:
// every call ends (served, or refused as the name goes), and the name serves
// again at once when a new server starts.
TEST(PipeServerConformance, StoppingWhileClientsConnectLeavesNoClientWaiting) {
    const auto name = test::unique_pipe_name("server-churn");
    std::atomic<bool> done{false};
    std::atomic<int> served{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 3; ++t) {
        clients.emplace_back([&] {
            while (!done) {
                std::vector<std::byte> reply(64);
                std::error_code io;
                const auto began = std::chrono::steady_clock::now();
                (void)test::ipc().call(name, test::as_bytes("hi"), reply, std::chrono::seconds(5), io);
                EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(20)) << io.message();
                if (!io) ++served;
                else std::this_thread::yield();
            }
        });
    }
    for (int round = 0; round < 8; ++round) {
        std::error_code ec;
        auto server = PipeServer::start(name, {}, 2, echo(), ec, test::ipc());
        ASSERT_FALSE(ec) << "round " << round << ": " << ec.message();
        std::vector<std::byte> reply(64);
        const auto n = test::ipc().call(name, test::as_bytes("mine"), reply, generous, ec);
        ASSERT_FALSE(ec) << "round " << round << ": " << ec.message();
        EXPECT_EQ(text_of(std::span(reply).first(n)), "echo:mine");
        server.stop();
    }
    done = true;
    for (auto& t : clients) t.join();
}

TEST(PipeServerConformance, TwoHundredConcurrentClientsEachExchangeAHundredMessages) {
    constexpr int clients = 200;
    constexpr int exchanges = 100;
    const auto name = test::unique_pipe_name("load");
    const auto handles_before = test::settled_handle_count();
    const auto threads_before = test::settled_thread_count();
    const auto names_before = test::thread_names();
    const auto started = std::chrono::steady_clock::now();
    std::error_code ec;
    auto server = PipeServer::start(name, {}, clients, echo(), ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    std::atomic<int> matched{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&, t] {
            ClientOptions options;
            options.wait = generous;
            std::error_code io;
            auto channel = test::ipc().open_channel(name, options, io);
            if (io) {
                ADD_FAILURE() << "client " << t << ": " << io.message();
                return;
            }
            for (int i = 0; i < exchanges; ++i) {
                const std::string request = std::to_string(t) + ":" + std::to_string(i);
                std::vector<std::byte> reply(64);
                const auto n = channel.transact(test::as_bytes(request), reply, generous, io);
                if (io || text_of(std::span(reply).first(n)) != "echo:" + request) {
                    ADD_FAILURE() << "client " << t << " exchange " << i << ": " << io.message();
                    return;
                }
                ++matched;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(matched, clients * exchanges);
    server.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 120s) << "every reply within a bounded time";
    EXPECT_EQ(test::thread_count_back_to(threads_before), threads_before) << "no thread left behind; before: " << names_before << "; after: " << test::thread_names();
    EXPECT_EQ(test::handle_count_back_to(handles_before), handles_before) << "no descriptor or handle left behind";
}

}  // namespace
}  // namespace pipeslot
