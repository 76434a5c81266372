// Conformance: non-blocking mode (PIPE_NOWAIT), as Windows has it
// (docs/windows-behaviour.md; Wine's kernel32 test_nowait, 512-byte
// buffers; ntdll test_filepipeinfo for the mode being each end's own).
// Written once against the public API; runs on every backend.
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

// A connected pair whose server end is PIPE_NOWAIT, with Wine's 512-byte quotas.
test::Connected nowait_pair(const std::string& purpose, PipeType type) {
    ServerOptions options;
    options.type = type;
    options.read_mode = type == PipeType::message ? ReadMode::message : ReadMode::byte;
    options.in_buffer_size = 512;
    options.out_buffer_size = 512;
    options.wait_mode = WaitMode::nowait;
    return test::connect_pair(purpose, options);
}

WaitMode wait_mode_of(const MessageChannel& channel) {
    std::error_code ec;
    const auto info = channel.info(ec);
    EXPECT_FALSE(ec) << ec.message();
    return info.wait_mode;
}

std::size_t send_of(MessageChannel& channel, std::size_t size, std::error_code& ec) {
    const std::vector<std::byte> data(size, std::byte{'w'});
    return channel.send(data, Timeout::forever(), ec);  // nowait: the timeout does not matter
}

class NowaitConformance : public ::testing::TestWithParam<PipeType> {};

INSTANTIATE_TEST_SUITE_P(BothTypes, NowaitConformance, ::testing::Values(PipeType::byte, PipeType::message),
                         [](const auto& info) { return info.param == PipeType::byte ? "Byte" : "Message"; });

TEST_P(NowaitConformance, AReadWithNothingToReadIsNoDataAtOnceAndThenGetsWhatCame) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("PIPE_NOWAIT works against the buffer quotas, which stay on their host (docs/gateway.md)");
    auto c = nowait_pair("nowait-read", GetParam());
    std::vector<std::byte> buffer(32768);
    std::error_code ec;
    EXPECT_EQ(c.server.receive(buffer, Timeout::forever(), ec), 0u);
    EXPECT_EQ(ec, errc::no_data);  // ERROR_NO_DATA, without waiting for the forever given
    c.client.send(test::as_bytes("bits"), generous);
    // The bytes are in the pipe once the client's send returned.
    EXPECT_EQ(c.server.receive(buffer, Timeout::forever(), ec), 4u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.server.receive(std::span<std::byte>(), Timeout::forever(), ec), 0u);
    EXPECT_EQ(ec, errc::no_data) << "an empty read of an empty pipe";
}

TEST_P(NowaitConformance, AWriteThatDoesNotFitTheQuotaWritesNothingAndSucceeds) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("PIPE_NOWAIT works against the buffer quotas, which stay on their host (docs/gateway.md)");
    auto c = nowait_pair("nowait-write", GetParam());
    std::error_code ec;
    EXPECT_EQ(send_of(c.server, 513, ec), 0u) << "no partial write into a 512-byte buffer";
    EXPECT_FALSE(ec) << ec.message();
    PeekResult peeked = c.client.peek({}, ec);
    EXPECT_EQ(peeked.total_available, 0u) << "nothing of it is in the pipe";
    EXPECT_EQ(send_of(c.server, 512, ec), 512u) << "an exact fit is written";
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(send_of(c.server, 1, ec), 0u) << "the quota is full until the reader takes";
    EXPECT_FALSE(ec) << ec.message();
    std::vector<std::byte> buffer(1024);
    EXPECT_EQ(c.client.receive(buffer, generous, ec), 512u);
    EXPECT_EQ(send_of(c.server, 5, ec), 5u) << "room again once taken";
    EXPECT_FALSE(ec) << ec.message();
    if (GetParam() == PipeType::message) {
        EXPECT_EQ(send_of(c.server, 0, ec), 0u);
        EXPECT_FALSE(ec) << "an empty message always fits";
    }
}

// Nothing tells when a read in another thread has begun to wait; until it
// has, a write that only fits with its help writes nothing: tried again.
std::size_t send_while_a_read_waits(MessageChannel& writer, std::size_t size) {
    const auto give_up = std::chrono::steady_clock::now() + generous;
    for (;;) {
        std::error_code ec;
        const auto n = send_of(writer, size, ec);
        EXPECT_FALSE(ec) << ec.message();
        if (n > 0 || ec || std::chrono::steady_clock::now() > give_up) return n;
        std::this_thread::yield();
    }
}

TEST_P(NowaitConformance, AReadWaitingAtTheOtherEndTakesItsPartAtOnce) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("PIPE_NOWAIT works against the buffer quotas, which stay on their host (docs/gateway.md)");
    auto c = nowait_pair("nowait-pending", GetParam());
    std::vector<std::byte> one(1);
    std::error_code read_error;
    auto first = std::async(std::launch::async, [&] { return c.client.receive(one, generous, read_error); });
    // 513 into a 512-byte quota: the waiting 1-byte read takes one, the rest fits.
    EXPECT_EQ(send_while_a_read_waits(c.server, 513), 513u);
    EXPECT_EQ(first.get(), 1u);
    std::vector<std::byte> rest(1024);
    std::error_code ec;
    EXPECT_EQ(c.client.receive(rest, generous, ec), 512u) << "the rest is in the pipe";
    if (GetParam() == PipeType::byte) {
        // 514: it does not fit even so; a byte pipe writes the part the read takes.
        auto second = std::async(std::launch::async, [&] { return c.client.receive(one, generous, read_error); });
        EXPECT_EQ(send_while_a_read_waits(c.server, 514), 1u);
        EXPECT_EQ(second.get(), 1u);
        const auto peeked = c.client.peek({}, ec);
        EXPECT_EQ(peeked.total_available, 0u) << "nothing more of it was written";
    }
}

TEST(NowaitConformance, AnAcceptWithoutAClientIsListeningAndAClientThatCameAndWentIsNoData) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    ServerOptions options;
    options.wait_mode = WaitMode::nowait;
    const auto name = test::unique_pipe_name("nowait-accept");
    auto server = test::create_instance(name, options);
    std::error_code ec;
    server.accept(Timeout::forever(), ec);
    EXPECT_EQ(ec, errc::pipe_listening);  // ERROR_PIPE_LISTENING, at once
    {
        auto client = test::open_channel(name);
        server.accept(Timeout::forever(), ec);
        EXPECT_EQ(ec, errc::already_connected);  // ERROR_PIPE_CONNECTED
    }
    server.accept(Timeout::forever(), ec);
    EXPECT_EQ(ec, errc::no_data);  // the client came and closed: ERROR_NO_DATA
    server.disconnect(ec);
    EXPECT_FALSE(ec) << ec.message();
    server.accept(Timeout::forever(), ec);
    EXPECT_EQ(ec, errc::pipe_listening) << "listening again after the disconnect, and not waiting";
    auto next = test::open_channel(name);
    server.accept(Timeout::forever(), ec);
    EXPECT_EQ(ec, errc::already_connected) << "the next client is served";
}

TEST(NowaitConformance, TheModeIsEachEndsOwnAndCanBeChanged) {
    auto c = nowait_pair("nowait-mode", PipeType::message);
    EXPECT_EQ(wait_mode_of(c.server), WaitMode::nowait);
    EXPECT_EQ(wait_mode_of(c.client), WaitMode::wait) << "a client opens in wait mode";

    std::error_code ec;
    c.client.set_wait_mode(WaitMode::nowait, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(wait_mode_of(c.client), WaitMode::nowait);
    std::vector<std::byte> buffer(64);
    EXPECT_EQ(c.client.receive(buffer, Timeout::forever(), ec), 0u);
    EXPECT_EQ(ec, errc::no_data);

    c.server.set_wait_mode(WaitMode::wait, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(wait_mode_of(c.server), WaitMode::wait);
    EXPECT_EQ(wait_mode_of(c.client), WaitMode::nowait) << "the other end keeps its own";
    EXPECT_EQ(c.server.receive(buffer, std::chrono::milliseconds(50), ec), 0u);
    EXPECT_EQ(ec, errc::timed_out) << "a waiting end waits again";

    // The read mode is set without touching the wait mode, and the other way round.
    c.client.set_read_mode(ReadMode::byte, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(wait_mode_of(c.client), WaitMode::nowait);
    const auto info = c.client.info(ec);
    EXPECT_EQ(info.read_mode, ReadMode::byte);
}

TEST(NowaitConformance, ATransactOnANowaitEndStillWaitsForItsReply) {
    auto c = test::connect_pair("nowait-transact");
    std::error_code ec;
    c.client.set_wait_mode(WaitMode::nowait, ec);
    ASSERT_FALSE(ec) << ec.message();
    auto replier = std::async(std::launch::async, [&] {
        const auto request = c.server.receive_message(generous);
        c.server.send(test::as_bytes("reply to " + std::string(reinterpret_cast<const char*>(request.data()), request.size())),
                      generous);
    });
    std::vector<std::byte> reply(64);
    const auto n = c.client.transact(test::as_bytes("ping"), reply, generous, ec);
    EXPECT_FALSE(ec) << ec.message();  // TransactNamedPipe is not one of the calls nowait changes
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply.data()), n), "reply to ping");
    replier.get();
}

TEST(NowaitConformance, AWriterToAReaderThatDoesNotReadNeverWaitsEvenWithALargeQuota) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("PIPE_NOWAIT works against the buffer quotas, which stay on their host (docs/gateway.md)");
    ServerOptions options;
    options.in_buffer_size = options.out_buffer_size = 4 << 20;  // more than a socket's buffer
    options.wait_mode = WaitMode::nowait;
    auto c = test::connect_pair("nowait-large-quota", options);
    std::size_t written = 0;
    for (int i = 0; i < 80; ++i) {  // 5 MiB: past the quota too
        std::error_code ec;
        const auto n = send_of(c.server, 65536, ec);
        ASSERT_FALSE(ec) << ec.message();
        ASSERT_TRUE(n == 0 || n == 65536) << "all of a message or nothing: " << n;
        written += n;
        if (n == 0) break;
    }
    EXPECT_GT(written, 0u);
    EXPECT_LE(written, std::size_t{4} << 20) << "never past the quota";
    std::vector<std::byte> buffer(65536);
    for (std::size_t taken = 0; taken < written;) {
        std::error_code ec;
        const auto n = c.client.receive(buffer, generous, ec);
        ASSERT_EQ(n, 65536u) << "whole messages only: " << ec.message();
        taken += n;
    }
}

TEST(NowaitConformance, APeerThatClosedIsStillABrokenPipeOnReadAndPipeClosingOnWrite) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("PIPE_NOWAIT works against the buffer quotas, which stay on their host (docs/gateway.md)");
    auto c = nowait_pair("nowait-closed", PipeType::message);
    c.client.send(test::as_bytes("last"), generous);
    c.client = MessageChannel();
    std::vector<std::byte> buffer(64);
    std::error_code ec;
    EXPECT_EQ(c.server.receive(buffer, Timeout::forever(), ec), 4u) << "what came first is still read";
    EXPECT_FALSE(ec) << ec.message();
    c.server.receive(buffer, Timeout::forever(), ec);
    EXPECT_EQ(ec, errc::broken_pipe);  // ERROR_BROKEN_PIPE, not "nothing yet"
    send_of(c.server, 4, ec);
    EXPECT_EQ(ec, errc::pipe_closing);  // ERROR_NO_DATA on a write
}

}  // namespace
}  // namespace pipeslot
