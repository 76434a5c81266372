// The datagram that carries a mailslot message between hosts (POSIX backend,
// UDP). See docs/wire-format.md.
//
//   0   4  magic "PSMS"
//   4   1  version (1)
//   5   1  scope: 0 every host (\\*), 1 a domain (\\DOMAIN), 2 one host (\\HOST)
//   6   1  domain length D (0 unless scope is 1)
//   7   1  zero
//   8   2  slot name length N, little-endian (1..max_datagram_slot_name)
//   10  2  payload length L, little-endian (0..max_network_mailslot_message)
//   12  D  domain, upper-cased UTF-8
//   .   N  slot name, folded (upper-cased) UTF-8, as MailslotName::folded_name()
//   .   L  payload
// The lengths must add up to the datagram's size exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipeslot::detail {

enum class DatagramScope : std::uint8_t { every_host = 0, domain = 1, one_host = 2 };

inline constexpr std::size_t datagram_header_size = 12;
inline constexpr std::size_t max_datagram_slot_name = 1024;

struct DatagramView {
    DatagramScope scope;
    std::string_view domain;
    std::string_view slot;
    std::span<const std::byte> payload;
};

std::vector<std::byte> encode_datagram(DatagramScope scope, std::string_view domain, std::string_view slot,
                                       std::span<const std::byte> payload);
// nullopt for anything malformed; the view points into `bytes`.
std::optional<DatagramView> decode_datagram(std::span<const std::byte> bytes) noexcept;

}  // namespace pipeslot::detail
