// The quotas' shared page on its own (backends/posix/flow_page.hpp): both
// ends in this process, one mapping each, as a server and its client have.
#include "posix/flow_page.hpp"

#include <pipeslot/error.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <fcntl.h>
#include <future>
#include <sys/mman.h>
#include <unistd.h>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using posix::FlowPage;

struct Ends {
    std::shared_ptr<FlowPage::Spare> spare = FlowPage::new_spare();
    std::shared_ptr<FlowPage> server, client;
    int memfd = -1;  // the server's, which it sends again with a page it gives again
};

// A server's page for this process, and the client's view of it from the descriptor sent.
Ends connect_ends(const std::shared_ptr<FlowPage::Spare>& spare = FlowPage::new_spare()) {
    Ends e;
    e.spare = spare;
    EXPECT_FALSE(FlowPage::for_client(spare, ::getpid(), ::getuid(), e.server, e.memfd));
    EXPECT_GE(e.memfd, 0);
    EXPECT_FALSE(FlowPage::adopt(::fcntl(e.memfd, F_DUPFD_CLOEXEC, 0), e.client));  // the client's copy, as SCM_RIGHTS gives it
    e.server->set_quota(100);
    e.client->set_quota(100);
    return e;
}

TEST(FlowPage, AWriteOverTheQuotaWaitsForWhatTheReaderTakes) {
    auto e = connect_ends();
    EXPECT_EQ(e.client->will_send(60), 0u);
    EXPECT_EQ(e.client->will_send(60), 20u) << "120 unread of a 100 quota: 20 must be taken first";
    EXPECT_EQ(e.client->will_send(0), 0u) << "an empty write never waits";
    EXPECT_EQ(e.client->flush_target(), 120u);
    e.server->took(20);
    EXPECT_TRUE(e.client->taken_by_peer(20));
    EXPECT_FALSE(e.client->taken_by_peer(21));
    e.server->took(100);
    EXPECT_EQ(e.client->flush_target(), 0u) << "all taken: nothing to flush";
    EXPECT_EQ(e.server->flush_target(), 0u) << "the other direction is its own";
}

TEST(FlowPage, ASleepingWriterIsWokenByTheTakeThatSatisfiesIt) {
    auto e = connect_ends();
    ASSERT_EQ(e.client->will_send(150), 50u);
    auto woken = std::async(std::launch::async, [&] {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        for (auto seen = e.client->changes(); !e.client->taken_by_peer(50) && std::chrono::steady_clock::now() < give_up;
             seen = e.client->changes())
            e.client->wait(seen, 50, give_up);
        return e.client->taken_by_peer(50);
    });
    e.server->took(50);
    ASSERT_EQ(woken.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(woken.get());
}

TEST(FlowPage, AReaderThatStopsIsSeenAndWakesTheWriter) {
    auto e = connect_ends();
    ASSERT_EQ(e.server->will_send(200), 100u);
    auto seen = std::async(std::launch::async, [&] {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        for (auto seen = e.server->changes();
             !e.server->peer_stopped_reading() && std::chrono::steady_clock::now() < give_up; seen = e.server->changes())
            e.server->wait(seen, 100, give_up);
        return e.server->peer_stopped_reading();
    });
    e.client->stop_reading();
    ASSERT_EQ(seen.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(seen.get());
    EXPECT_FALSE(e.client->peer_stopped_reading());
}

TEST(FlowPage, ADetachedPageEndsItsWritersWaitAtOnce) {
    auto e = connect_ends();
    ASSERT_EQ(e.server->will_send(200), 100u);
    const auto seen = e.server->changes();
    e.server->detach();  // the server's disconnect, before the writer sleeps
    const auto start = std::chrono::steady_clock::now();
    e.server->wait(seen, 100, start + 10s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "a wake after `seen` was taken is not lost";
    EXPECT_TRUE(e.server->detached());
}

TEST(FlowPage, AFileThatIsNotASealedPageIsRefused) {
    const int plain = ::memfd_create("not-sealed", MFD_CLOEXEC);
    ASSERT_GE(plain, 0);
    ASSERT_EQ(::ftruncate(plain, 4096), 0);
    std::shared_ptr<FlowPage> page;
    EXPECT_EQ(FlowPage::adopt(plain, page), errc::protocol_error) << "its owner could shrink it under the mapping";

    const int small = ::memfd_create("too-small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(small, 0);
    ASSERT_EQ(::ftruncate(small, 64), 0);
    ASSERT_EQ(::fcntl(small, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
    EXPECT_EQ(FlowPage::adopt(small, page), errc::protocol_error);
    EXPECT_FALSE(page);
}

TEST(FlowPage, AnInstanceGivesItsPageAgainOnlyToTheSameProcessOnceBothHaveLetGo) {
    const auto spare = FlowPage::new_spare();
    auto first = connect_ends(spare);
    const int first_fd = first.memfd;
    first.client->took(5);
    first.client.reset();  // the client lets go, then the server: the instance keeps the page
    first.server.reset();

    std::shared_ptr<FlowPage> other_process, same_process;
    int fd = -1;
    ASSERT_FALSE(FlowPage::for_client(spare, ::getpid() + 1, ::getuid(), other_process, fd));
    EXPECT_NE(fd, first_fd) << "another process gets a page of its own";
    ASSERT_FALSE(FlowPage::for_client(spare, ::getpid(), ::getuid(), same_process, fd));
    EXPECT_EQ(fd, first_fd) << "the same process gets it again";
    same_process->set_quota(0);
    EXPECT_EQ(same_process->will_send(1), 1u) << "as new: what the last client took is not counted";

    // A page whose client still holds it is never given again.
    const auto spare2 = FlowPage::new_spare();
    auto held = connect_ends(spare2);
    held.server.reset();
    std::shared_ptr<FlowPage> next;
    ASSERT_FALSE(FlowPage::for_client(spare2, ::getpid(), ::getuid(), next, fd));
    EXPECT_NE(fd, held.memfd);
}

}  // namespace
}  // namespace pipeslot
