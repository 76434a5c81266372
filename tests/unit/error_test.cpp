// The portable error model: messages, and both native tables.
#include "common/error_map.hpp"

#include <pipeslot/error.hpp>

#include <gtest/gtest.h>

#include <cerrno>

namespace pipeslot {
namespace {

TEST(Errors, EveryCodeHasAReadableMessageInOneCategory) {
    for (int v = static_cast<int>(errc::broken_pipe); v <= static_cast<int>(errc::pipe_listening); ++v) {
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
             {536, errc::pipe_listening}}) {
        EXPECT_EQ(detail::error_from_win32(c.native), c.portable) << c.native;
    }
    EXPECT_FALSE(detail::error_from_win32(0));
    EXPECT_EQ(detail::error_from_win32(1234), std::error_code(1234, std::system_category()));
}

}  // namespace
}  // namespace pipeslot
