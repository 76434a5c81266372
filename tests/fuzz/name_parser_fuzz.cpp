// libFuzzer target: pipe and mailslot names, as PipeName::parse and
// MailslotName::parse (both forms) take them from any caller — a name typed by
// a user, read from a configuration file or sent by another host.
//
// Every input is tried three ways: the bytes as they are (anything, not only
// UTF-8), the bytes as the NAME after one of the usual prefixes (so that the
// fuzzer spends its time past the prefix), and the bytes read as code points
// written as valid UTF-8 after a prefix (so that case folding sees all of
// Unicode). For each, whatever parses must keep every promise of name.hpp and
// docs/names.md; whatever does not must fail the same way in every form.
#include <pipeslot/error.hpp>
#include <pipeslot/name.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace {

using namespace pipeslot;

[[noreturn]] void fail() { __builtin_trap(); }
void check(bool ok) {
    if (!ok) fail();
}

// Strict UTF-8 (the rules of name.hpp), counted in code points; nullopt if invalid.
std::optional<std::u32string> code_points(std::string_view s) {
    std::u32string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return std::nullopt;
        char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
        for (std::size_t k = 1; k < n; ++k) {
            const auto t = static_cast<unsigned char>(s[i + k]);
            if ((t & 0xC0) != 0x80) return std::nullopt;
            c = (c << 6) | (t & 0x3F);
        }
        static constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (c < smallest[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return std::nullopt;
        out.push_back(c);
        i += n;
    }
    return out;
}

void put_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
}

std::string prefix(std::string_view server, NameKind kind) {
    return "\\\\" + std::string(server) + (kind == NameKind::pipe ? "\\pipe\\" : "\\mailslot\\");
}

template <class SomeName>
SomeName parse_ec(std::string_view text, std::error_code& ec) {
    ec = make_error_code(errc::timed_out);  // must be overwritten either way
    return SomeName::parse(text, ec);
}

// What every successfully parsed name promises.
template <class SomeName>
void check_parsed(const SomeName& n, std::string_view text, NameKind kind) {
    check(!n.empty() && n.kind() == kind);

    // SERVER: ".", "*" (mailslots only) or 1..255 host characters; folded is its ASCII lower case.
    const auto& server = n.server();
    check(!server.empty() && server.size() <= max_server_length);
    check(server == "." || (server == "*" && kind == NameKind::mailslot) ||
          std::all_of(server.begin(), server.end(), host_char));
    check(n.is_local() == (server == "."));
    check(n.is_broadcast() == (server == "*"));
    check(n.folded_server().size() == server.size());
    for (std::size_t i = 0; i < server.size(); ++i) check(n.folded_server()[i] == lower(server[i]));

    // NAME: 1..256 code points of valid UTF-8, no NUL; backslashes only between non-empty mailslot parts.
    const auto leaf = code_points(n.name());
    check(leaf && !leaf->empty() && leaf->size() <= max_name_length);
    check(std::find(leaf->begin(), leaf->end(), U'\0') == leaf->end());
    if (kind == NameKind::pipe) {
        check(leaf->find(U'\\') == std::u32string::npos);
    } else {
        check(leaf->front() != U'\\' && leaf->back() != U'\\' && leaf->find(U"\\\\") == std::u32string::npos);
    }

    // The folded NAME: one code point for each (the simple mapping), valid UTF-8, so within 4 × 256 bytes;
    // only BMP code points change; an ASCII letter becomes its upper case, other ASCII stays.
    const auto folded = code_points(n.folded_name());
    check(folded && folded->size() == leaf->size());
    check(n.folded_name().size() <= 4 * max_name_length);
    for (std::size_t i = 0; i < leaf->size(); ++i) {
        const char32_t c = (*leaf)[i], f = (*folded)[i];
        if (c > 0xFFFF) check(f == c);
        if (c < 0x80) check(f == (c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c));
        check(f != 0 && (f == U'\\') == (c == U'\\'));
    }

    // str() is the text parsed, but for the keyword's case.
    const auto printed = n.str();
    check(printed == prefix(server, kind) + n.name());
    check(printed.size() == text.size());
    check(std::equal(printed.begin(), printed.end(), text.begin(), text.end(),
                     [](char a, char b) { return lower(a) == lower(b); }));

    // Round trips: the printed form parses to the same name, as written and as identity.
    std::error_code ec;
    const auto again = parse_ec<SomeName>(printed, ec);
    check(!ec && again == n && again.server() == server && again.name() == n.name() &&
          again.folded_name() == n.folded_name() && again.folded_server() == n.folded_server());

    // The folded form is the same name (folding is idempotent), and so is any case of the keyword.
    const auto folded_text = prefix(n.folded_server(), kind) + n.folded_name();
    const auto refolded = parse_ec<SomeName>(folded_text, ec);
    check(!ec && refolded == n && refolded.folded_name() == n.folded_name() &&
          refolded.folded_server() == n.folded_server() && refolded.name() == n.folded_name());
    std::string shouted = "\\\\" + server + (kind == NameKind::pipe ? "\\PIPE\\" : "\\MailSlot\\") + n.name();
    check(parse_ec<SomeName>(shouted, ec) == n && !ec);

    // The throwing form agrees.
    try {
        check(SomeName::parse(text) == n);
    } catch (...) {
        fail();
    }
}

// throwing: also try the throwing form on a name that fails (an exception costs ~30 µs under ASan:
// done for the raw bytes only; the form is a thin wrapper, and every name that parses tries it).
template <class SomeName>
std::optional<SomeName> try_parse(std::string_view text, NameKind kind, bool throwing) {
    std::error_code ec;
    const auto n = parse_ec<SomeName>(text, ec);
    if (ec) {
        check(ec == errc::invalid_name);
        check(n.empty() && n.server().empty() && n.name().empty() && n.folded_name().empty() &&
              n.folded_server().empty() && n.str().empty());
        if (!throwing) return std::nullopt;
        try {
            (void)SomeName::parse(text);
            fail();
        } catch (const std::system_error& e) {
            check(e.code() == errc::invalid_name);
        } catch (...) {
            fail();
        }
        return std::nullopt;
    }
    check_parsed(n, text, kind);
    return n;
}

void one(std::string_view text, bool throwing) {
    const auto pipe = try_parse<PipeName>(text, NameKind::pipe, throwing);
    const auto slot = try_parse<MailslotName>(text, NameKind::mailslot, throwing);
    check(!(pipe && slot));  // the keyword decides
    // A pipe name is a valid mailslot name on the same server, with the same identity; a mailslot
    // name without '*' and without pseudo-folders is a valid pipe name.
    if (pipe) {
        std::error_code ec;
        const auto as_slot = MailslotName::parse(prefix(pipe->server(), NameKind::mailslot) + pipe->name(), ec);
        check(!ec && as_slot.folded_name() == pipe->folded_name() && as_slot.folded_server() == pipe->folded_server());
        check(!(as_slot == *pipe));  // kinds differ
    }
    if (slot && !slot->is_broadcast() && slot->name().find('\\') == std::string::npos) {
        std::error_code ec;
        const auto as_pipe = PipeName::parse(prefix(slot->server(), NameKind::pipe) + slot->name(), ec);
        check(!ec && as_pipe.folded_name() == slot->folded_name());
    }
}

constexpr std::string_view prefixes[] = {
    "\\\\.\\pipe\\",          "\\\\server\\pipe\\", "\\\\.\\mailslot\\", "\\\\*\\mailslot\\",
    "\\\\DOMAIN\\mailslot\\", "\\\\Host-1.example_x\\PIPE\\", "\\\\",      "",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    // 1. Anything, as it is.
    one(bytes, true);
    if (size == 0) return 0;
    // 2. The rest as NAME after the prefix the first byte picks.
    const auto& p = prefixes[data[0] % std::size(prefixes)];
    one(std::string(p) + std::string(bytes.substr(1)), false);
    // 3. The rest as code points (three bytes each, all of Unicode but surrogates), valid UTF-8.
    std::string text(p);
    for (std::size_t i = 1; i + 3 <= size; i += 3) {
        char32_t c = (char32_t{data[i]} << 16 | char32_t{data[i + 1]} << 8 | data[i + 2]) % 0x110000;
        if (c >= 0xD800 && c <= 0xDFFF) c -= 0x800;
        put_utf8(text, c);
    }
    one(text, false);
    return 0;
}
