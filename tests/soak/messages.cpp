// The message formats: a pipe request and its reply, a mailslot message; each
// carries hashes so the receiver can tell a corrupt one from a good one.
#include "soak.hpp"

#include <algorithm>
#include <cstring>

namespace soak {

constexpr std::uint32_t request_magic = 0x4b414f53;   // "SOAK"
constexpr std::uint32_t mailslot_magic = 0x544c534d;  // "MSLT"
constexpr std::size_t request_header = 40;

static std::uint64_t fnv64(const std::byte* p, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= std::to_integer<unsigned>(p[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void put64(std::byte* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
static void put32(std::byte* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
std::uint64_t get64(const std::byte* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
static std::uint32_t get32(const std::byte* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

std::size_t pick(Rng& rng, std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

// Mostly small, with a tail up to 256 KiB: large ones take the more_data paths.
static std::size_t random_payload_size(Rng& rng, bool& large) {
    const auto r = pick(rng, 0, 99);
    large = r >= 60;
    if (r < 60) return pick(rng, 0, 512);
    if (r < 85) return pick(rng, 513, 16 << 10);
    if (r < 97) return pick(rng, (16 << 10) + 1, 64 << 10);
    return pick(rng, (64 << 10) + 1, 256 << 10);
}

static void fill_random(Rng& rng, std::byte* p, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 8) {
        const auto v = rng();
        std::memcpy(p + i, &v, std::min<std::size_t>(8, n - i));
    }
}

std::vector<std::byte> make_request(Rng& rng, std::uint64_t tag, std::uint64_t seq, bool& large, std::size_t max_payload) {
    large = false;
    if (pick(rng, 0, 99) < 3) return {};
    const auto n = std::min(random_payload_size(rng, large), max_payload);
    std::vector<std::byte> m(request_header + n);
    fill_random(rng, m.data() + request_header, n);
    put32(m.data(), request_magic);
    put32(m.data() + 4, std::uint32_t(n));
    put64(m.data() + 8, tag);
    put64(m.data() + 16, seq);
    put64(m.data() + 24, fnv64(m.data() + request_header, n));
    put64(m.data() + 32, fnv64(m.data(), 32));
    return m;
}

bool request_is_good(std::span<const std::byte> m) {
    if (m.empty()) return true;
    if (m.size() < request_header || get32(m.data()) != request_magic) return false;
    const auto n = get32(m.data() + 4);
    return m.size() == request_header + n && get64(m.data() + 32) == fnv64(m.data(), 32) &&
           get64(m.data() + 24) == fnv64(m.data() + request_header, n);
}

std::vector<std::byte> transform(std::span<const std::byte> request) {
    std::vector<std::byte> r(8 + request.size());
    put64(r.data(), fnv64(request.data(), request.size()));
    std::reverse_copy(request.begin(), request.end(), r.begin() + 8);
    return r;
}

std::vector<std::byte> make_mailslot_message(Rng& rng, std::uint64_t writer, std::uint64_t seq, std::size_t payload) {
    std::vector<std::byte> m(mailslot_header + payload);
    fill_random(rng, m.data() + mailslot_header, payload);
    put32(m.data(), mailslot_magic);
    put32(m.data() + 4, std::uint32_t(payload));
    put64(m.data() + 8, writer);
    put64(m.data() + 16, seq);
    put64(m.data() + 24, fnv64(m.data() + mailslot_header, payload));
    return m;
}

bool mailslot_message_is_good(std::span<const std::byte> m) {
    if (m.size() < mailslot_header || get32(m.data()) != mailslot_magic) return false;
    const auto n = get32(m.data() + 4);
    return m.size() == mailslot_header + n && get64(m.data() + 24) == fnv64(m.data() + mailslot_header, n);
}

}  // namespace soak
