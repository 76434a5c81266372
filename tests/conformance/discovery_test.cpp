// Conformance: locating named-pipe servers with mailslots.
#include "../support/support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::Field;

// To every host where the backend can (loopback only in tests), else to this host.
std::string everyone(std::string local_slot) {
    if (test::native_under_wine()) return local_slot;  // Wine has no \\* mailslots
    return local_slot.replace(2, 1, "*");
}

TEST(DiscoveryConformance, AnnouncedServersAreLocatedAndReachable) {
    const auto pipe = test::unique_pipe_name("announced");
    const auto slot = test::unique_mailslot_name("announce");
    std::error_code ec;
    auto server = PipeServer::start(pipe, {}, 1, PipeServer::RequestHandler([](std::span<const std::byte> r) {
        return std::vector<std::byte>(r.begin(), r.end());
    }), ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    auto announcer = Announcer::start(pipe, everyone(slot), 50ms, ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    const auto found = locate_servers(slot, 1s, ec, test::ipc());
    EXPECT_FALSE(ec) << ec.message();
    ASSERT_THAT(found, Contains(Field(&Located::pipe, pipe)));
    EXPECT_EQ(found.front().host, test::ipc().host_name());
    std::vector<std::byte> reply(16);
    const auto n = test::ipc().call(found.front().pipe, test::as_bytes(std::string("found you")), reply, test::generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(test::text_of(std::span(reply).first(n)), "found you");
}

TEST(DiscoveryConformance, ServersAnswerAQuery) {
    const auto pipe = test::unique_pipe_name("queried");
    const auto slot = test::unique_mailslot_name("query");
    std::error_code ec;
    auto responder = Responder::start(pipe, slot, ec, test::ipc());
    ASSERT_FALSE(ec) << ec.message();
    const auto found = query_servers(everyone(slot), 1s, ec, test::ipc());
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_THAT(found, Contains(Field(&Located::pipe, pipe)));
    responder.stop();
}

TEST(DiscoveryConformance, BadArgumentsAreRejected) {
    std::error_code ec;
    Announcer::start(R"(\\elsewhere\pipe\x)", everyone(test::unique_mailslot_name("a")), 50ms, ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_argument) << "a server announces its own pipes";
    Announcer::start(test::unique_pipe_name("p"), everyone(test::unique_mailslot_name("b")), 0ms, ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_argument) << "an interval of zero";
    Announcer::start("not a pipe", everyone(test::unique_mailslot_name("c")), 50ms, ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_name);
    locate_servers(test::unique_mailslot_name("d"), Timeout::forever(), ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_argument) << "locating needs an end";
    query_servers(everyone(test::unique_mailslot_name("e")), Timeout(-1ms), ec, test::ipc());
    EXPECT_EQ(ec, errc::invalid_argument);
    if (!test::native_under_wine()) {
        std::string long_pipe = R"(\\.\pipe\)";
        for (int i = 0; i < 200; ++i) long_pipe += "\xe6\x97\xa5";  // 600 bytes of UTF-8
        Announcer::start(long_pipe, test::unique_mailslot_name("f").replace(2, 1, "*"), 50ms, ec, test::ipc());
        EXPECT_EQ(ec, errc::message_too_large) << "an announcement to other hosts is at most 424 bytes";
    }
}

}  // namespace
}  // namespace pipeslot
