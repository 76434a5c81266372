// Conformance: mailslots (Mailslot, Broadcaster). Written once against the
// public API; runs on every backend.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::generous;
using test::text_of;

void send_text(Broadcaster& b, const std::string& text) {
    std::error_code ec;
    b.send(test::as_bytes(text), ec);
    EXPECT_FALSE(ec) << ec.message();
}

std::pair<std::string, std::error_code> receive_text(Mailslot& m, std::size_t size = 1024) {
    std::vector<std::byte> buffer(size);
    std::error_code ec;
    const auto n = m.receive(buffer, ec);
    return {text_of(std::span(buffer).first(n)), ec};
}

MailslotOptions waiting(Timeout t = generous) {
    MailslotOptions o;
    o.read_timeout = t;
    return o;
}

TEST(MailslotConformance, LocalMessagesArriveWholeAndInOrder) {
    const auto name = test::unique_mailslot_name("order");
    auto slot = test::create_mailslot(name, waiting());
    auto writer = test::open_broadcaster(name);
    for (const char* m : {"first", "second message", "3"}) send_text(writer, m);
    EXPECT_EQ(receive_text(slot).first, "first");
    EXPECT_EQ(receive_text(slot).first, "second message");
    EXPECT_EQ(receive_text(slot).first, "3");
}

TEST(MailslotConformance, ZeroLengthMessagesArrive) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine reads a queued zero-length mailslot message as ERROR_BROKEN_PIPE";
    const auto name = test::unique_mailslot_name("empty");
    auto slot = test::create_mailslot(name, waiting());
    auto writer = test::open_broadcaster(name);
    send_text(writer, "");
    send_text(writer, "x");
    EXPECT_EQ(receive_text(slot), std::make_pair(std::string(), std::error_code()));
    EXPECT_EQ(receive_text(slot).first, "x");
}

TEST(MailslotConformance, ReceiveWaitsForTheReadTimeout) {
    const auto name = test::unique_mailslot_name("timeout");
    auto slot = test::create_mailslot(name, waiting(150ms));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(receive_text(slot).second, errc::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 140ms);
    std::error_code ec;
    slot.set_read_timeout(Timeout::none(), ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(receive_text(slot).second, errc::timed_out) << "a zero timeout returns at once";
}

TEST(MailslotConformance, AReceiveWaitingForeverIsWokenByAMessage) {
    const auto name = test::unique_mailslot_name("forever");
    auto slot = test::create_mailslot(name, waiting(Timeout::forever()));
    std::thread writer([&] {
        auto b = test::open_broadcaster(name);
        send_text(b, "wake up");
    });
    EXPECT_EQ(receive_text(slot).first, "wake up");
    writer.join();
}

TEST(MailslotConformance, TooSmallABufferIsAnErrorAndTheMessageStays) {
    const auto name = test::unique_mailslot_name("small");
    auto slot = test::create_mailslot(name, waiting());
    auto writer = test::open_broadcaster(name);
    send_text(writer, "0123456789");
    EXPECT_EQ(receive_text(slot, 4).second, errc::buffer_too_small);
    EXPECT_EQ(receive_text(slot, 16).first, "0123456789");
}

TEST(MailslotConformance, ReceiveMessageReturnsItWhole) {
    const auto name = test::unique_mailslot_name("whole");
    auto slot = test::create_mailslot(name, waiting());
    auto writer = test::open_broadcaster(name);
    const auto big = test::pattern_bytes(20000);
    std::error_code ec;
    writer.send(big, ec);
    EXPECT_EQ(slot.receive_message(ec), big);
    EXPECT_FALSE(ec) << ec.message();
}

TEST(MailslotConformance, InfoTellsSizesCountsAndTimeout) {
    const auto name = test::unique_mailslot_name("info");
    MailslotOptions options;
    options.max_message_size = 100;
    options.read_timeout = 250ms;
    auto slot = test::create_mailslot(name, options);
    std::error_code ec;
    auto i = slot.info(ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(i.max_message_size, 100u);
    EXPECT_FALSE(i.next_message_size.has_value());
    EXPECT_EQ(i.message_count, 0u);
    EXPECT_EQ(i.read_timeout, Timeout(250ms));
    auto writer = test::open_broadcaster(name);
    send_text(writer, "four");
    send_text(writer, "sixsix");
    i = slot.info(ec);
    EXPECT_EQ(i.next_message_size, 4u);
    if (!test::native_under_wine()) {
        EXPECT_EQ(i.message_count, 2u);  // Wine under-counts
    }
    slot.set_read_timeout(Timeout::forever(), ec);
    EXPECT_TRUE(slot.info(ec).read_timeout.is_forever());
}

// Windows: any number of writers share a mailslot at once (each opens it
// with FILE_SHARE_READ | FILE_SHARE_WRITE; Wine's mailslot.c tests two).
TEST(MailslotConformance, ManyWritersHoldTheSlotOpenAtOnce) {
    const auto name = test::unique_mailslot_name("writers");
    auto slot = test::create_mailslot(name, waiting());
    std::vector<Broadcaster> writers;
    for (int i = 0; i < 4; ++i) writers.push_back(test::open_broadcaster(name));
    for (std::size_t i = 0; i < writers.size(); ++i) send_text(writers[i], "from " + std::to_string(i));
    for (std::size_t i = 0; i < writers.size(); ++i) EXPECT_EQ(receive_text(slot).first, "from " + std::to_string(i));
}

// CreateMailslot takes any DWORD as the maximum (Wine's mailslot.c: -1 is
// accepted and GetMailslotInfo reports ~0U); 0 means any size.
TEST(MailslotConformance, EveryMaximumWindowsAcceptsIsAccepted) {
    for (const std::size_t max : {std::size_t{0}, std::size_t{1}, std::size_t{424}, std::size_t{65535},
                                  std::size_t{1} << 30, (std::size_t{1} << 31) + 1, max_mailslot_message_limit}) {
        const auto name = test::unique_mailslot_name("max-" + std::to_string(max));
        MailslotOptions options;
        options.max_message_size = max;
        options.read_timeout = generous;
        std::error_code ec;
        auto slot = test::ipc().create_mailslot(name, options, ec);
        ASSERT_FALSE(ec) << max << ": " << ec.message();
        EXPECT_EQ(slot.info(ec).max_message_size, max);
        auto writer = test::open_broadcaster(name);
        send_text(writer, "x");
        EXPECT_EQ(receive_text(slot).first, "x") << max;
    }
    if constexpr (sizeof(std::size_t) > 4) {  // more than a DWORD: no Windows mailslot has it
        std::error_code ec;
        MailslotOptions options;
        options.max_message_size = max_mailslot_message_limit + 1;
        test::ipc().create_mailslot(test::unique_mailslot_name("max-over"), options, ec);
        EXPECT_EQ(ec, errc::invalid_argument);
    }
}

TEST(MailslotConformance, NamesAreCaseInsensitiveWithPseudoFolders) {
    const auto name = test::unique_mailslot_name("Folder\\Sub\\Slot");
    auto slot = test::create_mailslot(name, waiting());
    std::string other = name;
    for (auto& c : other) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto writer = test::open_broadcaster(other);
    send_text(writer, "found");
    EXPECT_EQ(receive_text(slot).first, "found");
}

TEST(MailslotConformance, OneReaderPerNameOnTheHost) {
    const auto name = test::unique_mailslot_name("one-reader");
    std::error_code ec;
    {
        auto first = test::create_mailslot(name, {});
        test::ipc().create_mailslot(name, {}, ec);
        EXPECT_EQ(ec, errc::name_in_use);
    }
    auto again = test::ipc().create_mailslot(name, {}, ec);
    EXPECT_FALSE(ec) << "closing the reader frees the name: " << ec.message();
}

TEST(MailslotConformance, AReaderInAnotherProcessHoldsTheNameUntilItDies) {
    PIPESLOT_SKIP_UNDER_FAKE("other processes");
    const auto name = test::unique_mailslot_name("other-process");
    auto holder = test::start_helper(test::peer("mailslot-hold", {name}));
    ASSERT_EQ(holder.line(), "ready");
    std::error_code ec;
    test::ipc().create_mailslot(name, {}, ec);
    EXPECT_EQ(ec, errc::name_in_use);
    holder.process.kill(ec);
    holder.process.wait(generous, ec);
    test::ipc().open_broadcaster(name, ec);
    EXPECT_EQ(ec, errc::not_found) << "writers see a crashed reader gone, whatever it left behind";
    auto mine = test::ipc().create_mailslot(name, {}, ec);
    EXPECT_FALSE(ec) << "a crashed reader's name is free: " << ec.message();
}

TEST(MailslotConformance, AWriterInAnotherProcess) {
    PIPESLOT_SKIP_UNDER_FAKE("other processes");
    const auto name = test::unique_mailslot_name("writer-process");
    auto slot = test::create_mailslot(name, waiting());
    auto sender = Process::spawn(test::peer("mailslot-send", {name, "from afar"}));
    EXPECT_EQ(sender.wait(), 0);
    EXPECT_EQ(receive_text(slot).first, "from afar");
}

// A reader that is not receiving still holds what comes, up to its queue's
// bound: writers do not wait (found by the soak: on POSIX the 12th send waited
// for the kernel's short socket queue, net.unix.max_dgram_qlen).
TEST(MailslotConformance, AReaderThatIsNotReceivingHoldsWhatComes) {
    if (test::native_under_wine())
        GTEST_SKIP() << "Wine's WriteFile to a mailslot blocks once unread messages fill its buffer; Windows' never waits";
    const auto name = test::unique_mailslot_name("idle-reader");
    auto slot = test::create_mailslot(name, waiting());
    std::error_code ec;
    auto writer = test::ipc().open_broadcaster(name, ec);
    ASSERT_FALSE(ec) << ec.message();
    constexpr int count = 300;
    for (int i = 0; i < count; ++i) {
        writer.send(test::as_bytes(std::to_string(i)), generous, ec);
        ASSERT_FALSE(ec) << "send " << i << ": " << ec.message();
    }
    for (int i = 0; i < count; ++i) EXPECT_EQ(receive_text(slot).first, std::to_string(i));
}

// Windows' writer never learns whether anyone received a message: after its
// reader has gone too, every send succeeds (found by the soak: the second
// one failed with not_connected).
TEST(MailslotConformance, SendsAfterTheReaderHasGoneSucceed) {
    const auto name = test::unique_mailslot_name("reader-gone");
    auto slot = test::create_mailslot(name, waiting());
    std::error_code ec;
    auto writer = test::ipc().open_broadcaster(name, ec);
    ASSERT_FALSE(ec) << ec.message();
    slot.close();
    for (int i = 0; i < 3; ++i) {
        writer.send(test::as_bytes(std::string("into the void")), generous, ec);
        EXPECT_FALSE(ec) << "send " << i << ": " << ec.message();
    }
}

TEST(MailslotConformance, WritingToANameWithoutAReaderIsNotFound) {
    std::error_code ec;
    test::ipc().open_broadcaster(test::unique_mailslot_name("nobody"), ec);
    EXPECT_EQ(ec, errc::not_found);
}

TEST(MailslotConformance, AMessageOverTheReadersMaximumFails) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine accepts a message larger than the mailslot's maximum";
    const auto name = test::unique_mailslot_name("max");
    MailslotOptions options;
    options.max_message_size = 16;
    options.read_timeout = generous;
    auto slot = test::create_mailslot(name, options);
    auto writer = test::open_broadcaster(name);
    std::error_code ec;
    writer.send(test::pattern_bytes(17), ec);
    EXPECT_EQ(ec, errc::message_too_large);
    writer.send(test::pattern_bytes(16), ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(slot.receive_message(ec).size(), 16u);
}

TEST(MailslotConformance, AMessageToOtherHostsIsAtMost424Bytes) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine rejects \\\\*\\mailslot\\ names (no network mailslots)";
    auto everyone = test::open_broadcaster(test::unique_mailslot_name("big").replace(2, 1, "*"));
    std::error_code ec;
    everyone.send(test::pattern_bytes(425), ec);
    EXPECT_EQ(ec, errc::message_too_large);
    everyone.send(test::pattern_bytes(424), ec);
    EXPECT_FALSE(ec) << ec.message();
}

TEST(MailslotConformance, ABroadcastReachesTheReaderOnThisHost) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine rejects \\\\*\\mailslot\\ names (no network mailslots)";
    // The test run confines broadcasts to loopback (PIPESLOT_MAILSLOT_INTERFACES=lo).
    const auto a = test::unique_mailslot_name("share-a"), b = test::unique_mailslot_name("share-b");
    auto slot_a = test::create_mailslot(a, waiting());
    auto slot_b = test::create_mailslot(b, waiting());
    auto to_a = test::open_broadcaster(std::string(a).replace(2, 1, "*"));
    auto to_b = test::open_broadcaster(std::string(b).replace(2, 1, "*"));
    send_text(to_b, "for b");
    send_text(to_a, "for a");
    EXPECT_EQ(receive_text(slot_a).first, "for a") << "readers of different names share the port";
    EXPECT_EQ(receive_text(slot_b).first, "for b");
}

TEST(MailslotConformance, AMessageToThisHostByNameArrives) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine has no remote mailslots";
    const auto a = test::unique_mailslot_name("host-a"), b = test::unique_mailslot_name("host-b");
    auto slot_a = test::create_mailslot(a, waiting());
    auto slot_b = test::create_mailslot(b, waiting());  // bound last: the kernel gives it the unicast datagrams
    auto to_a = test::open_broadcaster(std::string(a).replace(2, 1, "localhost"));
    send_text(to_a, "unicast to a");
    EXPECT_EQ(receive_text(slot_a).first, "unicast to a");
}

TEST(MailslotConformance, CancelEndsAWaitingReceive) {
    const auto name = test::unique_mailslot_name("cancel");
    auto slot = test::create_mailslot(name, waiting(Timeout::forever()));
    auto reader = std::async(std::launch::async, [&] { return receive_text(slot).second; });
    while (reader.wait_for(10ms) != std::future_status::ready) slot.cancel();
    EXPECT_EQ(reader.get(), errc::cancelled);
}

TEST(MailslotConformance, InvalidArgumentsAreRejected) {
    std::error_code ec;
    test::ipc().create_mailslot(R"(\\.\pipe\x)", {}, ec);
    EXPECT_EQ(ec, errc::invalid_name);
    test::ipc().create_mailslot(R"(\\.\mailslot\a\\b)", {}, ec);
    EXPECT_EQ(ec, errc::invalid_name);
    test::ipc().create_mailslot(R"(\\*\mailslot\x)", {}, ec);
    EXPECT_EQ(ec, errc::invalid_name) << "a reader is created on its own host only";
    test::ipc().create_mailslot(test::unique_mailslot_name("bad-timeout"), waiting(Timeout(-1ms)), ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    test::ipc().open_broadcaster(R"(\\.\mailslot\)", ec);
    EXPECT_EQ(ec, errc::invalid_name);
    Mailslot closed;
    std::vector<std::byte> buffer(4);
    closed.receive(buffer, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    Broadcaster none;
    none.send(buffer, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    auto slot = test::create_mailslot(test::unique_mailslot_name("bad-set"), {});
    slot.set_read_timeout(Timeout(-3ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    MailslotOptions no_queue;
    no_queue.max_queued_messages = 0;
    test::ipc().create_mailslot(test::unique_mailslot_name("no-queue"), no_queue, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    no_queue = {};
    no_queue.max_queued_bytes = 0;
    test::ipc().create_mailslot(test::unique_mailslot_name("no-queue"), no_queue, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
}

// Empty messages cost a reader memory too: a flood of them meets the bound
// on messages (POSIX: the reader's queue, then its socket's), the writer
// waits there up to its timeout, and nothing sent is lost.
TEST(MailslotConformance, AFloodOfEmptyMessagesMeetsTheQueuesBound) {
#ifdef _WIN32
    if (!test::using_fake()) GTEST_SKIP() << "Windows keeps its own bound, in the kernel's memory";
#endif
    const auto name = test::unique_mailslot_name("flood");
    MailslotOptions options = waiting();
    options.max_queued_messages = 8;
    auto slot = test::create_mailslot(name, options);
    std::error_code ec;
    auto writer = test::ipc().open_broadcaster(name, ec);
    ASSERT_FALSE(ec) << ec.message();
    std::size_t accepted = 0;
    for (; accepted < 100000; ++accepted) {
        const std::string text = accepted % 2 ? "" : std::to_string(accepted);  // every other one empty
        writer.send(test::as_bytes(text), 50ms, ec);
        if (ec) break;
        EXPECT_LE(slot.info(ec).message_count, 8u);
    }
    EXPECT_EQ(ec, errc::timed_out) << "after " << accepted << " messages";
    EXPECT_LT(accepted, 100000u);
    for (std::size_t i = 0; i < accepted; ++i) {
        const auto [text, error] = receive_text(slot);
        ASSERT_FALSE(error) << error.message() << " at " << i;
        EXPECT_EQ(text, i % 2 ? "" : std::to_string(i)) << "in order, none lost";
    }
    EXPECT_EQ(slot.info(ec).message_count, 0u);
    writer.send(test::as_bytes(std::string("room again")), 50ms, ec);
    EXPECT_FALSE(ec) << ec.message();
}

}  // namespace
}  // namespace pipeslot
