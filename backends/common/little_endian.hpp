// Fixed-offset little-endian fields of the wire format's payloads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace pipeslot::detail {

template <class T>
void put_le(std::span<std::byte> out, std::size_t at, T value) noexcept {
    auto v = static_cast<std::uint64_t>(value);
    for (std::size_t i = 0; i < sizeof(T); ++i) out[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

template <class T>
T get_le(std::span<const std::byte> in, std::size_t at) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(in[at + i]) << (8 * i);
    return static_cast<T>(v);
}

}  // namespace pipeslot::detail
