// Pipe and mailslot names: \\SERVER\pipe\NAME and \\HOST\mailslot\NAME.
//
// Parsing validates a name completely before any resource is created:
//   - the prefix is two backslashes, a server, a backslash, the word "pipe" or
//     "mailslot" (any case), a backslash; no '/' stands in for '\';
//   - the server is "." (this machine), a host name of letters, digits, '.',
//     '-' and '_' (at most 255), or "*" (every host; mailslots only);
//   - NAME is 1..256 characters (Unicode code points) of valid UTF-8, no NUL;
//     a pipe NAME has no backslash; a mailslot NAME may use backslashes as
//     pseudo-folders but has no empty part.
// Names are case-insensitive: two names are equal when their case-folded forms
// are (simple Unicode upper-casing, as Windows does).
#pragma once

#include <pipeslot/export.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace pipeslot {

inline constexpr std::size_t max_name_length = 256;   // code points of NAME
inline constexpr std::size_t max_server_length = 255; // bytes of SERVER

enum class NameKind { pipe, mailslot };

class PIPESLOT_API Name {
public:
    Name() = default;

    NameKind kind() const noexcept { return kind_; }
    bool is_local() const noexcept { return server_ == "."; }
    bool is_broadcast() const noexcept { return server_ == "*"; }
    bool empty() const noexcept { return name_.empty(); }

    // As written by the caller (server without its backslashes).
    const std::string& server() const noexcept { return server_; }
    const std::string& name() const noexcept { return name_; }
    // The identity of the name: NAME upper-cased, UTF-8; server lower-cased.
    const std::string& folded_name() const noexcept { return folded_name_; }
    const std::string& folded_server() const noexcept { return folded_server_; }

    // \\server\pipe\NAME as written.
    std::string str() const;

    friend bool operator==(const Name& a, const Name& b) noexcept {
        return a.kind_ == b.kind_ && a.folded_server_ == b.folded_server_ &&
               a.folded_name_ == b.folded_name_;
    }

protected:
    static Name parse(std::string_view text, NameKind kind, std::error_code& ec);

private:
    NameKind kind_ = NameKind::pipe;
    std::string server_, name_, folded_server_, folded_name_;
};

class PIPESLOT_API PipeName : public Name {
public:
    PipeName() = default;
    // On failure: errc::invalid_name and an empty PipeName.
    static PipeName parse(std::string_view text, std::error_code& ec);
    static PipeName parse(std::string_view text);  // throws std::system_error
private:
    explicit PipeName(Name n) : Name(std::move(n)) {}
};

class PIPESLOT_API MailslotName : public Name {
public:
    MailslotName() = default;
    static MailslotName parse(std::string_view text, std::error_code& ec);
    static MailslotName parse(std::string_view text);  // throws std::system_error
private:
    explicit MailslotName(Name n) : Name(std::move(n)) {}
};

}  // namespace pipeslot
