// The handshake smbd sends a pipe's server (common/smb_handshake.hpp),
// against what a real smbd 4.17 sent (npa_captures.hpp), and against every
// way of breaking it.
#include "common/smb_handshake.hpp"
#include "npa_captures.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace pipeslot::detail {
namespace {

std::vector<std::byte> bytes(const unsigned char* data, std::size_t size) {
    std::vector<std::byte> out(size);
    std::memcpy(out.data(), data, size);
    return out;
}

std::span<const std::byte, npa_length_size> prefix(const std::vector<std::byte>& r) {
    return std::span<const std::byte, npa_length_size>(r.data(), npa_length_size);
}

std::span<const std::byte> body(const std::vector<std::byte>& r) { return std::span(r).subspan(npa_length_size); }

// A captured request, its prefix and body decoded as a server reads them.
NpaRequest decoded(const std::vector<std::byte>& r) {
    EXPECT_EQ(decode_npa_length(prefix(r)), r.size() - npa_length_size);
    NpaRequest q;
    EXPECT_EQ(decode_npa_request(body(r), q), NpaResult::ok);
    return q;
}

TEST(SmbHandshake, AnAnonymousOpenAsSmbdSentIt) {
    const auto r = bytes(test::npa_request_anonymous, test::npa_request_anonymous_len);
    const auto q = decoded(r);
    EXPECT_EQ(q.level, 7u);
    EXPECT_EQ(q.transport, 1u) << "NCACN_NP";
    EXPECT_EQ(q.remote_client_addr, "127.0.0.1");
    EXPECT_EQ(q.remote_client_port, 54116u);
    EXPECT_EQ(q.local_server_addr, "127.0.0.1");
    EXPECT_EQ(q.local_server_port, 445u);
    EXPECT_EQ(q.remote_client_name, "vm") << "smbd names itself here, not the client";
    EXPECT_EQ(q.local_server_name, "vm");
    EXPECT_EQ(q.session_info.size(), r.size() - 0x80) << "the session, from its aligned start to the end";
}

TEST(SmbHandshake, AUsersOpenCarriesItsSession) {
    const auto q = decoded(bytes(test::npa_request_nobody, test::npa_request_nobody_len));
    EXPECT_EQ(q.local_server_port, 445u);
    const std::string session(reinterpret_cast<const char*>(q.session_info.data()), q.session_info.size());
    EXPECT_NE(session.find("nobody"), std::string::npos) << "the account Samba authenticated";
}

// The SIDs python3-samba's own NDR decoder reads in the same captures.
TEST(SmbHandshake, TheSessionsUserIsItsTokensFirstSid) {
    const auto anonymous = decoded(bytes(test::npa_request_anonymous, test::npa_request_anonymous_len));
    EXPECT_EQ(session_user_sid(anonymous.session_info), "S-1-5-7") << "ANONYMOUS LOGON";
    const auto nobody = decoded(bytes(test::npa_request_nobody, test::npa_request_nobody_len));
    EXPECT_EQ(session_user_sid(nobody.session_info), "S-1-5-21-1122290409-2917997796-954646685-501")
        << "VM\\nobody, as Samba's SAM names it";
}

TEST(SmbHandshake, ASessionCutBeforeItsLastSidNamesNobody) {
    const auto nobody = decoded(bytes(test::npa_request_nobody, test::npa_request_nobody_len));
    const std::size_t sids_end = 0x16c - 0x80;  // the 9th SID's last byte, counted from the session's start
    const auto session = std::span<const std::byte>(nobody.session_info);
    for (std::size_t n = 0; n < sids_end; ++n) EXPECT_EQ(session_user_sid(session.first(n)), std::nullopt) << n;
    EXPECT_TRUE(session_user_sid(session.first(sids_end)));
}

TEST(SmbHandshake, ABrokenTokenNamesNobody) {
    const auto nobody = decoded(bytes(test::npa_request_nobody, test::npa_request_nobody_len));
    // From the session's start: 0x08 the token's pointer, 0x48 the count, 0x4c the
    // number of SIDs, 0x50 the first SID's revision and number of sub-authorities.
    const struct {
        std::size_t at, width;  // `width` bytes from `at` become `value`'s (little-endian)
        std::uint32_t value;
        const char* why;
    } cases[] = {
        {0x00, 4, 0, "no session"},           {0x08, 4, 0, "no token"},        {0x48, 4, 8, "count and size differ"},
        {0x4c, 4, 0, "no SID"},               {0x50, 1, 2, "SID revision 2"},  {0x51, 1, 16, "16 sub-authorities"},
        {0x44, 1, 1, "non-zero padding"},     {0x30, 4, 1, "a credentials pointer"},
    };
    for (const auto& c : cases) {
        auto session = nobody.session_info;
        for (std::size_t i = 0; i < c.width; ++i) session[c.at + i] = static_cast<std::byte>(c.value >> (8 * i));
        EXPECT_EQ(session_user_sid(session), std::nullopt) << c.why;
    }
}

TEST(SmbHandshake, EveryTruncationIsMalformedAndNothingReadsPastTheEnd) {
    for (const auto& r : {bytes(test::npa_request_anonymous, test::npa_request_anonymous_len),
                          bytes(test::npa_request_nobody, test::npa_request_nobody_len)}) {
        const auto whole = body(r);
        // Up to the last string; after it the session runs to the end (its own decoder is to come).
        for (std::size_t n = 0; n < 0x7e - npa_length_size; ++n) {
            NpaRequest q;
            EXPECT_EQ(decode_npa_request(whole.first(n), q), NpaResult::malformed) << n << " bytes";
        }
    }
}

TEST(SmbHandshake, LengthsOutOfBoundsAreRefusedBeforeAnythingIsRead) {
    const auto length = [](std::uint32_t n) {
        const std::array<std::byte, 4> p{std::byte(n >> 24), std::byte(n >> 16), std::byte(n >> 8), std::byte(n)};
        return decode_npa_length(p);
    };
    EXPECT_EQ(length(0), std::nullopt);
    EXPECT_EQ(length(11), std::nullopt) << "shorter than magic, level and arm";
    EXPECT_EQ(length(12), 12u);
    EXPECT_EQ(length(max_npa_request), max_npa_request);
    EXPECT_EQ(length(max_npa_request + 1), std::nullopt);
    EXPECT_EQ(length(0xFFFFFFFF), std::nullopt);
}

TEST(SmbHandshake, AnythingButLevelSevenIsNamedAsSuch) {
    auto r = bytes(test::npa_request_anonymous, test::npa_request_anonymous_len);
    NpaRequest q;
    r[8] = std::byte{8};
    EXPECT_EQ(decode_npa_request(body(r), q), NpaResult::other_level) << "a later Samba";
    r[8] = std::byte{7};
    r[12] = std::byte{8};
    EXPECT_EQ(decode_npa_request(body(r), q), NpaResult::malformed) << "the union's arm differs from the level";
    r[12] = std::byte{7};
    r[4] = std::byte{'X'};
    EXPECT_EQ(decode_npa_request(body(r), q), NpaResult::malformed) << "no magic";
}

TEST(SmbHandshake, BrokenStringsAreMalformed) {
    const auto original = bytes(test::npa_request_anonymous, test::npa_request_anonymous_len);
    // The first string, at 0x30: max, offset, actual, "vm\0", one byte of padding.
    const struct {
        std::size_t at;
        unsigned char value;
        const char* why;
    } cases[] = {
        {0x30, 4, "max differs from actual"},  {0x34, 1, "an offset"},        {0x38, 4, "actual differs from max"},
        {0x3e, 'x', "no terminating NUL"},      {0x3d, 0, "a NUL inside"},     {0x3f, 1, "padding that is not zero"},
        {0x31, 0x10, "longer than the request"}, {0x13, 1, "padding after the transport"},
    };
    for (const auto& c : cases) {
        auto r = original;
        r[c.at] = static_cast<std::byte>(c.value);
        NpaRequest q;
        EXPECT_EQ(decode_npa_request(body(r), q), NpaResult::malformed) << c.why;
    }
    auto no_session = original;
    no_session[0x2c] = no_session[0x2d] = no_session[0x2e] = no_session[0x2f] = std::byte{0};
    NpaRequest q;
    EXPECT_EQ(decode_npa_request(body(no_session), q), NpaResult::malformed) << "no session, yet bytes follow";
    EXPECT_EQ(decode_npa_request(body(no_session).first(0x7e - npa_length_size), q), NpaResult::ok)
        << "no session, and nothing after the strings";
    EXPECT_TRUE(q.session_info.empty());
}

TEST(SmbHandshake, TheReplyIsTheOneSmbdTook) {
    const auto reply = encode_npa_reply(7, SmbPipeType::message);
    const unsigned char expected[] = {0x00, 0x00, 0x00, 0x20, 'N', 'P', 'A', 'M', 7, 0, 0, 0, 7, 0, 0, 0, 2, 0,
                                      0xff, 0x05, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(reply.size(), sizeof expected);
    EXPECT_EQ(std::memcmp(reply.data(), expected, sizeof expected), 0);
    EXPECT_EQ(encode_npa_reply(7, SmbPipeType::byte)[16], std::byte{1});
}

TEST(SmbHandshake, MessageFramingHasNoRoomForEmptyOrLongMessages) {
    EXPECT_EQ(encode_smb_message_header(0), std::nullopt);
    EXPECT_EQ(encode_smb_message_header(max_smb_message + 1), std::nullopt);
    const auto h = encode_smb_message_header(300);
    ASSERT_TRUE(h);
    EXPECT_EQ((*h)[0], std::byte{0x2c});
    EXPECT_EQ((*h)[1], std::byte{0x01});
    EXPECT_EQ(decode_smb_message_header(*h), 300u);
    EXPECT_EQ(decode_smb_message_header(*encode_smb_message_header(max_smb_message)), max_smb_message);
    const std::array<std::byte, 2> zero{};
    EXPECT_EQ(decode_smb_message_header(zero), std::nullopt);
}

}  // namespace
}  // namespace pipeslot::detail
