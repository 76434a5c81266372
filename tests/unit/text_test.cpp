// UTF-8 decoding, Windows command-line quoting and timeouts: pure logic in
// backends/common, the same on every platform.
#include "common/command_line.hpp"
#include "common/deadline.hpp"
#include "common/utf8.hpp"

#include <gtest/gtest.h>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;

TEST(Utf8, RoundTripsEveryPlane) {
    const std::u32string text = U"a\u00e9\u65e5\U0001F600";
    std::string encoded;
    for (char32_t c : text) detail::append_utf8(encoded, c);
    EXPECT_EQ(encoded, "a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80");
    EXPECT_EQ(detail::decode_utf8(encoded), text);
}

TEST(Utf8, RejectsMalformedInput) {
    for (const char* bad : {"\x80", "\xc3", "\xc0\x80", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                            "\xf8\x88\x80\x80\x80", "\xff", "a\xe6\x97"}) {
        EXPECT_FALSE(detail::decode_utf8(bad)) << bad;
    }
}

struct QuoteCase { std::string arg, quoted; };
TEST(WindowsCommandLine, QuotesOnlyWhatNeedsIt) {
    for (const auto& c : std::vector<QuoteCase>{
             {"plain", "plain"},
             {"", R"("")"},
             {"two words", R"("two words")"},
             {R"(a\b)", R"(a\b)"},                 // backslashes alone are literal
             {R"(a\)", R"(a\)"},
             {R"(a b\)", R"("a b\\")"},            // doubled before the closing quote
             {R"(")", R"("\"")"},
             {R"(a\"b)", R"("a\\\"b")"},           // 2n+1 backslashes before a quote
             {R"(\\server\share\)", R"(\\server\share\)"},
             {"tab\there", "\"tab\there\""}}) {
        EXPECT_EQ(detail::quote_windows_argument(c.arg), c.quoted) << c.arg;
    }
    EXPECT_EQ(detail::windows_command_line(R"(C:\Program Files\x.exe)", {"a", "b c"}),
              R"("C:\Program Files\x.exe" a "b c")");
}

TEST(Timeouts, ValuesAndValidity) {
    EXPECT_TRUE(Timeout::forever().is_forever());
    EXPECT_TRUE(Timeout::forever().is_valid());
    EXPECT_EQ(Timeout::none().value(), 0ms);
    EXPECT_EQ(Timeout(1500us).value(), 2ms) << "rounded up";
    EXPECT_EQ(Timeout(2s).value(), 2000ms);
    EXPECT_FALSE(Timeout(-1ms).is_valid());
    EXPECT_FALSE(Timeout(-1ms).is_forever());
    detail::Deadline now(Timeout::none());
    EXPECT_TRUE(now.expired());
    EXPECT_EQ(now.remaining_ms(), 0);
    detail::Deadline never(Timeout::forever());
    EXPECT_FALSE(never.expired());
    EXPECT_EQ(never.remaining_ms(), -1);
    detail::Deadline soon(Timeout(1h));
    EXPECT_GT(soon.remaining_ms(), 3590'000);
}

}  // namespace
}  // namespace pipeslot
