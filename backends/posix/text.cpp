#include "../common/platform.hpp"

#include <unicode/uchar.h>

namespace pipeslot::platform {

char32_t simple_upper(char32_t c) noexcept {
    // Windows upper-cases UTF-16 units through a BMP-only table; match it.
    if (c > 0xFFFF) return c;
    return static_cast<char32_t>(u_toupper(static_cast<UChar32>(c)));
}

}  // namespace pipeslot::platform
