#include "../common/platform.hpp"
#include "win.hpp"

namespace pipeslot::platform {

char32_t simple_upper(char32_t c) noexcept {
    // The invariant upper-casing of one UTF-16 unit, as the object namespace
    // compares names; code points outside the BMP are left alone.
    if (c > 0xFFFF) return c;
    const auto in = static_cast<wchar_t>(c);
    wchar_t out = in;
    if (LCMapStringEx(LOCALE_NAME_INVARIANT, LCMAP_UPPERCASE, &in, 1, &out, 1, nullptr, nullptr, 0) != 1) return c;
    return static_cast<char32_t>(out);
}

}  // namespace pipeslot::platform
