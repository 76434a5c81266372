// POSIX mailslots on the network: what arrives on the UDP port from anyone.
// (Loopback only; the namespace test covers other hosts.)
#include "../support/support.hpp"
#include "common/mailslot_datagram.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cstdlib>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;

void send_raw(std::span<const std::byte> datagram) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(std::atoi(std::getenv("PIPESLOT_MAILSLOT_PORT"))));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(fd);
}

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

}  // namespace
}  // namespace pipeslot
