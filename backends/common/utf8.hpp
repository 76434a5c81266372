// Strict UTF-8: overlong forms, surrogates and values above U+10FFFF are errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pipeslot::detail {

std::optional<std::u32string> decode_utf8(std::string_view text);
void append_utf8(std::string& out, char32_t c);

}  // namespace pipeslot::detail
