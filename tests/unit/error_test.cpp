// The portable error model: messages, and both native tables.
#include "common/error_map.hpp"

#include <pipeslot/error.hpp>

#include <gtest/gtest.h>

#include <cerrno>

namespace pipeslot {
namespace {

TEST(Errors, EveryCodeHasAReadableMessageInOneCategory) {
    for (int v = static_cast<int>(errc::broken_pipe); v <= static_cast<int>(errc::pipe_local); ++v) {
        const std::error_code ec = static_cast<errc>(v);
        EXPECT_EQ(&ec.category(), &category());
        EXPECT_STREQ(ec.category().name(), "pipeslot");
        EXPECT_EQ(ec.message().find("unknown"), std::string::npos) << v;
    }
    EXPECT_FALSE(std::error_code(errc::broken_pipe) == std::error_code(errc::end_of_stream));
}

struct ErrnoCase { int native; errc portable; };
TEST(Errors, ErrnoTable) {
    for (const auto& c : std::vector<ErrnoCase>{
             {EPIPE, errc::broken_pipe}, {ECONNRESET, errc::broken_pipe}, {ENOTCONN, errc::not_connected},
             {ENOENT, errc::not_found}, {ECONNREFUSED, errc::not_found}, {ETIMEDOUT, errc::timed_out},
             {ENAMETOOLONG, errc::invalid_name}, {EEXIST, errc::name_in_use}, {EADDRINUSE, errc::name_in_use},
             {EMSGSIZE, errc::message_too_large}, {EACCES, errc::access_denied}, {EPERM, errc::access_denied},
             {ECANCELED, errc::cancelled}, {EINVAL, errc::invalid_argument}, {EBADF, errc::invalid_argument},
             {ENOSYS, errc::not_supported}, {EMFILE, errc::resource_exhausted}, {ENOMEM, errc::resource_exhausted},
             {ENOSPC, errc::resource_exhausted}, {EFBIG, errc::resource_exhausted},
             {EAGAIN, errc::no_data}}) {
        EXPECT_EQ(detail::error_from_errno(c.native), c.portable) << c.native;
    }
    EXPECT_FALSE(detail::error_from_errno(0));
    const auto unknown = detail::error_from_errno(EDOM);
    EXPECT_EQ(unknown, std::error_code(EDOM, std::system_category())) << "unmapped codes pass through";
}

struct Win32Case { std::uint32_t native; errc portable; };
TEST(Errors, Win32Table) {
    // Numbers from winerror.h, so this table runs on every platform.
    for (const auto& c : std::vector<Win32Case>{
             {109, errc::broken_pipe},         {232, errc::no_data},          {233, errc::not_connected},
             {231, errc::pipe_busy},           {234, errc::more_data},        {2, errc::not_found},
             {3, errc::not_found},             {53, errc::not_found},         {67, errc::not_found},
             {121, errc::timed_out},           {258, errc::timed_out},        {1460, errc::timed_out},
             {123, errc::invalid_name},        {161, errc::invalid_name},     {206, errc::invalid_name},
             {183, errc::name_in_use},         {80, errc::name_in_use},       {5, errc::access_denied},
             {995, errc::cancelled},           {87, errc::invalid_argument},  {6, errc::invalid_argument},
             {122, errc::buffer_too_small},    {50, errc::not_supported},     {4, errc::resource_exhausted},
             {8, errc::resource_exhausted},    {1450, errc::resource_exhausted}, {535, errc::already_connected},
             {536, errc::pipe_listening},      {230, errc::bad_pipe},         {1, errc::not_supported},
             {229, errc::pipe_local},
             {32, errc::access_denied},        {38, errc::end_of_stream},     {1168, errc::not_found},
             {1223, errc::cancelled},          {1816, errc::resource_exhausted}}) {
        EXPECT_EQ(detail::error_from_win32(c.native), c.portable) << c.native;
    }
    EXPECT_FALSE(detail::error_from_win32(0));
    EXPECT_EQ(detail::error_from_win32(1234), std::error_code(1234, std::system_category()));
}

TEST(Errors, ConditionsGroupFamilies) {
    const auto members = [](condition c) {
        std::vector<errc> in;
        for (int v = static_cast<int>(errc::broken_pipe); v <= static_cast<int>(errc::pipe_local); ++v)
            if (std::error_code(static_cast<errc>(v)) == c) in.push_back(static_cast<errc>(v));
        return in;
    };
    using V = std::vector<errc>;
    EXPECT_EQ(members(condition::peer_gone),
              (V{errc::broken_pipe, errc::end_of_stream, errc::not_connected, errc::pipe_closing}));
    EXPECT_EQ(members(condition::busy), (V{errc::pipe_busy, errc::too_many_instances}));
    EXPECT_EQ(members(condition::no_client), (V{errc::not_connected, errc::pipe_listening, errc::bad_pipe}));
    EXPECT_EQ(members(condition::bad_input), (V{errc::invalid_name, errc::message_too_large, errc::invalid_argument,
                                               errc::buffer_too_small, errc::protocol_error}));
    EXPECT_STREQ(condition_category().name(), "pipeslot-condition");
    EXPECT_EQ(make_error_condition(condition::busy).message(), "no pipe instance is free");
    // Another category's code is in no family, even with a member's number.
    EXPECT_FALSE(std::error_code(static_cast<int>(errc::broken_pipe), std::system_category()) == condition::peer_gone);
}

TEST(Errors, CodesCompareEqualToTheStandardConditionOfTheSameMeaning) {
    EXPECT_EQ(std::error_code(errc::timed_out), std::errc::timed_out);
    EXPECT_EQ(std::error_code(errc::broken_pipe), std::errc::broken_pipe);
    EXPECT_EQ(std::error_code(errc::pipe_closing), std::errc::broken_pipe);
    EXPECT_EQ(std::error_code(errc::access_denied), std::errc::permission_denied);
    EXPECT_EQ(std::error_code(errc::not_found), std::errc::no_such_file_or_directory);
    EXPECT_EQ(std::error_code(errc::invalid_argument), std::errc::invalid_argument);
    EXPECT_EQ(std::error_code(errc::cancelled), std::errc::operation_canceled);
    EXPECT_NE(std::error_code(errc::more_data), std::errc::message_size);
}

}  // namespace
}  // namespace pipeslot
