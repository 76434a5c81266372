// A key kept in a file as hex digits (a pre-shared key for the gateway's TLS).
#pragma once

#include <charconv>
#include <cstddef>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace pipeslot::detail {

inline std::optional<std::vector<std::byte>> read_hex_file(const std::string& path) {
    std::ifstream in(path);
    std::string text;
    if (!in || !(in >> text) || text.empty() || text.size() % 2 != 0) return std::nullopt;
    std::vector<std::byte> bytes;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        unsigned v = 0;
        const auto [end, error] = std::from_chars(text.data() + i, text.data() + i + 2, v, 16);
        if (error != std::errc{} || end != text.data() + i + 2) return std::nullopt;
        bytes.push_back(static_cast<std::byte>(v));
    }
    return bytes;
}

}  // namespace pipeslot::detail
