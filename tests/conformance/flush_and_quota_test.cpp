// Conformance: FlushFileBuffers and the buffer quotas, as Windows has them
// (docs/windows-behaviour.md; Wine's kernel32 test_blocking_rw,
// test_overlapped_transport, serverThreadMain4; ntdll test_pipe_state,
// test_blocking). Written once against the public API; runs on every backend.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::connect_pair;
using test::generous;

// How long a call that must still be waiting is given to (wrongly) finish.
constexpr auto still_waiting = 100ms;

std::error_code flush_of(MessageChannel& channel) {
    std::error_code ec;
    channel.flush(ec);
    return ec;
}

std::size_t receive_n(MessageChannel& channel, std::size_t n) {
    std::vector<std::byte> buffer(n);
    std::error_code ec;
    const auto got = channel.receive(buffer, generous, ec);
    EXPECT_TRUE(!ec || ec == errc::more_data) << ec.message();
    return got;
}

// Pipes whose quotas are small: the server reads with 6000, the client with 5000.
test::Connected small_quotas(const std::string& purpose, PipeType type = PipeType::message) {
    ServerOptions options;
    options.type = type;
    options.read_mode = type == PipeType::message ? ReadMode::message : ReadMode::byte;
    options.in_buffer_size = 6000;
    options.out_buffer_size = 5000;
    return connect_pair(purpose, options);
}

// --- flush ---------------------------------------------------------------------------

TEST(FlushConformance, WithNothingUnreadItReturnsAtOnce) {
    auto c = connect_pair("flush-empty");
    EXPECT_FALSE(flush_of(c.client));
    EXPECT_FALSE(flush_of(c.server));
    c.client.send(test::as_bytes("x"), generous);
    EXPECT_EQ(receive_n(c.server, 8), 1u);
    EXPECT_FALSE(flush_of(c.client)) << "everything sent has been taken";
}

TEST(FlushConformance, ItWaitsUntilTheReaderHasTakenEverything) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    for (const bool from_server : {false, true}) {
        auto c = connect_pair("flush-waits");
        auto& writer = from_server ? c.server : c.client;
        auto& reader = from_server ? c.client : c.server;
        for (int i = 0; i < 3; ++i) writer.send(test::pattern_bytes(1000), generous);
        auto flushed = std::async(std::launch::async, [&] { return flush_of(writer); });
        EXPECT_EQ(receive_n(reader, 1000), 1000u);
        EXPECT_EQ(receive_n(reader, 1000), 1000u);
        EXPECT_EQ(flushed.wait_for(still_waiting), std::future_status::timeout) << "a message is still unread";
        EXPECT_EQ(receive_n(reader, 1000), 1000u);
        ASSERT_EQ(flushed.wait_for(generous), std::future_status::ready);
        EXPECT_FALSE(flushed.get());
    }
}

TEST(FlushConformance, ThePeerClosingWhileItWaitsIsABrokenPipe) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    auto c = connect_pair("flush-peer-closes");
    c.client.send(test::as_bytes("never read"), generous);
    auto flushed = std::async(std::launch::async, [&] { return flush_of(c.client); });
    EXPECT_EQ(flushed.wait_for(still_waiting), std::future_status::timeout);
    c.server.close();
    ASSERT_EQ(flushed.wait_for(generous), std::future_status::ready);
    EXPECT_EQ(flushed.get(), errc::broken_pipe);  // ERROR_BROKEN_PIPE
}

TEST(FlushConformance, APeerThatReadEverythingAndClosedLeavesNothingToFlush) {
    auto c = connect_pair("flush-peer-read-all");
    c.server.send(test::as_bytes("the reply"), generous);
    EXPECT_EQ(receive_n(c.client, 64), 9u);
    c.client.close();
    EXPECT_FALSE(flush_of(c.server));  // serverThreadMain4: FlushFileBuffers, then DisconnectNamedPipe
}

TEST(FlushConformance, WithoutAClientTheServerHasNothingToFlushAndADisconnectedClientIsTold) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    const auto name = test::unique_pipe_name("flush-states");
    auto server = test::create_instance(name);
    EXPECT_FALSE(flush_of(server)) << "listening";
    auto client = test::open_channel(name);
    std::error_code ec;
    server.accept(generous, ec);
    server.disconnect(ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_FALSE(flush_of(server)) << "disconnected";
    EXPECT_EQ(flush_of(client), errc::not_connected);  // ERROR_PIPE_NOT_CONNECTED
}

TEST(FlushConformance, AFlushIsCancelledFromAnotherThread) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    auto c = connect_pair("flush-cancel");
    c.client.send(test::as_bytes("never read"), generous);
    auto flushed = std::async(std::launch::async, [&] { return flush_of(c.client); });
    while (flushed.wait_for(10ms) != std::future_status::ready) c.client.cancel();
    EXPECT_EQ(flushed.get(), errc::cancelled);
}

// --- quotas ----------------------------------------------------------------------------

// k32 test_blocking_rw: a write completes once what is unread of it and of
// the messages ahead of it fits in the reading end's buffer size.
TEST(QuotaConformance, AWriteOverWhatIsLeftWaitsUntilTheReaderHasTakenEnough) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    for (const bool from_server : {false, true}) {
        auto c = small_quotas("quota-waits");
        auto& writer = from_server ? c.server : c.client;
        auto& reader = from_server ? c.client : c.server;
        const std::size_t quota = from_server ? 5000 : 6000;  // the reading end's
        EXPECT_EQ(writer.send(test::pattern_bytes(4000), generous), 4000u) << "fits: at once";
        auto second = std::async(std::launch::async, [&] {
            std::error_code ec;
            const auto n = writer.send(test::pattern_bytes(quota), generous, ec);
            return std::pair(n, ec);
        });
        EXPECT_EQ(second.wait_for(still_waiting), std::future_status::timeout) << "4000 + quota is over it";
        std::error_code ec;
        EXPECT_EQ(reader.peek({}, ec).total_available, 4000 + quota) << "peek counts the waiting write";
        EXPECT_EQ(receive_n(reader, 3999), 3999u);
        EXPECT_EQ(second.wait_for(still_waiting), std::future_status::timeout) << "one byte over";
        EXPECT_EQ(receive_n(reader, 1), 1u);
        ASSERT_EQ(second.wait_for(generous), std::future_status::ready) << "now it fits";
        const auto [n, error] = second.get();
        EXPECT_EQ(n, quota);
        EXPECT_FALSE(error) << error.message();
        EXPECT_EQ(receive_n(reader, quota), quota);
    }
}

TEST(QuotaConformance, AMessageLargerThanTheQuotaCompletesOnceTheRestFits) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    auto c = small_quotas("quota-larger");
    auto write = std::async(std::launch::async, [&] { return c.client.send(test::pattern_bytes(6000 + 2000), generous); });
    EXPECT_EQ(receive_n(c.server, 1999), 1999u);
    EXPECT_EQ(write.wait_for(still_waiting), std::future_status::timeout) << "6001 unread";
    EXPECT_EQ(receive_n(c.server, 1), 1u);
    ASSERT_EQ(write.wait_for(generous), std::future_status::ready);
    EXPECT_EQ(write.get(), 8000u);
}

TEST(QuotaConformance, AnEmptyMessageNeverWaits) {
    auto c = small_quotas("quota-empty");
    EXPECT_EQ(c.client.send(test::pattern_bytes(6000), generous), 6000u);
    std::error_code ec;
    EXPECT_EQ(c.client.send({}, 50ms, ec), 0u);
    EXPECT_FALSE(ec) << "the quota is full, but an empty write does not wait: " << ec.message();
}

TEST(QuotaConformance, AWriteWaitingForTheQuotaTimesOutAndIsCancelled) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    auto c = small_quotas("quota-timeout");
    c.client.send(test::pattern_bytes(6000), generous);
    std::error_code ec;
    c.client.send(test::pattern_bytes(100), 100ms, ec);
    EXPECT_EQ(ec, errc::timed_out);
    auto blocked = std::async(std::launch::async, [&] {
        std::error_code e;
        c.client.send(test::pattern_bytes(100), Timeout::forever(), e);
        return e;
    });
    while (blocked.wait_for(10ms) != std::future_status::ready) c.client.cancel();
    EXPECT_EQ(blocked.get(), errc::cancelled);
}

TEST(QuotaConformance, AWriteWaitingWhenTheReaderClosesIsABrokenPipe) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("no buffer quotas across hosts: TCP holds what the reader has not taken (docs/gateway.md)");
    auto c = small_quotas("quota-reader-closes");
    c.client.send(test::pattern_bytes(6000), generous);
    auto blocked = std::async(std::launch::async, [&] {
        std::error_code e;
        c.client.send(test::pattern_bytes(100), generous, e);
        return e;
    });
    EXPECT_EQ(blocked.wait_for(still_waiting), std::future_status::timeout);
    c.server.close();
    ASSERT_EQ(blocked.wait_for(generous), std::future_status::ready);
    EXPECT_EQ(blocked.get(), errc::broken_pipe);  // k32 test_overlapped_transport
}

TEST(QuotaConformance, AWriterWithinItsQuotaNeverWaitsForAReaderThatKeepsUp) {
    auto c = small_quotas("quota-streaming", PipeType::byte);
    constexpr int rounds = 2000;
    std::thread reader([&] {
        std::vector<std::byte> buffer(700);
        std::size_t left = rounds * 700;
        std::error_code ec;
        while (left > 0 && !ec) left -= c.server.receive(buffer, generous, ec);
        EXPECT_FALSE(ec) << ec.message();
    });
    std::error_code ec;
    for (int i = 0; i < rounds && !ec; ++i) c.client.send(test::pattern_bytes(700), generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    reader.join();
    EXPECT_FALSE(flush_of(c.client));
}

}  // namespace
}  // namespace pipeslot
