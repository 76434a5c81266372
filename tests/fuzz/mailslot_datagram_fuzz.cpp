// libFuzzer target: a UDP datagram from anyone on the network, as the POSIX
// mailslot listener decodes it.
#include "common/mailslot_datagram.hpp"

#include <cstdint>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pipeslot::detail;
    const auto d = decode_datagram(std::span(reinterpret_cast<const std::byte*>(data), size));
    if (d) {
        // Whatever decodes must re-encode to the same bytes.
        const auto again = encode_datagram(d->scope, d->domain, d->slot, d->payload);
        if (again.size() != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
    }
    return 0;
}
