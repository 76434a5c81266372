// The framing protocol's decoder facing malformed bytes from a peer: every
// case ends in a clear error, never a crash, a hang or a large allocation.
#include "../support/memory_source.hpp"
#include "common/framing.hpp"

#include <gtest/gtest.h>

namespace pipeslot {
namespace {

using detail::FrameKind;

std::vector<std::byte> frame(FrameKind kind, std::string payload, std::uint32_t claimed = UINT32_MAX) {
    const auto header = detail::encode_header({kind, claimed == UINT32_MAX ? static_cast<std::uint32_t>(payload.size()) : claimed});
    std::vector<std::byte> out(header.begin(), header.end());
    for (char c : payload) out.push_back(static_cast<std::byte>(c));
    return out;
}

std::vector<std::byte> join(std::initializer_list<std::vector<std::byte>> parts) {
    std::vector<std::byte> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// Receives until an error; returns the messages and the error.
std::pair<std::vector<std::string>, std::error_code> read_all(std::vector<std::byte> bytes, std::size_t chunk = 3,
                                                              ReadMode mode = ReadMode::message) {
    test::MemorySource source(std::move(bytes), chunk);
    detail::FrameReader reader;
    std::vector<std::string> messages;
    const detail::Deadline deadline(Timeout::none());
    for (int guard = 0; guard < 1000; ++guard) {
        std::vector<std::byte> buffer(64);
        std::error_code ec;
        const auto n = reader.receive(buffer, mode, source, deadline, ec);
        if (ec && ec != errc::more_data) return {messages, ec};
        messages.emplace_back(reinterpret_cast<const char*>(buffer.data()), n);
    }
    ADD_FAILURE() << "the reader never stopped";
    return {messages, {}};
}

TEST(Framing, HeadersRoundTrip) {
    const auto bytes = detail::encode_header({FrameKind::message, 123456});
    const auto header = detail::decode_header(bytes);
    ASSERT_TRUE(header);
    EXPECT_EQ(header->kind, FrameKind::message);
    EXPECT_EQ(header->length, 123456u);
}

TEST(Framing, MessagesArriveWholeWhateverTheChunking) {
    const auto bytes = join({frame(FrameKind::message, "alpha"), frame(FrameKind::message, ""),
                             frame(FrameKind::message, "gamma")});
    for (std::size_t chunk : {1u, 2u, 7u, 100u}) {
        const auto [messages, ec] = read_all(bytes, chunk);
        EXPECT_EQ(messages, (std::vector<std::string>{"alpha", "", "gamma"})) << chunk;
        EXPECT_EQ(ec, errc::broken_pipe) << "the end of the stream is the peer closing";
    }
}

TEST(Framing, MalformedHeadersAreProtocolErrors) {
    auto wrong_kind = frame(FrameKind::message, "x");
    wrong_kind[0] = std::byte{9};
    auto reserved = frame(FrameKind::message, "x");
    reserved[2] = std::byte{1};
    const auto lying = frame(FrameKind::message, "", static_cast<std::uint32_t>(max_message_size) + 1);
    const auto open_mid_stream = frame(FrameKind::open, "\x02\x03\x00\x00\x00\x00\x00\x00");
    const auto long_disconnect = frame(FrameKind::disconnect, "oops");
    for (const auto& bad : {wrong_kind, reserved, lying, open_mid_stream, long_disconnect}) {
        const auto [messages, ec] = read_all(join({frame(FrameKind::message, "ok"), bad, frame(FrameKind::message, "after")}));
        EXPECT_EQ(messages, std::vector<std::string>{"ok"}) << "what came before is delivered";
        EXPECT_EQ(ec, errc::protocol_error);
    }
}

TEST(Framing, TruncatedStreamsAreBrokenPipes) {
    const auto whole = frame(FrameKind::message, "truncated payload");
    for (std::size_t cut : {1u, 7u, 8u, 12u}) {
        const auto [messages, ec] = read_all({whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)});
        EXPECT_EQ(ec, errc::broken_pipe) << cut;
    }
}

TEST(Framing, ADisconnectMarkerDiscardsWhatIsBufferedAndEndsTheChannel) {
    const auto [messages, ec] = read_all(join({frame(FrameKind::message, "dropped"), frame(FrameKind::disconnect, "")}), 1000);
    EXPECT_TRUE(messages.empty()) << "the marker was in the same read as the data";
    EXPECT_EQ(ec, errc::not_connected);
}

TEST(Framing, GarbageIsRejectedWithoutAllocatingWhatItClaims) {
    std::vector<std::byte> garbage(65 * 1024);
    std::uint32_t x = 12345;
    for (auto& b : garbage) b = static_cast<std::byte>((x = x * 1103515245 + 12345) >> 24);
    garbage[0] = std::byte{1};  // looks like a message header at first
    const auto [messages, ec] = read_all(garbage, 4096, ReadMode::byte);
    EXPECT_TRUE(ec == errc::protocol_error || ec == errc::broken_pipe) << ec.message();
}

}  // namespace
}  // namespace pipeslot
