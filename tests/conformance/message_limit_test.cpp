// Conformance: the longest message receive_message takes (ServerOptions and
// ClientOptions::max_message_size). Windows has no such limit of its own: it
// bounds what one peer can make this end allocate, on every backend alike.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace pipeslot {
namespace {

using test::generous;

std::vector<std::byte> bytes(std::size_t size, char fill) { return std::vector<std::byte>(size, std::byte(fill)); }

TEST(MessageLimitConformance, ALongerMessageIsRefusedWithoutBeingKeptAndTheChannelGoesOn) {
    ServerOptions options;
    options.max_message_size = 1000;
    auto c = test::connect_pair("limit", options);
    // A message larger than the pipe's buffer waits for its reader: the sends go from another thread.
    auto sent = std::async(std::launch::async, [&] {
        for (const std::size_t size : {std::size_t{1000}, std::size_t{1001}, std::size_t{4} << 20}) c.client.send(bytes(size, 'x'), generous);
        c.client.send(test::as_bytes("next"), generous);
    });
    std::error_code ec;
    EXPECT_EQ(c.server.receive_message(generous, ec).size(), 1000u) << "the limit itself is taken";
    EXPECT_FALSE(ec) << ec.message();
    for (const char* what : {"one byte over", "4 MiB"}) {
        const auto refused = c.server.receive_message(generous, ec);
        EXPECT_EQ(ec, errc::message_too_large) << what;
        EXPECT_TRUE(refused.empty());
    }
    EXPECT_EQ(test::text_of(c.server.receive_message(generous, ec)), "next") << "the next message follows whole";
    EXPECT_FALSE(ec) << ec.message();
    sent.get();
}

// The refused message's rest comes later than the receive's timeout (the
// writer waits for the reader to take each part): the next receive drops it
// first, and never takes a part of it for a message.
TEST(MessageLimitConformance, ARestThatComesAfterTheTimeoutIsStillDropped) {
    ServerOptions options;
    options.max_message_size = 1000;
    auto c = test::connect_pair("late-rest", options);
    auto sent = std::async(std::launch::async, [&] {
        c.client.send(bytes(std::size_t{4} << 20, 'x'), generous);
        c.client.send(test::as_bytes("next"), generous);
    });
    std::error_code ec;
    // Until its first part is there (bounded by time, not by a count of
    // tries: under TSan 10,000 yields once came before the writer's first part).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (c.server.peek({}, ec).total_available == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
    c.server.receive_message(Timeout::none(), ec);
    EXPECT_EQ(ec, errc::message_too_large);
    EXPECT_EQ(test::text_of(c.server.receive_message(generous, ec)), "next") << "no part of the refused one";
    EXPECT_FALSE(ec) << ec.message();
    sent.get();
}

TEST(MessageLimitConformance, AClientsLimitCoversWhatItReceives) {
    ClientOptions options;
    options.max_message_size = 100;
    auto c = test::connect_pair("client-limit", {}, options);
    c.server.send(bytes(300, 'r'), generous);
    c.server.send(test::as_bytes("ok"), generous);
    std::error_code ec;
    c.client.receive_message(generous, ec);
    EXPECT_EQ(ec, errc::message_too_large);
    EXPECT_EQ(test::text_of(c.client.receive_message(generous, ec)), "ok");
    EXPECT_FALSE(ec) << ec.message();
}

TEST(MessageLimitConformance, AReceiveIntoTheCallersBufferIsNotLimited) {
    ClientOptions options;
    options.max_message_size = 10;
    auto c = test::connect_pair("buffer-unlimited", {}, options);
    c.server.send(bytes(300, 'r'), generous);
    std::vector<std::byte> buffer(300);
    std::error_code ec;
    EXPECT_EQ(c.client.receive(buffer, generous, ec), 300u) << "the caller's memory, as ReadFile";
    EXPECT_FALSE(ec) << ec.message();
}

TEST(MessageLimitConformance, ALimitOfZeroOrAboveTheLargestMessageIsInvalid) {
    ServerOptions server;
    server.max_message_size = max_message_size + 1;
    std::error_code ec;
    test::ipc().create_instance(test::unique_pipe_name("limit-invalid"), server, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    server.max_message_size = 0;
    test::ipc().create_instance(test::unique_pipe_name("limit-zero"), server, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    const auto name = test::unique_pipe_name("limit-invalid-client");
    auto instance = test::ipc().create_instance(name, {}, ec);
    ASSERT_FALSE(ec) << ec.message();
    ClientOptions client;
    client.max_message_size = max_message_size + 1;
    test::ipc().open_channel(name, client, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    client.max_message_size = 0;
    test::ipc().open_channel(name, client, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
}

// PipeServer's request handler takes whole requests: a longer one
// disconnects that client (DisconnectNamedPipe), and the server serves the next.
TEST(MessageLimitConformance, APipeServerDisconnectsAClientThatSendsTooLongARequest) {
    const auto name = test::unique_pipe_name("limit-server");
    ServerOptions options;
    options.max_message_size = 64;
    std::error_code ec;
    auto server = PipeServer::start(name, options, 1, PipeServer::RequestHandler([](std::span<const std::byte> request) {
        return std::vector<std::byte>(request.begin(), request.end());
    }), ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    ClientOptions wait;
    wait.wait = generous;
    auto greedy = test::ipc().open_channel(name, wait, ec);
    ASSERT_FALSE(ec) << ec.message();
    greedy.send(bytes(65, 'g'), generous, ec);
    greedy.receive_message(generous, ec);
    EXPECT_EQ(ec, errc::not_connected) << ec.message();
    greedy.close();
    auto next = test::ipc().open_channel(name, wait, ec);
    ASSERT_FALSE(ec) << ec.message();
    std::vector<std::byte> reply(64);
    EXPECT_EQ(next.transact(bytes(64, 'n'), reply, generous, ec), 64u);
    EXPECT_FALSE(ec) << ec.message();
}

}  // namespace
}  // namespace pipeslot
