// The throwing overloads of the public API are thin wrappers around the
// error_code ones; this is their one way to throw.
#pragma once

#include <string>
#include <system_error>

namespace pipeslot::detail {

inline void throw_if(const std::error_code& ec, const std::string& what) {
    if (ec) throw std::system_error(ec, what);
}

// Calls f(ec) and returns its result, or throws std::system_error(ec, what).
template <class F>
auto or_throw(const std::string& what, F&& f) {
    std::error_code ec;
    auto result = f(ec);
    throw_if(ec, what);
    return result;
}

}  // namespace pipeslot::detail
