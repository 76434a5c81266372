// What smbd sends a process that serves a named pipe for SMB clients, and
// what it expects back (docs/samba.md): the "named pipe auth" handshake of
// Samba 4.17 (NDR, level 7), then messages with a 2-byte length. Samba's
// own interface, not an ABI: the decoder is strict, takes the one level it
// was measured against, and bounds everything before it allocates.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pipeslot::detail {

inline constexpr std::size_t npa_length_size = 4;          // big-endian, counts what follows
inline constexpr std::size_t max_npa_request = 64 * 1024;  // a token of some hundred groups fits many times over
inline constexpr std::uint32_t npa_level = 7;              // Samba 4.17
inline constexpr std::size_t max_npa_string = 1024;        // a host name or an address, in bytes
inline constexpr std::size_t max_smb_message = 65535;      // smbd's framing: a 2-byte length, 0 invalid
inline constexpr std::size_t smb_message_header_size = 2;

// The request's fixed fields and strings; the session (who Samba
// authenticated, with its keys) is kept as its NDR bytes.
struct NpaRequest {
    std::uint32_t level = npa_level;
    std::uint8_t transport = 0;  // 1: NCACN_NP (an SMB open)
    std::optional<std::string> remote_client_name;
    std::optional<std::string> remote_client_addr;
    std::uint16_t remote_client_port = 0;
    std::optional<std::string> local_server_name;
    std::optional<std::string> local_server_addr;
    std::uint16_t local_server_port = 0;
    std::vector<std::byte> session_info;  // auth_session_info_transport, empty if absent
};

enum class NpaResult { ok, malformed, other_level };

// The length prefix: how many bytes follow it, or nullopt past the bound
// (then nothing is read: the connection is closed).
std::optional<std::size_t> decode_npa_length(std::span<const std::byte, npa_length_size> prefix) noexcept;
// The bytes after the prefix.
NpaResult decode_npa_request(std::span<const std::byte> body, NpaRequest& out);

// The user Samba authenticated, from NpaRequest::session_info: the first SID
// of the session's token, as Windows writes a SID (S-1-5-21-...-1001;
// S-1-5-7 for an anonymous session). That is the SID a Windows server sees
// for the same client. nullopt if the session is malformed or has no token.
std::optional<std::string> session_user_sid(std::span<const std::byte> session_info);

enum class SmbPipeType : std::uint16_t { byte = 1, message = 2 };
// The answer smbd takes: the request's level, the pipe's type (it selects
// the framing); smbd 4.17 ignores the status, so no open can be refused here.
std::vector<std::byte> encode_npa_reply(std::uint32_t level, SmbPipeType type);

// Message mode's framing, both ways: nullopt for a length smbd cannot carry.
std::optional<std::array<std::byte, smb_message_header_size>> encode_smb_message_header(std::size_t size) noexcept;
// 0 is malformed (smbd's own reader fails on it).
std::optional<std::size_t> decode_smb_message_header(std::span<const std::byte, smb_message_header_size> h) noexcept;

}  // namespace pipeslot::detail
