// The frames of connecting (backends/common/connect_protocol.hpp): each
// round-trips, and each decoder refuses every field out of range.
#include "common/connect_protocol.hpp"

#include <gtest/gtest.h>

namespace pipeslot {
namespace {

using namespace detail;

template <class Frame>
std::vector<std::byte> payload_of(const Frame& frame) {
    return {frame.begin() + frame_header_size, frame.end()};
}

TEST(ConnectProtocol, AnOpenRequestRoundTrips) {
    OpenRequest r;
    r.access = ClientAccess::write;
    r.message_read_mode = true;
    r.use_server_default_wait = true;
    r.wait_only = true;
    r.wait_ms = 1234;
    const auto frame = encode_open(r);
    const auto header = decode_header(std::span<const std::byte, frame_header_size>(frame.data(), frame_header_size));
    ASSERT_TRUE(header);
    EXPECT_EQ(header->kind, FrameKind::open);
    const auto back = decode_open(payload_of(frame));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->access, ClientAccess::write);
    EXPECT_TRUE(back->message_read_mode);
    EXPECT_TRUE(back->use_server_default_wait);
    EXPECT_TRUE(back->wait_only);
    EXPECT_FALSE(back->remote);
    EXPECT_EQ(back->wait_ms, 1234u);
}

TEST(ConnectProtocol, AGatewaysRemoteUserRidesAlongCutAtACharacter) {
    OpenRequest r;
    r.remote = true;
    r.remote_user = "psk:alice";
    auto back = decode_open(payload_of(encode_open(r)));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->remote_user, "psk:alice");
    r.remote_user = std::string(max_remote_user - 1, 'x') + "\xC3\xA9";  // the last character straddles the limit
    back = decode_open(payload_of(encode_open(r)));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->remote_user, std::string(max_remote_user - 1, 'x'));
    Control c;
    c.op = ControlOp::client;
    c.remote_user = "CN=client-alice,O=pipeslot tests";
    const auto control = decode_control(payload_of(encode_control(c)));
    ASSERT_TRUE(control);
    EXPECT_EQ(control->remote_user, c.remote_user);
}

TEST(ConnectProtocol, ARemoteComputerRidesAfterTheTokenWithTheLongestFieldsStillInBounds) {
    OpenRequest r;
    r.remote = true;
    r.remote_user = "S-1-5-7";
    r.remote_computer = "198.51.100.2";
    auto back = decode_open(payload_of(encode_open(r)));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->remote_user, "S-1-5-7");
    EXPECT_EQ(back->hand_off, 0u) << "a zero token holds the computer's place";
    EXPECT_EQ(back->remote_computer, "198.51.100.2");
    Control c;
    c.op = ControlOp::client;
    c.remote_user = std::string(max_remote_user, 'u');
    c.hand_off = 77;
    c.remote_computer = std::string(max_remote_computer + 10, 'c');  // cut to the bound
    const auto frame = encode_control(c);
    EXPECT_LE(payload_of(frame).size(), max_connect_payload) << "every field at its longest";
    const auto control = decode_control(payload_of(frame));
    ASSERT_TRUE(control);
    EXPECT_EQ(control->hand_off, 77u);
    EXPECT_EQ(control->remote_computer, std::string(max_remote_computer, 'c'));
    auto broken = encode_open(r);
    broken.back() = std::byte{0};  // a NUL inside the computer
    EXPECT_FALSE(decode_open(payload_of(broken)));
}

TEST(ConnectProtocol, OpenRequestsOutOfRangeAreRefused) {
    const auto good = payload_of(encode_open({}));
    EXPECT_TRUE(decode_open(good));
    auto bad = good;
    bad[0] = std::byte{1};  // version 1 spoke "hello", not this
    EXPECT_FALSE(decode_open(bad));
    bad = good;
    bad[1] = std::byte{9};  // access
    EXPECT_FALSE(decode_open(bad));
    bad = good;
    bad[2] = std::byte{32};  // an unknown flag
    EXPECT_FALSE(decode_open(bad));
    bad = good;
    bad[3] = std::byte{1};  // reserved
    EXPECT_FALSE(decode_open(bad));
    EXPECT_FALSE(decode_open(std::span(good).first(7)));
    ASSERT_EQ(good.size(), open_request_size + 1) << "the fixed part, and an empty remote user";
    EXPECT_TRUE(decode_open(std::span(good).first(open_request_size))) << "an older peer's, without the remote user";
    auto longer = good;
    longer.push_back(std::byte{42});
    EXPECT_TRUE(decode_open(longer)) << "a later version may append fields";
    auto cut_short = good;
    cut_short.back() = std::byte{5};  // a remote user of 5 bytes, with 1
    cut_short.push_back(std::byte{'a'});
    EXPECT_FALSE(decode_open(cut_short));
    EXPECT_FALSE(decode_open(std::vector<std::byte>(max_connect_payload + 1, std::byte{2})));
}

TEST(ConnectProtocol, RepliesRoundTripAndAreChecked) {
    OpenReply r;
    r.type = PipeType::message;
    r.max_instances = 4;
    r.in_buffer = 100;
    r.out_buffer = 200;
    r.server_pid = 77;
    r.server_uid = 1000;
    r.current_instances = 513;
    const auto back = decode_open_reply(payload_of(encode_open_reply(r)));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->result, errc{});
    EXPECT_EQ(back->type, PipeType::message);
    EXPECT_EQ(back->max_instances, 4u);
    EXPECT_EQ(back->in_buffer, 100u);
    EXPECT_EQ(back->server_pid, 77u);
    EXPECT_EQ(back->server_uid, 1000u);
    EXPECT_EQ(back->current_instances, 513u);
    const auto refused = decode_open_reply(payload_of(encode_open_reply({errc::pipe_busy})));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->result, errc::pipe_busy);

    auto bad = payload_of(encode_open_reply(r));
    bad[0] = std::byte{200};  // no such error
    EXPECT_FALSE(decode_open_reply(bad));
    bad = payload_of(encode_open_reply(r));
    bad[1] = std::byte{2};  // type
    EXPECT_FALSE(decode_open_reply(bad));
    bad = payload_of(encode_open_reply(r));
    bad[4] = std::byte{0};  // a connected reply with max instances 0
    EXPECT_FALSE(decode_open_reply(bad));
    bad = payload_of(encode_open_reply(r));
    bad[15] = std::byte{0xFF};  // an absurd buffer quota
    EXPECT_FALSE(decode_open_reply(bad));
}

TEST(ConnectProtocol, ControlFramesRoundTripAndAreChecked) {
    Control c;
    c.op = ControlOp::restore;
    c.request = 9;
    c.instance = 0x1122334455667788ull;
    c.result = errc::too_many_instances;
    c.params.type = PipeType::byte;
    c.params.access = PipeAccess::inbound;
    c.params.max_instances = 3;
    c.params.default_wait_ms = -1;
    c.params.first_instance = true;
    c.params.reject_remote = false;
    c.params.allow_other_users = true;
    c.params.in_buffer = 5;
    c.params.out_buffer = 6;
    c.listening_since = 123456789;
    const auto back = decode_control(payload_of(encode_control(c)));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->op, ControlOp::restore);
    EXPECT_EQ(back->request, 9u);
    EXPECT_EQ(back->instance, c.instance);
    EXPECT_EQ(back->result, errc::too_many_instances);
    EXPECT_EQ(back->params.type, PipeType::byte);
    EXPECT_EQ(back->params.access, PipeAccess::inbound);
    EXPECT_EQ(back->params.max_instances, 3u);
    EXPECT_EQ(back->params.default_wait_ms, -1);
    EXPECT_TRUE(back->params.first_instance);
    EXPECT_FALSE(back->params.reject_remote);
    EXPECT_TRUE(back->params.allow_other_users);
    EXPECT_EQ(back->listening_since, 123456789);

    const auto good = payload_of(encode_control(c));
    for (const auto& [at, value] : std::vector<std::pair<std::size_t, int>>{
             {0, 0}, {0, 8}, {1, 2}, {2, 0}, {2, 4}, {3, 8}, {16, 0}, {17, 1}, {31, 0x80}, {55, 0x80}}) {
        auto bad = good;
        bad[at] = static_cast<std::byte>(value);
        EXPECT_FALSE(decode_control(bad)) << "byte " << at << " = " << value;
    }
    EXPECT_FALSE(decode_control(std::span(good).first(control_size - 1)));
}

}  // namespace
}  // namespace pipeslot
