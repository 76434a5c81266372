// \\SERVER\pipe\NAME, written once for every backend: on POSIX through a
// gateway this test starts on loopback, on Windows over the system's SMB
// (\\127.0.0.1 is this host reached as a remote one). Wine has no remote
// pipes; the fake has no network.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <future>

namespace pipeslot {
namespace {

using test::generous;

class RemoteConformance : public ::testing::Test {
protected:
    void SetUp() override {
        PIPESLOT_SKIP_UNDER_FAKE("network");
        if (test::running_under_wine()) GTEST_SKIP() << "Wine has no remote pipes (no SMB); Windows runs this";
#ifndef _WIN32
        GatewayOptions o;
        o.port = 0;
        o.plaintext_on_loopback = true;
        gateway_ = Gateway::start(o);
        GatewayClientOptions c;
        c.plaintext_on_loopback = true;
        ASSERT_FALSE(set_gateway_client_options(c));
        client_.gateway_port = gateway_.port();
#endif
        name_ = test::unique_pipe_name("remote");
    }
    void TearDown() override {
#ifndef _WIN32
        (void)set_gateway_client_options({});
#endif
    }
    std::string remote() const { return "\\\\127.0.0.1\\pipe\\" + name_.substr(name_.rfind('\\') + 1); }
    PipeInstance server(bool accept_remote, unsigned max_instances = 2) {
        ServerOptions o;
        o.reject_remote_clients = !accept_remote;
        o.max_instances = max_instances;
        return test::create_instance(name_, o);
    }

    Gateway gateway_;
    ClientOptions client_;
    std::string name_;
};

TEST_F(RemoteConformance, MessagesKeepTheirBoundariesAndMoreDataAcrossTheNetwork) {
    auto s = server(true);
    auto c = MessageChannel::open(remote(), client_);
    std::error_code ec;
    s.accept(generous, ec);
    EXPECT_EQ(ec, errc::already_connected) << ec.message();
    c.send(test::as_bytes(std::string("first message")), generous);
    c.send(test::as_bytes(std::string("second")), generous);
    std::vector<std::byte> small(5);
    EXPECT_EQ(s.receive(small, generous, ec), 5u);
    EXPECT_EQ(ec, errc::more_data);
    std::vector<std::byte> rest(64);
    EXPECT_EQ(test::text_of(std::span(rest).first(s.receive(rest, generous, ec))), " message");
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(test::text_of(std::span(rest).first(s.receive(rest, generous, ec))), "second");
    s.send(test::as_bytes(std::string("reply")), generous);
    std::vector<std::byte> reply(64);
    EXPECT_EQ(test::text_of(std::span(reply).first(c.receive(reply, generous, ec))), "reply");
}

// Windows: PIPE_REJECT_REMOTE_CLIENTS refuses a remote CreateFile with ERROR_ACCESS_DENIED.
TEST_F(RemoteConformance, APipeThatRejectsRemoteClientsRefusesThemAndServesLocalOnes) {
    auto s = server(false);
    std::error_code ec;
    MessageChannel::open(remote(), client_, ec);
    EXPECT_EQ(ec, errc::access_denied);
    auto local = test::open_channel(name_);
    EXPECT_TRUE(local.is_open());
}

TEST_F(RemoteConformance, BusyWaitingAndNotFoundAreTheLocalRules) {
    std::error_code ec;
    MessageChannel::open(remote(), client_, ec);
    EXPECT_EQ(ec, errc::not_found) << "no such pipe on that host";
    auto s = server(true, 1);
    auto first = MessageChannel::open(remote(), client_);
    MessageChannel::open(remote(), client_, ec);
    EXPECT_EQ(ec, errc::pipe_busy);
    auto waiting = client_;
    waiting.wait = generous;
    auto second = std::async(std::launch::async, [&] {
        std::error_code e;
        auto c = MessageChannel::open(remote(), waiting, e);
        return e;
    });
    s.accept(generous, ec);
    first.close();
    s.disconnect(ec);
    s.accept(generous, ec);
    EXPECT_FALSE(second.get()) << "served once the instance was free";
}

TEST_F(RemoteConformance, TransactAndCallGoOverTheNetwork) {
    auto s = server(true);
    auto echo = std::async(std::launch::async, [&] {
        for (int i = 0; i < 2; ++i) {
            std::error_code e;
            s.accept(generous, e);
            auto request = s.receive_message(generous, e);
            if (!e) s.send(request, generous, e);
            s.flush(e);
            s.disconnect(e);
        }
    });
    auto c = MessageChannel::open(remote(), [&] {
        auto o = client_;
        o.read_mode = ReadMode::message;
        return o;
    }());
    std::vector<std::byte> reply(32);
    std::error_code ec;
    EXPECT_EQ(test::text_of(std::span(reply).first(c.transact(test::as_bytes(std::string("ping")), reply, generous, ec))),
              "ping");
    EXPECT_FALSE(ec) << ec.message();
    c.close();
    auto open = client_;
    open.wait = generous;
    const auto n = native_ipc().call(remote(), test::as_bytes(std::string("call")), reply, open, generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(test::text_of(std::span(reply).first(n)), "call");
    echo.get();
}

}  // namespace
}  // namespace pipeslot
