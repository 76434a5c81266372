// libFuzzer target: what smbd (or anything that reaches a published pipe's
// socket) sends first, as common/smb_handshake.cpp decodes it: the length
// prefix, then the named-pipe-auth request and the session's user; and
// message mode's 2-byte headers.
#include "common/smb_handshake.hpp"

#include <cstdint>

namespace {

using namespace pipeslot::detail;

void check_string(const std::optional<std::string>& s) {
    if (s && (s->size() >= max_npa_string || s->find('\0') != std::string::npos)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span input(reinterpret_cast<const std::byte*>(data), size);
    if (input.size() >= smb_message_header_size) {
        const auto header = decode_smb_message_header(input.first<smb_message_header_size>());
        if (header && (*header == 0 || *header > max_smb_message)) __builtin_trap();
        if (header && encode_smb_message_header(*header) != std::optional(std::array{input[0], input[1]})) __builtin_trap();
    }
    if (input.size() < npa_length_size) return 0;
    const auto length = decode_npa_length(input.first<npa_length_size>());
    if (!length) return 0;
    if (*length > max_npa_request) __builtin_trap();
    if (input.size() - npa_length_size < *length) return 0;  // the server waits for the rest (bounded by its timeout)
    const auto body = input.subspan(npa_length_size, *length);
    NpaRequest request;
    if (decode_npa_request(body, request) != NpaResult::ok) return 0;
    if (request.level != npa_level || request.session_info.size() > body.size()) __builtin_trap();
    check_string(request.remote_client_name);
    check_string(request.remote_client_addr);
    check_string(request.local_server_name);
    check_string(request.local_server_addr);
    if (const auto sid = session_user_sid(request.session_info)) {
        if (sid->rfind("S-1-", 0) != 0 || sid->size() > 4 + 14 + 15 * 11) __builtin_trap();
    }
    const auto reply = encode_npa_reply(request.level, SmbPipeType::message);
    if (reply.size() != 36) __builtin_trap();
    return 0;
}
