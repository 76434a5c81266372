// POSIX mailslots on the network: what arrives on the UDP port from anyone.
// (Loopback only; the namespace test covers other hosts.)
#include "../support/support.hpp"
#include "common/mailslot_datagram.hpp"
#include "posix/runtime_dir.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;

void send_raw(std::span<const std::byte> datagram, std::uint32_t address = INADDR_LOOPBACK) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(std::atoi(std::getenv("PIPESLOT_MAILSLOT_PORT"))));
    to.sin_addr.s_addr = htonl(address);
    ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(fd);
}

constexpr std::uint32_t loopback_broadcast = 0x7FFFFFFF;  // 127.255.255.255

std::size_t wait_for_dropped(Mailslot& slot, std::size_t expected) {
    std::error_code ec;
    const auto deadline = std::chrono::steady_clock::now() + test::generous;
    std::size_t dropped = 0;
    while ((dropped = slot.info(ec).dropped_datagrams) < expected && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    return dropped;
}

TEST(PosixMailslotNetwork, MalformedDatagramsAreDroppedAndCounted) {
    const auto name = test::unique_mailslot_name("hostile");
    MailslotOptions options;
    options.read_timeout = test::generous;
    options.max_message_size = 100;
    auto slot = Mailslot::create(name, options);
    const auto folded = MailslotName::parse(name).folded_name();
    const auto payload = test::bytes_of("payload");
    auto good = detail::encode_datagram(detail::DatagramScope::every_host, "", folded, payload);

    auto wrong_magic = good;
    wrong_magic[0] = std::byte{'X'};
    const std::vector<std::byte> truncated(good.begin(), good.begin() + 7);
    auto lying = good;
    lying[10] = std::byte{200};  // claims a longer payload than it has
    std::vector<std::byte> garbage(65000);
    for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::byte>(i * 7919 % 251);
    auto too_big_for_the_slot = detail::encode_datagram(detail::DatagramScope::every_host, "", folded,
                                                        test::pattern_bytes(101));
    for (const auto& d : {wrong_magic, truncated, lying, garbage, too_big_for_the_slot}) send_raw(d);
    EXPECT_EQ(wait_for_dropped(slot, 5), 5u);

    std::string lower = folded;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    send_raw(detail::encode_datagram(detail::DatagramScope::every_host, "", lower, test::bytes_of("wrong case")));
    send_raw(good);  // after all that, a good one still arrives (and the wrong-case one did not)
    std::error_code ec;
    const auto got = slot.receive_message(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(test::text_of(got), "payload");
    EXPECT_EQ(slot.info(ec).message_count, 0u);
}

TEST(PosixMailslotNetwork, DomainMessagesReachReadersOfThatDomainOnly) {
    const auto name = test::unique_mailslot_name("domain");
    MailslotOptions options;
    options.read_timeout = test::generous;
    auto slot = Mailslot::create(name, options);
    const auto folded = MailslotName::parse(name).folded_name();
    send_raw(detail::encode_datagram(detail::DatagramScope::domain, "OTHERDOMAIN", folded, test::bytes_of("not us")));
    // A domain that resolves to no host: sent as a broadcast for that domain.
    auto ours = Broadcaster::open(std::string(name).replace(2, 1, "WORKGROUP"));
    std::error_code ec;
    ours.send(test::as_bytes(std::string("workgroup")), ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(test::text_of(slot.receive_message(ec)), "workgroup");
    EXPECT_EQ(slot.info(ec).message_count, 0u);
}

// Three readers listen on the port; a datagram reaches one of them or, sent
// to a broadcast address, all three. Each reader it names gets it once:
// whatever its scope says, however it was addressed.
TEST(PosixMailslotNetwork, EachDatagramReachesItsReaderOnceHoweverAddressed) {
    std::vector<Mailslot> readers;
    std::vector<std::string> folded;
    MailslotOptions options;
    options.read_timeout = test::generous;
    for (int i = 0; i < 3; ++i) {
        const auto name = test::unique_mailslot_name("once");
        readers.push_back(Mailslot::create(name, options));
        folded.push_back(MailslotName::parse(name).folded_name());
    }
    using detail::DatagramScope;
    int sent = 0;
    for (const auto scope : {DatagramScope::one_host, DatagramScope::every_host})
        for (const auto address : {std::uint32_t{INADDR_LOOPBACK}, loopback_broadcast})
            for (std::size_t r = 0; r < readers.size(); ++r)
                send_raw(detail::encode_datagram(scope, "", folded[r], test::bytes_of(std::to_string(sent++))), address);
    // Each reader's own, in any order (listeners pass them on in parallel),
    // and nothing more within a while.
    for (std::size_t r = 0; r < readers.size(); ++r) {
        std::vector<std::string> expected, got;
        for (int i = static_cast<int>(r); i < sent; i += static_cast<int>(readers.size())) expected.push_back(std::to_string(i));
        std::error_code ec;
        while (got.size() < expected.size()) {
            const auto message = readers[r].receive_message(ec);
            ASSERT_FALSE(ec) << ec.message() << " after " << got.size();
            got.push_back(test::text_of(message));
        }
        readers[r].set_read_timeout(std::chrono::milliseconds(300), ec);
        const auto late = readers[r].receive_message(ec);  // a second copy, passed on by another listener
        EXPECT_EQ(ec, errc::timed_out) << "reader " << r << " also got " << test::text_of(late);
        std::sort(got.begin(), got.end());
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(got, expected) << "reader " << r;
    }
}

// A reader that does not read: what the network sends beyond its queue and
// its socket's is dropped and counted, and its memory stays bounded.
TEST(PosixMailslotNetwork, AFullQueueDropsNetworkDatagramsAndCountsThem) {
    const auto name = test::unique_mailslot_name("flooded");
    MailslotOptions options;
    options.max_queued_messages = 4;
    auto slot = Mailslot::create(name, options);
    const auto folded = MailslotName::parse(name).folded_name();
    const auto empty = detail::encode_datagram(detail::DatagramScope::one_host, "", folded, {});
    std::error_code ec;
    for (int i = 0; i < 2000 && slot.info(ec).dropped_datagrams == 0; ++i) send_raw(empty);
    EXPECT_GT(wait_for_dropped(slot, 1), 0u) << "the socket's queue filled and the listener said so";
    EXPECT_LE(slot.info(ec).message_count, 4u) << "the reader holds no more than it was told to";
}

// Another user links some daemon's socket where a reader's socket would be:
// neither a listener passing on a datagram from the network nor a writer
// reaches it (a reader running as root would lend it its identity).
TEST(PosixMailslotNetwork, ALinkPlantedAtASocketsNameIsNeverReached) {
    char temp[] = "/tmp/pipeslot-daemon-XXXXXX";
    ASSERT_TRUE(::mkdtemp(temp));
    const std::string daemon_path = std::string(temp) + "/daemon.sock";
    const int daemon = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un at{};
    at.sun_family = AF_UNIX;
    std::memcpy(at.sun_path, daemon_path.c_str(), daemon_path.size() + 1);
    ASSERT_EQ(::bind(daemon, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);

    std::string shared;
    ASSERT_FALSE(posix::runtime_directory(posix::Scope::shared, shared));
    const auto name = test::unique_mailslot_name("linked");
    const auto planted = shared + "/" + posix::name_key(MailslotName::parse(name)) + ".sock";
    ASSERT_EQ(::symlink(daemon_path.c_str(), planted.c_str()), 0);
    auto listener = Mailslot::create(test::unique_mailslot_name("listener"), {});  // some reader listens
    const auto folded = MailslotName::parse(name).folded_name();
    send_raw(detail::encode_datagram(detail::DatagramScope::one_host, "", folded, test::bytes_of("from afar")));
    std::error_code ec;
    Broadcaster::open(name, ec);
    EXPECT_EQ(ec, errc::not_found) << "a writer does not connect through it";
    pollfd ready{daemon, POLLIN, 0};
    EXPECT_EQ(::poll(&ready, 1, 300), 0) << "the daemon got nothing";
    ::unlink(planted.c_str());
    ::close(daemon);
    ::unlink(daemon_path.c_str());
    ::rmdir(temp);
}

}  // namespace
}  // namespace pipeslot
