// The throwing overloads of the public API are thin wrappers around the
// error_code ones; this is their one way to throw.
#pragma once

#include <string>
#include <system_error>

namespace pipeslot::detail {

inline void throw_if(const std::error_code& ec, const std::string& what) {
    if (ec) throw std::system_error(ec, what);
}

}  // namespace pipeslot::detail
