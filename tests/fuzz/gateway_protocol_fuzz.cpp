// libFuzzer target: what a network gateway reads from anyone who reaches its
// TCP port, as gateway_protocol.cpp decodes it: the first frame (a gateway
// open), and the channel frames it relays afterwards (FrameScanner), split
// into chunks as TCP may split them.
#include "common/gateway_protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace {

using namespace pipeslot::detail;

bool same_fields(const GatewayOpen& a, const GatewayOpen& b) {
    const auto& x = a.request;
    const auto& y = b.request;
    return a.version == b.version && a.name == b.name && x.version == y.version && x.access == y.access &&
           x.remote == y.remote && x.message_read_mode == y.message_read_mode &&
           x.use_server_default_wait == y.use_server_default_wait && x.wait_only == y.wait_only && x.query == y.query &&
           x.wait_ms == y.wait_ms;
}

// The first frame, as the gateway reads it: the header, then the payload of the header's length.
void gateway_open(std::span<const std::byte> input) {
    if (input.size() < frame_header_size) return;
    const auto header = decode_header(input.first<frame_header_size>());
    if (!header || header->kind != FrameKind::gateway_open) return;
    if (header->length > max_gateway_open_payload) __builtin_trap();  // decode_header's bound
    if (input.size() - frame_header_size < header->length) return;    // the gateway waits for the rest
    const auto frame = input.first(frame_header_size + header->length);
    const auto first = decode_gateway_open(frame.subspan(frame_header_size));
    if (!first || first->version != gateway_version) return;  // another version: answered not_supported
    if (first->name.empty() || first->name.size() > max_gateway_name_bytes) __builtin_trap();
    if (first->name.find('\0') != std::string::npos) __builtin_trap();
    if (first->request.remote) __builtin_trap();  // only the gateway sets it, on its own side

    const auto bytes = encode_gateway_open(*first);
    const auto again = decode_gateway_open(std::span<const std::byte>(bytes).subspan(frame_header_size));
    if (!again || !same_fields(*first, *again)) __builtin_trap();
    const auto bytes_again = encode_gateway_open(*again);
    if (bytes_again != bytes) __builtin_trap();
    // Every byte of the layout is a field the decoder checked: the frame re-encodes to itself.
    if (bytes.size() != frame.size() || std::memcmp(bytes.data(), frame.data(), frame.size()) != 0) __builtin_trap();
}

struct ScanResult {
    bool ok = true;
    std::uint64_t payload_bytes = 0;
    bool disconnect = false;
    bool operator==(const ScanResult&) const = default;
};

// next_chunk(remaining) gives the size of the next chunk (at most remaining; 0 is allowed).
template <class NextChunk>
ScanResult scan_in_chunks(std::span<const std::byte> input, NextChunk next_chunk) {
    FrameScanner scanner;
    ScanResult r;
    int empty_in_a_row = 0;
    do {
        auto n = std::min(next_chunk(input.size()), input.size());
        if (n == 0 && ++empty_in_a_row > 3) n = std::min<std::size_t>(1, input.size());
        if (n > 0) empty_in_a_row = 0;
        std::uint64_t counted = ~std::uint64_t{0};  // scan sets it
        const bool ok = scanner.scan(input.first(n), counted);
        if (counted > n) __builtin_trap();            // counts only bytes of this chunk
        if (!r.ok && (ok || counted != 0)) __builtin_trap();  // a failed stream stays failed, counts nothing more
        r.ok = ok;
        r.payload_bytes += counted;
        input = input.subspan(n);
    } while (!input.empty());
    r.disconnect = scanner.saw_disconnect();
    return r;
}

// The frames read straight through, the way docs/wire-format.md describes them.
ScanResult reference_scan(std::span<const std::byte> input) {
    ScanResult r;
    std::size_t pos = 0;
    while (input.size() - pos >= frame_header_size) {
        const auto header = decode_header(input.subspan(pos).first<frame_header_size>());
        if (!header || !is_channel_frame(header->kind) || r.disconnect) {
            r.ok = false;
            return r;
        }
        if (header->kind == FrameKind::disconnect) r.disconnect = true;
        pos += frame_header_size;
        const auto n = std::min<std::uint64_t>(header->length, input.size() - pos);
        r.payload_bytes += n;
        pos += static_cast<std::size_t>(n);
    }
    return r;  // a partial header (or none) at the end: not malformed yet
}

// The same bytes as one direction of a relayed connection.
void frame_scanner(std::span<const std::byte> input) {
    const auto whole = scan_in_chunks(input, [](std::size_t remaining) { return remaining; });
    if (whole.payload_bytes > input.size()) __builtin_trap();
    if (!(whole == reference_scan(input))) __builtin_trap();

    // Chunk sizes from a small generator seeded by the input's first and last bytes
    // (the last is often a payload byte, free for the fuzzer to choose).
    std::uint32_t state = 0x9E3779B9u ^ (std::to_integer<std::uint32_t>(input.front()) << 8) ^
                          std::to_integer<std::uint32_t>(input.back()) ^ (static_cast<std::uint32_t>(input.size()) << 16);
    const auto chunked = scan_in_chunks(input, [&state](std::size_t remaining) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        const std::uint32_t pick = state % 64;
        // Mostly short chunks that split headers, sometimes empty ones, sometimes long ones.
        const std::size_t n = pick < 4 ? 0 : pick < 56 ? pick % 11 + 1 : (state >> 8) % 4096 + 1;
        return std::min(n, remaining);
    });
    if (!(chunked == whole)) __builtin_trap();

    const auto bytewise = scan_in_chunks(input, [](std::size_t) { return std::size_t{1}; });
    if (!(bytewise == whole)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto input = std::span(reinterpret_cast<const std::byte*>(data), size);
    gateway_open(input);
    frame_scanner(input);
    return 0;
}
