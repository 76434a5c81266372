#include "platform.hpp"
#include "throw.hpp"
#include "utf8.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/name.hpp>

#include <algorithm>

namespace pipeslot {
namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals_ascii(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool valid_host(std::string_view host) {
    if (host.empty() || host.size() > max_server_length) return false;
    return std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_';
    });
}

// NAME: 1..256 code points of strict UTF-8 without NUL; backslashes only as
// separators of non-empty mailslot pseudo-folders.
bool valid_leaf(const std::u32string& name, NameKind kind) {
    if (name.empty() || name.size() > max_name_length) return false;
    if (std::find(name.begin(), name.end(), U'\0') != name.end()) return false;
    if (kind == NameKind::pipe) return name.find(U'\\') == std::u32string::npos;
    return name.front() != U'\\' && name.back() != U'\\' && name.find(U"\\\\") == std::u32string::npos;
}

template <class SomeName>
SomeName parse_or_throw(std::string_view text) {
    return detail::or_throw(std::string(text), [&](std::error_code& ec) { return SomeName::parse(text, ec); });
}

}  // namespace

Name Name::parse(std::string_view text, NameKind kind, std::error_code& ec) {
    ec = errc::invalid_name;
    if (text.size() < 2 || text.substr(0, 2) != "\\\\") return {};
    const auto rest = text.substr(2);
    const auto server_end = rest.find('\\');
    if (server_end == std::string_view::npos) return {};
    const auto server = rest.substr(0, server_end);
    const auto after_server = rest.substr(server_end + 1);
    const auto keyword_end = after_server.find('\\');
    if (keyword_end == std::string_view::npos) return {};
    const std::string_view keyword = kind == NameKind::pipe ? "pipe" : "mailslot";
    if (!iequals_ascii(after_server.substr(0, keyword_end), keyword)) return {};
    const auto leaf = after_server.substr(keyword_end + 1);

    const bool server_ok = server == "." || (server == "*" && kind == NameKind::mailslot) || valid_host(server);
    if (!server_ok) return {};
    const auto code_points = detail::decode_utf8(leaf);
    if (!code_points || !valid_leaf(*code_points, kind)) return {};

    Name n;
    n.kind_ = kind;
    n.server_ = std::string(server);
    n.name_ = std::string(leaf);
    n.folded_server_.reserve(server.size());
    for (char c : server) n.folded_server_.push_back(ascii_lower(c));
    n.folded_name_.reserve(leaf.size());
    for (char32_t c : *code_points) detail::append_utf8(n.folded_name_, platform::simple_upper(c));
    ec.clear();
    return n;
}

std::string Name::str() const {
    if (empty()) return {};
    return "\\\\" + server_ + (kind_ == NameKind::pipe ? "\\pipe\\" : "\\mailslot\\") + name_;
}

PipeName PipeName::parse(std::string_view text, std::error_code& ec) {
    return PipeName(Name::parse(text, NameKind::pipe, ec));
}

PipeName PipeName::parse(std::string_view text) { return parse_or_throw<PipeName>(text); }

MailslotName MailslotName::parse(std::string_view text, std::error_code& ec) {
    return MailslotName(Name::parse(text, NameKind::mailslot, ec));
}

MailslotName MailslotName::parse(std::string_view text) { return parse_or_throw<MailslotName>(text); }

}  // namespace pipeslot
