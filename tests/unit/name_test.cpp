// Names: parsing, validation and case folding (backends/common/name.cpp).
#include <pipeslot/error.hpp>
#include <pipeslot/name.hpp>

#include <gtest/gtest.h>

namespace pipeslot {
namespace {

std::error_code pipe_error(std::string_view text) {
    std::error_code ec;
    PipeName::parse(text, ec);
    return ec;
}

std::error_code mailslot_error(std::string_view text) {
    std::error_code ec;
    MailslotName::parse(text, ec);
    return ec;
}

std::string repeat(std::string_view unit, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += unit;
    return s;
}

TEST(Names, LocalPipe) {
    const auto n = PipeName::parse(R"(\\.\pipe\my-service)");
    EXPECT_EQ(n.kind(), NameKind::pipe);
    EXPECT_TRUE(n.is_local());
    EXPECT_FALSE(n.is_broadcast());
    EXPECT_EQ(n.server(), ".");
    EXPECT_EQ(n.name(), "my-service");
    EXPECT_EQ(n.folded_name(), "MY-SERVICE");
    EXPECT_EQ(n.str(), R"(\\.\pipe\my-service)");
}

TEST(Names, RemotePipeAndKeywordCase) {
    const auto n = PipeName::parse(R"(\\Build-Host.example\PIPE\jobs)");
    EXPECT_FALSE(n.is_local());
    EXPECT_EQ(n.server(), "Build-Host.example");
    EXPECT_EQ(n.folded_server(), "build-host.example");
    EXPECT_EQ(n.name(), "jobs");
}

TEST(Names, MailslotForms) {
    EXPECT_TRUE(MailslotName::parse(R"(\\.\mailslot\sample)").is_local());
    EXPECT_TRUE(MailslotName::parse(R"(\\*\mailslot\sample)").is_broadcast());
    const auto nested = MailslotName::parse(R"(\\host\MailSlot\app\status\v1)");
    EXPECT_EQ(nested.kind(), NameKind::mailslot);
    EXPECT_EQ(nested.name(), R"(app\status\v1)");
}

TEST(Names, ComparisonIgnoresCaseIncludingNonAscii) {
    EXPECT_EQ(PipeName::parse(R"(\\.\pipe\Service)"), PipeName::parse(R"(\\.\PIPE\sERVICE)"));
    // U+00C4 U+00D6 U+0055  vs  U+00E4 U+00F6 U+00FC ... Ä Ö Ü / ä ö ü
    EXPECT_EQ(PipeName::parse("\\\\.\\pipe\\\xc3\x84\xc3\x96\xc3\x9c"),
              PipeName::parse("\\\\.\\pipe\\\xc3\xa4\xc3\xb6\xc3\xbc"));
    // Greek and Cyrillic: ΣΊΣΥΦΟΣ vs σίσυφοσ, ЖУК vs жук. (Final sigma is left
    // out: Wine's invariant table leaves it as it is; ICU upper-cases it.)
    EXPECT_EQ(PipeName::parse("\\\\.\\pipe\\\xce\xa3\xce\x8a\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3"),
              PipeName::parse("\\\\.\\pipe\\\xcf\x83\xce\xaf\xcf\x83\xcf\x85\xcf\x86\xce\xbf\xcf\x83"));
    EXPECT_EQ(PipeName::parse("\\\\.\\pipe\\\xd0\x96\xd0\xa3\xd0\x9a"),
              PipeName::parse("\\\\.\\pipe\\\xd0\xb6\xd1\x83\xd0\xba"));
    EXPECT_NE(PipeName::parse(R"(\\.\pipe\a)"), PipeName::parse(R"(\\.\pipe\b)"));
    EXPECT_NE(PipeName::parse(R"(\\.\pipe\a)"), PipeName::parse(R"(\\other\pipe\a)"));
}

TEST(Names, LengthLimitCountsCodePoints) {
    EXPECT_FALSE(pipe_error("\\\\.\\pipe\\" + repeat("x", 256)));
    EXPECT_EQ(pipe_error("\\\\.\\pipe\\" + repeat("x", 257)), errc::invalid_name);
    // 256 three-byte characters are 768 bytes and still valid.
    EXPECT_FALSE(pipe_error("\\\\.\\pipe\\" + repeat("\xe6\x97\xa5", 256)));
    EXPECT_EQ(pipe_error("\\\\.\\pipe\\" + repeat("\xe6\x97\xa5", 257)), errc::invalid_name);
    EXPECT_EQ(pipe_error("\\\\.\\pipe\\" + repeat("x", 300)), errc::invalid_name);
}

TEST(Names, HostileNamesAreAcceptedOnlyAsOpaqueText) {
    // These are ordinary characters in a name; the backend must keep them
    // from ever becoming a path (tested with the backends).
    for (const char* leaf : {"..", "../../etc/passwd", "a/b", "/", ".", "~", "con", "nul:"}) {
        EXPECT_FALSE(pipe_error(std::string("\\\\.\\pipe\\") + leaf)) << leaf;
    }
}

TEST(Names, InvalidNamesAreRejected) {
    const std::string nul_inside("\\\\.\\pipe\\a\0b", 12);
    for (const std::string& bad : std::vector<std::string>{
             "", "pipe", R"(\\.\pipe\)", R"(\\.\pipe)", R"(\\.\pipes\x)", R"(\\.\mailslot\x)",
             R"(\.\pipe\x)", R"(//./pipe/x)", R"(\\./pipe/x)", R"(\\\pipe\x)", R"(\\*\pipe\x)",
             R"(\\.\pipe\a\b)", R"(\\bad host\pipe\x)", R"(\\host/x\pipe\y)", nul_inside,
             "\\\\.\\pipe\\\xff", "\\\\.\\pipe\\\xc0\xaf", "\\\\.\\pipe\\\xed\xa0\x80", "\\\\.\\pipe\\\xe6\x97",
             "\\\\" + repeat("h", 256) + "\\pipe\\x"}) {
        EXPECT_EQ(pipe_error(bad), errc::invalid_name) << bad;
    }
    for (const std::string& bad : std::vector<std::string>{
             R"(\\.\mailslot\)", R"(\\.\mailslot\\x)", R"(\\.\mailslot\x\)", R"(\\.\mailslot\a\\b)",
             R"(\\.\pipe\x)", R"(\\**\mailslot\x)"}) {
        EXPECT_EQ(mailslot_error(bad), errc::invalid_name) << bad;
    }
    EXPECT_THROW(PipeName::parse("nonsense"), std::system_error);
    std::error_code ec;
    EXPECT_TRUE(PipeName::parse("nonsense", ec).empty());
}

}  // namespace
}  // namespace pipeslot
