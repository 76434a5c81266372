// The example application's unit tests: with the in-memory fake (no OS
// resources at all), and with mocks for the cases a fake would not reach.
#include "job_client.hpp"

#include <pipeslot/testing/fake.hpp>
#include <pipeslot/testing/mocks.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

namespace {

using namespace std::chrono_literals;
using pipeslot::errc;
using pipeslot::testing::FakeNetwork;
using pipeslot::testing::FakeSystem;
using pipeslot::testing::MockIpcSystem;
using pipeslot::testing::SetErrorAndReturn;
using ::testing::_;
using ::testing::Return;

const std::string pipe_name = R"(\\.\pipe\jobs)";

// A job server on `host`: four instances, replies "done: JOB", announced every 20 ms.
struct FakeJobServer {
    pipeslot::PipeServer server;
    pipeslot::Announcer announcer;
    explicit FakeJobServer(FakeSystem& host) {
        std::error_code ec;
        server = pipeslot::PipeServer::start(
            pipe_name, {}, 4,
            pipeslot::PipeServer::RequestHandler([](std::span<const std::byte> job) {
                std::string reply = "done: " + std::string(reinterpret_cast<const char*>(job.data()), job.size());
                const auto bytes = std::as_bytes(std::span(reply));
                return std::vector<std::byte>(bytes.begin(), bytes.end());
            }),
            ec, host);
        EXPECT_FALSE(ec) << ec.message();
        announcer = pipeslot::Announcer::start(pipe_name, pipeslot::default_announce_slot, 20ms, ec, host);
        EXPECT_FALSE(ec) << ec.message();
    }
};

jobs::ClientOptions quick() {
    jobs::ClientOptions o;
    o.locate_for = 200ms;
    return o;
}

TEST(JobClientWithTheFake, LocatesTheServerAndRunsAJob) {
    FakeSystem host;
    FakeJobServer server(host);
    jobs::JobClient client(host, quick());
    std::error_code ec;
    EXPECT_EQ(client.run("backup", ec), "done: backup");
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(client.locate(ec), pipe_name) << "a server on this host: \\\\.\\pipe\\jobs";
}

TEST(JobClientWithTheFake, FindsAServerOnAnotherHost) {
    FakeNetwork network;
    FakeSystem server_host(network, "buildbox");
    FakeSystem client_host(network, "laptop");
    FakeJobServer server(server_host);
    jobs::JobClient client(client_host, quick());
    std::error_code ec;
    EXPECT_EQ(client.locate(ec), R"(\\buildbox\pipe\jobs)");
}

TEST(JobClientWithTheFake, RetriesWhileTheServerIsBusy) {
    FakeSystem host;
    FakeJobServer server(host);
    jobs::JobClient client(host, quick());
    std::error_code ec;
    ASSERT_TRUE(client.locate(ec));
    host.fail_next_open(errc::pipe_busy);  // one refusal, then it works
    EXPECT_EQ(client.run("retry me", ec), "done: retry me");
    EXPECT_FALSE(ec) << ec.message();
}

TEST(JobClientWithTheFake, NoServerIsNotFound) {
    FakeSystem host;
    jobs::JobClient client(host, quick());
    std::error_code ec;
    client.run("anyone?", ec);
    EXPECT_EQ(ec, errc::not_found);
}

// The mailslot the mock hands to discovery carries one announcement of
// \\.\pipe\jobs from this host, then stays silent.
void announce_server_here(MockIpcSystem& ipc) {
    EXPECT_CALL(ipc, host_name()).WillRepeatedly(Return("here"));
    EXPECT_CALL(ipc, do_create_mailslot(_, _, _)).WillOnce([](auto&&...) {
        auto slot = std::make_unique<pipeslot::testing::MockMailslotBackend>();
        const std::string announcement = "pipeslot-announce/1\nhere\njobs";
        EXPECT_CALL(*slot, receive(_, _))
            .WillOnce([announcement](std::span<std::byte> buffer, std::error_code&) {
                std::memcpy(buffer.data(), announcement.data(), announcement.size());
                return announcement.size();
            })
            .WillRepeatedly(SetErrorAndReturn<1>(errc::timed_out, std::size_t{0}));
        return slot;
    });
}

TEST(JobClientWithMocks, GivesUpAfterItsAttemptsWhenAlwaysBusy) {
    MockIpcSystem ipc;
    announce_server_here(ipc);
    EXPECT_CALL(ipc, do_open_channel(_, _, _))
        .Times(3)
        .WillRepeatedly(SetErrorAndReturn<2>(errc::pipe_busy, nullptr));
    jobs::JobClient client(ipc, quick());
    std::error_code ec;
    client.run("never", ec);
    EXPECT_EQ(ec, errc::pipe_busy);
}

TEST(JobClientWithMocks, ReportsAServerThatGoesAwayMidJob) {
    MockIpcSystem ipc;
    announce_server_here(ipc);
    EXPECT_CALL(ipc, do_open_channel(_, _, _)).WillOnce([](auto&&...) {
        auto channel = std::make_unique<pipeslot::testing::MockChannelBackend>();
        EXPECT_CALL(*channel, send(_, _, _)).WillOnce(Return(std::size_t{4}));
        EXPECT_CALL(*channel, receive(_, _, _)).WillOnce(SetErrorAndReturn<2>(errc::broken_pipe, std::size_t{0}));
        return channel;
    });
    jobs::JobClient client(ipc, quick());
    std::error_code ec;
    client.run("work", ec);
    EXPECT_EQ(ec, errc::broken_pipe);
}

}  // namespace
