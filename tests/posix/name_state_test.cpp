// The broker's state machine on its own (backends/posix/name_state.hpp): the
// rules of Windows' connection model, decided in one place.
#include "posix/name_state.hpp"

#include <gtest/gtest.h>

namespace pipeslot {
namespace {

using posix::InstanceKey;
using posix::NameState;
using Decision = NameState::Decision;

detail::InstanceParams params(unsigned max = unlimited_instances) {
    detail::InstanceParams p;
    p.max_instances = max;
    return p;
}

detail::OpenRequest request(std::uint32_t wait_ms = 0) {
    detail::OpenRequest r;
    r.wait_ms = wait_ms;
    return r;
}

TEST(NameState, FreeInstancesGoInTheOrderTheyBeganListening) {
    NameState s;
    ASSERT_FALSE(s.add({1, 1}, params(), 30));
    ASSERT_FALSE(s.add({0, 2}, params(), 10));  // in another process, but listening longer
    ASSERT_FALSE(s.add({2, 3}, params(), 20));
    EXPECT_EQ(s.open(100, request(), 40).instance, (InstanceKey{0, 2}));
    EXPECT_EQ(s.open(101, request(), 40).instance, (InstanceKey{2, 3}));
    s.listen({0, 2}, 50);  // accept() after a disconnect: at the back of the line
    EXPECT_EQ(s.open(102, request(), 60).instance, (InstanceKey{1, 1}));
    EXPECT_EQ(s.open(103, request(), 60).instance, (InstanceKey{0, 2}));
    const auto busy = s.open(104, request(), 60);
    EXPECT_EQ(busy.kind, Decision::refuse);
    EXPECT_EQ(busy.error, errc::pipe_busy);
}

TEST(NameState, WaitingClientsAreServedInTheOrderTheyBeganWaiting) {
    NameState s;
    ASSERT_FALSE(s.add({0, 1}, params(), 1));
    ASSERT_EQ(s.open(10, request(), 2).kind, Decision::connect);
    EXPECT_EQ(s.open(11, request(1000), 3).kind, Decision::wait);
    EXPECT_EQ(s.open(12, request(1000), 4).kind, Decision::wait);
    ASSERT_FALSE(s.add({0, 2}, params(), 5));
    // A newcomer never overtakes those already waiting, even with an instance free.
    EXPECT_EQ(s.open(13, request(1000), 6).kind, Decision::wait);
    auto served = s.serve_waiting();
    ASSERT_EQ(served.size(), 1u);
    EXPECT_EQ(served[0].client, 11u);
    s.listen({0, 1}, 7);
    served = s.serve_waiting();
    ASSERT_EQ(served.size(), 1u);
    EXPECT_EQ(served[0].client, 12u);
    s.forget_client(13);
    EXPECT_EQ(s.waiting_count(), 0u);
}

TEST(NameState, WaitsEndAtTheirDeadlineAndWhenTheNameGoes) {
    NameState s;
    ASSERT_FALSE(s.add({0, 1}, params(), 0));
    ASSERT_EQ(s.open(1, request(), 0).kind, Decision::connect);
    ASSERT_EQ(s.open(2, request(5), 0).kind, Decision::wait);  // 5 ms
    auto forever = request(detail::wait_forever_ms);
    ASSERT_EQ(s.open(3, forever, 0).kind, Decision::wait);
    EXPECT_EQ(s.next_expiry(), 5'000'000);
    EXPECT_TRUE(s.expire_waiting(4'999'999).empty());
    auto expired = s.expire_waiting(5'000'000);
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_EQ(expired[0].client, 2u);
    EXPECT_EQ(expired[0].error, errc::pipe_busy);
    s.remove_member(0);
    expired = s.expire_waiting(6'000'000);
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_EQ(expired[0].client, 3u);
    EXPECT_EQ(expired[0].error, errc::not_found) << "nothing left to wait for";
}

// WaitNamedPipe: told at once while an instance listens (which it does not
// take), else when one frees up, in line with the clients that wait to open.
TEST(NameState, AWaitOnlyClientTakesNoInstance) {
    NameState s;
    auto wait_only = [](std::uint32_t ms) {
        auto r = request(ms);
        r.wait_only = true;
        return r;
    };
    EXPECT_EQ(s.open(1, wait_only(1000), 0).error, errc::not_found) << "no instance: at once";
    ASSERT_FALSE(s.add({0, 1}, params(), 1));
    EXPECT_EQ(s.open(2, wait_only(1000), 2).kind, Decision::free);
    EXPECT_EQ(s.open(3, request(), 3).kind, Decision::connect) << "the free instance was not taken";
    EXPECT_EQ(s.open(4, wait_only(0), 4).error, errc::timed_out) << "no wait: ERROR_SEM_TIMEOUT at once";
    EXPECT_EQ(s.open(5, request(1000), 5).kind, Decision::wait);
    EXPECT_EQ(s.open(6, wait_only(1000), 6).kind, Decision::wait);
    EXPECT_EQ(s.open(7, wait_only(1), 7).kind, Decision::wait);
    const auto expired = s.expire_waiting(7 + 1'000'000);
    ASSERT_EQ(expired.size(), 1u);
    EXPECT_EQ(expired[0].client, 7u);
    EXPECT_EQ(expired[0].error, errc::timed_out);
    s.listen({0, 1}, 8);
    auto served = s.serve_waiting();
    ASSERT_EQ(served.size(), 1u) << "the open waiting first takes it; then none is free for the wait";
    EXPECT_EQ(served[0].client, 5u);
    ASSERT_FALSE(s.add({0, 2}, params(), 9));
    served = s.serve_waiting();
    ASSERT_EQ(served.size(), 1u);
    EXPECT_EQ(served[0].client, 6u);
    EXPECT_FALSE(served[0].instance.has_value());
    EXPECT_EQ(s.open(8, request(), 10).instance, (InstanceKey{0, 2})) << "still free";
}

// Windows finds a free instance first (else ERROR_PIPE_BUSY), then checks the
// access; a refused client leaves the instance free for the next.
TEST(NameState, BusyComesBeforeTheAccessCheck) {
    NameState s;
    auto inbound = params();
    inbound.access = PipeAccess::inbound;
    ASSERT_FALSE(s.add({0, 1}, inbound, 1));
    auto writer = request(), reader = request(1000);
    writer.access = ClientAccess::write;
    reader.access = ClientAccess::read;
    ASSERT_EQ(s.open(1, writer, 2).kind, Decision::connect);
    EXPECT_EQ(s.open(2, reader, 3).kind, Decision::wait) << "taken: it waits, as for any open";
    auto late_writer = writer;
    late_writer.wait_ms = 1000;
    EXPECT_EQ(s.open(3, late_writer, 4).kind, Decision::wait);
    s.listen({0, 1}, 5);
    const auto served = s.serve_waiting();
    ASSERT_EQ(served.size(), 2u);
    EXPECT_EQ(served[0].client, 2u);
    EXPECT_EQ(served[0].refused, errc::access_denied);
    EXPECT_FALSE(served[0].instance.has_value());
    EXPECT_EQ(served[1].client, 3u);
    EXPECT_EQ(served[1].instance, (InstanceKey{0, 1})) << "the instance stayed free for the next";
}

TEST(NameState, TheServersDefaultWaitIsTheFirstInstances) {
    NameState s;
    auto p = params();
    p.default_wait_ms = 0;
    ASSERT_FALSE(s.add({0, 1}, p, 0));
    ASSERT_EQ(s.open(1, request(), 0).kind, Decision::connect);
    auto use_default = request(1000);
    use_default.use_server_default_wait = true;
    EXPECT_EQ(s.open(2, use_default, 0).error, errc::pipe_busy) << "the default is no wait";
}

TEST(NameState, InstancesMustAgreeAndTheLimitHolds) {
    NameState s;
    ASSERT_FALSE(s.add({0, 1}, params(2), 0));
    auto first_only = params(2);
    first_only.first_instance = true;
    EXPECT_EQ(s.add({0, 2}, first_only, 0), errc::access_denied);
    auto bytes = params(2);
    bytes.type = PipeType::byte;
    EXPECT_EQ(s.add({0, 2}, bytes, 0), errc::access_denied);
    auto open = params(2);
    open.allow_other_users = true;
    EXPECT_EQ(s.add({0, 2}, open, 0), errc::access_denied);
    EXPECT_FALSE(s.add({1, 2}, params(200), 0)) << "the first instance's maximum stands";
    EXPECT_EQ(s.add({1, 3}, params(), 0), errc::too_many_instances);
    EXPECT_EQ(s.instance_count(), 2u);
    s.remove_member(1);
    EXPECT_EQ(s.instance_count(), 1u);
    // Restoring what a process had before a change of broker is never refused.
    s.restore({3, 1}, params(2), -1);
    s.restore({3, 2}, params(2), 9);
    EXPECT_EQ(s.instance_count(), 3u);
    EXPECT_EQ(s.open(5, request(), 10).instance, (InstanceKey{0, 1}));
    EXPECT_EQ(s.open(6, request(), 10).instance, (InstanceKey{3, 2}));
}

TEST(NameState, ClientsAreCheckedAgainstThePipe) {
    NameState s;
    EXPECT_EQ(s.open(1, request(), 0).error, errc::not_found);
    auto inbound = params();
    inbound.access = PipeAccess::inbound;
    inbound.type = PipeType::byte;
    ASSERT_FALSE(s.add({0, 1}, inbound, 0));
    auto reader = request();
    reader.access = ClientAccess::read;
    EXPECT_EQ(s.open(2, reader, 0).error, errc::access_denied);
    auto message_mode = request();
    message_mode.access = ClientAccess::write;
    message_mode.message_read_mode = true;
    EXPECT_EQ(s.open(3, message_mode, 0).error, errc::invalid_argument);
    auto remote = request();
    remote.access = ClientAccess::write;
    remote.remote = true;
    EXPECT_EQ(s.open(4, remote, 0).error, errc::access_denied) << "reject_remote_clients";
    EXPECT_EQ(s.waiting_count(), 0u);
}

}  // namespace
}  // namespace pipeslot
