// The POSIX backend's blocking socket calls: a signal cuts them short on
// cancel() (backends/posix/canceller.hpp). These check what that must not
// break: a signal that is not a cancel, and threads that block signals.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <future>
#include <pthread.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::generous;

struct Connected {
    PipeInstance server;
    MessageChannel client;
};

Connected connect_pair(const std::string& purpose) {
    const auto name = test::unique_pipe_name(purpose);
    Connected c{test::create_instance(name), test::open_channel(name)};
    std::error_code ec;
    c.server.accept(generous, ec);
    EXPECT_EQ(ec, errc::already_connected) << ec.message();
    return c;
}

int interrupt_signal() { return SIGRTMAX - 5; }  // the default; the tests leave PIPESLOT_INTERRUPT_SIGNAL unset

// Waits until thread `tid` of this process sleeps in the kernel: in the test
// below, inside its receive. False if it never does within the deadline.
bool wait_until_asleep(pid_t tid) {
    const auto deadline = std::chrono::steady_clock::now() + generous;
    while (std::chrono::steady_clock::now() < deadline) {
        std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const auto after_name = text.rfind(')');
        if (after_name != std::string::npos && after_name + 2 < text.size() && text[after_name + 2] == 'S') return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

// One cancel() must end a receive under way, whichever way it waits.
void one_cancel_ends_a_blocked_receive(bool block_signals) {
    auto c = connect_pair("one-cancel");
    std::promise<pid_t> started;
    auto reader = std::async(std::launch::async, [&] {
        if (block_signals) {
            sigset_t all;
            sigfillset(&all);
            ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
        }
        started.set_value(static_cast<pid_t>(::syscall(SYS_gettid)));
        std::vector<std::byte> buffer(64);
        std::error_code ec;
        c.client.receive(buffer, generous, ec);
        return ec;
    });
    ASSERT_TRUE(wait_until_asleep(started.get_future().get()));
    c.client.cancel();
    ASSERT_EQ(reader.wait_for(generous), std::future_status::ready);
    EXPECT_EQ(reader.get(), errc::cancelled);
}

TEST(PosixInterrupt, AStraySignalDoesNotDisturbABlockedReceive) {
    auto c = connect_pair("stray-signal");
    std::vector<std::byte> buffer(64);
    std::error_code ec;
    c.client.receive(buffer, 1ms, ec);  // the first blocking call installs the handler
    struct sigaction installed {};
    ::sigaction(interrupt_signal(), nullptr, &installed);
    ASSERT_NE(installed.sa_handler, SIG_DFL) << "the interrupt signal's handler is installed";

    std::promise<void> started;
    std::error_code reader_error;
    std::string got;
    std::thread reader([&] {
        started.set_value();
        const auto n = c.client.receive(buffer, generous, reader_error);
        got = test::text_of(std::span(buffer).first(n));
    });
    started.get_future().wait();
    // Whether each lands before, during or after the receive, none may end it.
    for (int i = 0; i < 50; ++i) {
        ::pthread_kill(reader.native_handle(), interrupt_signal());
        std::this_thread::sleep_for(1ms);
    }
    c.server.send(test::as_bytes("still waiting"), generous);
    reader.join();
    EXPECT_FALSE(reader_error) << reader_error.message();
    EXPECT_EQ(got, "still waiting");
}

TEST(PosixInterrupt, AThreadThatBlocksEverySignalCanStillBeCancelled) {
    auto c = connect_pair("masked-thread");
    auto reader = std::async(std::launch::async, [&] {
        sigset_t all;
        sigfillset(&all);
        ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
        std::vector<std::byte> buffer(64);
        std::error_code ec;
        c.client.receive(buffer, Timeout::forever(), ec);
        return ec;
    });
    while (reader.wait_for(10ms) != std::future_status::ready) c.client.cancel();
    EXPECT_EQ(reader.get(), errc::cancelled);
    c.server.send(test::as_bytes("after"), generous);
    EXPECT_EQ(test::text_of(c.client.receive_message(generous)), "after");
}

TEST(PosixInterrupt, OneCancelEndsAReceiveBlockedInRecv) { one_cancel_ends_a_blocked_receive(false); }

TEST(PosixInterrupt, OneCancelEndsAReceiveWaitingInPoll) { one_cancel_ends_a_blocked_receive(true); }

}  // namespace
}  // namespace pipeslot
