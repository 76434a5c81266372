// libFuzzer target: the first frame a broker reads from any connection (its
// door is open to other users), the reply a client reads, and the control
// frames between server processes, as connect_protocol.cpp decodes them.
#include "common/connect_protocol.hpp"
#include "common/gateway_protocol.hpp"

#include <cstdint>
#include <cstring>

namespace {

using namespace pipeslot::detail;

// Whatever decodes must survive a round trip: encode, decode, encode gives the same bytes.
template <class Decode, class Encode>
void round_trip(std::span<const std::byte> payload, Decode decode, Encode encode) {
    const auto first = decode(payload);
    if (!first) return;
    const auto bytes = encode(*first);
    const auto again = decode(std::span<const std::byte>(bytes).subspan(frame_header_size));
    if (!again) __builtin_trap();
    const auto bytes_again = encode(*again);
    if (std::memcmp(bytes.data(), bytes_again.data(), bytes.size()) != 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = std::span(reinterpret_cast<const std::byte*>(data), size);
    if (input.size() < frame_header_size) return 0;
    const auto header = decode_header(input.first<frame_header_size>());
    const auto payload = input.subspan(frame_header_size);
    // The kind the header names, as the broker and the client dispatch; and every decoder on any bytes.
    // (A gateway's open carries a name: it has a bound of its own, gateway_protocol.hpp.)
    const std::size_t bound = header && header->kind == FrameKind::gateway_open ? max_gateway_open_payload : max_connect_payload;
    if (header && header->length > bound && header->kind != FrameKind::message) __builtin_trap();
    round_trip(payload, decode_open, encode_open);
    round_trip(payload, decode_open_reply, encode_open_reply);
    round_trip(payload, decode_control, encode_control);
    return 0;
}
