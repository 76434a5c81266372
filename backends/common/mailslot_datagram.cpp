#include "mailslot_datagram.hpp"

#include "utf8.hpp"

#include <pipeslot/mailslot.hpp>

#include <cstring>

namespace pipeslot::detail {
namespace {
constexpr char magic[4] = {'P', 'S', 'M', 'S'};
constexpr std::uint8_t version = 1;

void put16(std::vector<std::byte>& out, std::size_t v) {
    out.push_back(static_cast<std::byte>(v & 0xFF));
    out.push_back(static_cast<std::byte>((v >> 8) & 0xFF));
}
std::size_t get16(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::size_t>(b[at]) | (static_cast<std::size_t>(b[at + 1]) << 8);
}
std::string_view text(std::span<const std::byte> b, std::size_t at, std::size_t n) {
    return {reinterpret_cast<const char*>(b.data() + at), n};
}
}  // namespace

std::vector<std::byte> encode_datagram(DatagramScope scope, std::string_view domain, std::string_view slot,
                                       std::span<const std::byte> payload) {
    std::vector<std::byte> out;
    out.reserve(datagram_header_size + domain.size() + slot.size() + payload.size());
    for (char c : magic) out.push_back(static_cast<std::byte>(c));
    out.push_back(std::byte{version});
    out.push_back(static_cast<std::byte>(scope));
    out.push_back(static_cast<std::byte>(domain.size()));
    out.push_back(std::byte{0});
    put16(out, slot.size());
    put16(out, payload.size());
    for (char c : domain) out.push_back(static_cast<std::byte>(c));
    for (char c : slot) out.push_back(static_cast<std::byte>(c));
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

std::optional<DatagramView> decode_datagram(std::span<const std::byte> b) noexcept {
    if (b.size() < datagram_header_size || std::memcmp(b.data(), magic, 4) != 0) return std::nullopt;
    if (static_cast<std::uint8_t>(b[4]) != version || b[7] != std::byte{0}) return std::nullopt;
    const auto scope = static_cast<std::uint8_t>(b[5]);
    const std::size_t domain_length = static_cast<std::uint8_t>(b[6]);
    const std::size_t slot_length = get16(b, 8);
    const std::size_t payload_length = get16(b, 10);
    if (scope > 2 || (scope == 1) != (domain_length > 0) || slot_length == 0 ||
        slot_length > max_datagram_slot_name || payload_length > max_network_mailslot_message)
        return std::nullopt;
    if (datagram_header_size + domain_length + slot_length + payload_length != b.size()) return std::nullopt;
    DatagramView v{static_cast<DatagramScope>(scope), text(b, datagram_header_size, domain_length),
                   text(b, datagram_header_size + domain_length, slot_length),
                   b.subspan(datagram_header_size + domain_length + slot_length, payload_length)};
    if (!decode_utf8(v.slot) || !decode_utf8(v.domain)) return std::nullopt;
    return v;
}

}  // namespace pipeslot::detail
