#include "smb_handshake.hpp"

#include "little_endian.hpp"

#include <cstdio>
#include <cstring>

namespace pipeslot::detail {

namespace {

constexpr char magic[4] = {'N', 'P', 'A', 'M'};

// NDR32, little-endian, as Samba's pidl pushes it: every read checked.
class NdrReader {
public:
    explicit NdrReader(std::span<const std::byte> in) : in_(in) {}
    bool ok() const { return ok_; }
    std::size_t at() const { return at_; }
    std::span<const std::byte> rest() const { return in_.subspan(at_); }

    template <class T>
    T get() {
        align(sizeof(T));
        if (!ok_ || in_.size() - at_ < sizeof(T)) return fail<T>();
        const T v = get_le<T>(in_, at_);
        at_ += sizeof(T);
        return v;
    }
    void align(std::size_t n) {
        const std::size_t pad = (n - at_ % n) % n;
        if (in_.size() - at_ < pad) return (void)fail<int>();
        for (std::size_t i = 0; i < pad; ++i)
            if (in_[at_ + i] != std::byte{0}) return (void)fail<int>();  // pidl pads with zeros
        at_ += pad;
    }
    // A [unique] pointer's referent id: 0 null, else it must be fresh.
    bool pointer() {
        const auto id = get<std::uint32_t>();
        return ok_ && id != 0;
    }
    void skip(std::size_t n) {
        if (!ok_ || in_.size() - at_ < n) return (void)fail<int>();
        at_ += n;
    }
    // A conformant-varying string ([string,charset(UTF8|DOS)]): max, offset
    // 0, actual (with the terminating NUL, the only one), the bytes.
    std::string string() {
        const auto max = get<std::uint32_t>();
        const auto offset = get<std::uint32_t>();
        const auto actual = get<std::uint32_t>();
        if (!ok_ || offset != 0 || actual != max || actual == 0 || actual > max_npa_string ||
            in_.size() - at_ < actual)
            return fail<std::string>();
        std::string s(reinterpret_cast<const char*>(in_.data() + at_), actual - 1);
        if (in_[at_ + actual - 1] != std::byte{0} || s.find('\0') != std::string::npos) return fail<std::string>();
        at_ += actual;
        return s;
    }

private:
    template <class T>
    T fail() {
        ok_ = false;
        return T{};
    }
    std::span<const std::byte> in_;
    std::size_t at_ = 0;
    bool ok_ = true;
};

}  // namespace

std::optional<std::size_t> decode_npa_length(std::span<const std::byte, npa_length_size> p) noexcept {
    std::size_t n = 0;
    for (const auto b : p) n = (n << 8) | static_cast<std::size_t>(b);
    if (n < sizeof magic + 8 || n > max_npa_request) return std::nullopt;
    return n;
}

NpaResult decode_npa_request(std::span<const std::byte> body, NpaRequest& out) {
    out = {};
    if (body.size() < sizeof magic || std::memcmp(body.data(), magic, sizeof magic) != 0) return NpaResult::malformed;
    NdrReader r(body.subspan(sizeof magic));
    out.level = r.get<std::uint32_t>();
    const auto arm = r.get<std::uint32_t>();  // the union's discriminant, pushed again
    if (!r.ok()) return NpaResult::malformed;
    if (out.level != npa_level) return NpaResult::other_level;
    if (arm != out.level) return NpaResult::malformed;
    out.transport = r.get<std::uint8_t>();
    const bool remote_name = r.pointer(), remote_addr = r.pointer();
    out.remote_client_port = r.get<std::uint16_t>();
    const bool local_name = r.pointer(), local_addr = r.pointer();
    out.local_server_port = r.get<std::uint16_t>();
    const bool session = r.pointer();
    // The referents follow, in the order of their pointers.
    if (remote_name) out.remote_client_name = r.string();
    if (remote_addr) out.remote_client_addr = r.string();
    if (local_name) out.local_server_name = r.string();
    if (local_addr) out.local_server_addr = r.string();
    if (!r.ok()) return NpaResult::malformed;
    if (session) {
        r.align(4);
        if (!r.ok() || r.rest().empty()) return NpaResult::malformed;
        out.session_info.assign(r.rest().begin(), r.rest().end());
    } else if (!r.rest().empty()) {
        return NpaResult::malformed;  // nothing may follow
    }
    return NpaResult::ok;
}

std::optional<std::string> session_user_sid(std::span<const std::byte> session_info) {
    constexpr std::uint32_t max_sids = 4096;  // a token of thousands of groups still fits the request's bound
    constexpr std::uint8_t max_sub_authorities = 15;
    NdrReader r(session_info);
    // auth_session_info_transport: the session's pointer, the exported GSSAPI credentials (a blob).
    if (!r.pointer()) return std::nullopt;
    r.skip(r.get<std::uint32_t>());
    // auth_session_info: token, unix token, user info, unix info, two null
    // pointers around the session key (a blob), the session's GUID.
    if (!r.pointer()) return std::nullopt;  // no token: nobody to name
    for (int i = 0; i < 3; ++i) (void)r.get<std::uint32_t>();
    if (r.get<std::uint32_t>() != 0) return std::nullopt;  // "torture", never sent
    r.skip(r.get<std::uint32_t>());
    if (r.get<std::uint32_t>() != 0) return std::nullopt;  // credentials, never sent
    (void)r.get<std::uint32_t>(), (void)r.get<std::uint16_t>(), (void)r.get<std::uint16_t>();
    r.skip(8);
    // The token's referent: a conformant struct, its count first (aligned as its 8-byte members).
    r.align(8);
    const auto conformance = r.get<std::uint32_t>();
    const auto count = r.get<std::uint32_t>();
    if (!r.ok() || count != conformance || count == 0 || count > max_sids) return std::nullopt;
    std::string first;
    for (std::uint32_t i = 0; i < count; ++i) {
        r.align(4);
        const auto revision = r.get<std::uint8_t>();
        const auto sub_authorities = r.get<std::uint8_t>();
        std::uint64_t authority = 0;
        for (int b = 0; b < 6; ++b) authority = (authority << 8) | r.get<std::uint8_t>();
        if (!r.ok() || revision != 1 || sub_authorities > max_sub_authorities) return std::nullopt;
        // As ConvertSidToStringSid: an authority past 32 bits in hexadecimal.
        std::string sid = "S-1-";
        if (authority >> 32) {
            char hex[24];
            std::snprintf(hex, sizeof hex, "0x%012llX", static_cast<unsigned long long>(authority));
            sid += hex;
        } else {
            sid += std::to_string(authority);
        }
        for (std::uint8_t a = 0; a < sub_authorities; ++a) {
            sid += '-';  // (not "-" + ...: g++ 12 at -O3 warns a false -Wrestrict on it)
            sid += std::to_string(r.get<std::uint32_t>());
        }
        if (!r.ok()) return std::nullopt;
        if (i == 0) first = std::move(sid);
    }
    return first;
}

std::vector<std::byte> encode_npa_reply(std::uint32_t level, SmbPipeType type) {
    // length, "NPAM", level, the union's discriminant, info7 {file_type,
    // device_state, allocation_size (aligned to 8)}, status: what Samba's own
    // servers answer (rpc_host.c), and the 36 bytes smbd 4.17 was seen to take.
    std::vector<std::byte> out(36);
    const std::uint32_t length = 32;
    for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>(length >> (24 - 8 * i));
    std::memcpy(out.data() + 4, magic, sizeof magic);
    put_le<std::uint32_t>(out, 8, level);
    put_le<std::uint32_t>(out, 12, level);
    put_le<std::uint16_t>(out, 16, static_cast<std::uint16_t>(type));
    put_le<std::uint16_t>(out, 18, 0x05ff);  // device state: message read mode, non-blocking, instances 0xff
    put_le<std::uint64_t>(out, 24, 4096);    // allocation size
    put_le<std::uint32_t>(out, 32, 0);       // NT_STATUS_OK
    return out;
}

std::optional<std::array<std::byte, smb_message_header_size>> encode_smb_message_header(std::size_t size) noexcept {
    if (size == 0 || size > max_smb_message) return std::nullopt;
    std::array<std::byte, smb_message_header_size> h{};
    put_le<std::uint16_t>(h, 0, static_cast<std::uint16_t>(size));
    return h;
}

std::optional<std::size_t> decode_smb_message_header(std::span<const std::byte, smb_message_header_size> h) noexcept {
    const auto n = get_le<std::uint16_t>(h, 0);
    if (n == 0) return std::nullopt;
    return n;
}

}  // namespace pipeslot::detail
