#include "gateway_protocol.hpp"

#include <algorithm>
#include <cstring>

namespace pipeslot::detail {

// Payload: 0 the gateway version; 1-3 zero; 4-11 the open request as a
// broker gets it (connect_protocol.hpp; its remote flag clear: the gateway
// sets it); 12- NAME in UTF-8, 1 to 1,024 bytes (the frame's length says how many).
std::vector<std::byte> encode_gateway_open(const GatewayOpen& open) {
    OpenRequest request = open.request;
    request.remote = false;
    request.remote_user.clear();
    const auto local = encode_open(request);
    const auto payload_size = gateway_open_fixed_size + open.name.size();
    std::vector<std::byte> out(frame_header_size + payload_size);
    const auto header = encode_header({FrameKind::gateway_open, static_cast<std::uint32_t>(payload_size)});
    std::memcpy(out.data(), header.data(), header.size());
    out[frame_header_size] = static_cast<std::byte>(open.version);
    std::memcpy(out.data() + frame_header_size + 4, local.data() + frame_header_size, open_request_size);
    std::memcpy(out.data() + frame_header_size + gateway_open_fixed_size, open.name.data(), open.name.size());
    return out;
}

std::optional<GatewayOpen> decode_gateway_open(std::span<const std::byte> p) {
    if (p.size() <= gateway_open_fixed_size || p.size() > max_gateway_open_payload) return std::nullopt;
    if (p[1] != std::byte{0} || p[2] != std::byte{0} || p[3] != std::byte{0}) return std::nullopt;
    GatewayOpen open;
    open.version = static_cast<std::uint8_t>(p[0]);
    if (open.version != gateway_version) return open;  // answered not_supported, whatever follows
    const auto request = decode_open(p.subspan(4, open_request_size));
    if (!request || request->remote) return std::nullopt;
    open.request = *request;
    const auto name = p.subspan(gateway_open_fixed_size);
    if (std::find(name.begin(), name.end(), std::byte{0}) != name.end()) return std::nullopt;
    open.name.assign(reinterpret_cast<const char*>(name.data()), name.size());  // PipeName::parse checks the rest
    return open;
}

bool FrameScanner::scan(std::span<const std::byte> bytes, std::uint64_t& payload_bytes) noexcept {
    payload_bytes = 0;
    while (!failed_ && !bytes.empty()) {
        if (payload_left_ > 0) {
            const auto n = std::min<std::uint64_t>(payload_left_, bytes.size());
            payload_left_ -= n;
            payload_bytes += n;
            bytes = bytes.subspan(static_cast<std::size_t>(n));
            continue;
        }
        const auto n = std::min(frame_header_size - header_have_, bytes.size());
        std::memcpy(header_.data() + header_have_, bytes.data(), n);
        header_have_ += n;
        bytes = bytes.subspan(n);
        if (header_have_ < frame_header_size) break;
        header_have_ = 0;
        const auto header = decode_header(header_);
        if (!header || !is_channel_frame(header->kind) || disconnect_) {
            failed_ = true;  // nothing follows a disconnect
            break;
        }
        if (header->kind == FrameKind::disconnect) disconnect_ = true;
        payload_left_ = header->length;
    }
    return !failed_;
}

}  // namespace pipeslot::detail
