#include "command_line.hpp"

namespace pipeslot::detail {

// The rules CommandLineToArgvW and the Microsoft C runtime share: inside
// quotes, 2n backslashes before a '"' mean n backslashes and a closing quote,
// 2n+1 mean n backslashes and a literal '"'; backslashes elsewhere are literal.
std::string quote_windows_argument(const std::string& arg) {
    if (!arg.empty() && arg.find_first_of(" \t\n\v\"") == std::string::npos) return arg;
    std::string out = "\"";
    std::size_t backslashes = 0;
    for (char c : arg) {
        if (c == '\\') {
            ++backslashes;
            continue;
        }
        if (c == '"') out.append(2 * backslashes + 1, '\\');
        else out.append(backslashes, '\\');
        backslashes = 0;
        out.push_back(c);
    }
    out.append(2 * backslashes, '\\');  // so the closing quote stays a quote
    out.push_back('"');
    return out;
}

std::string windows_command_line(const std::string& program, const std::vector<std::string>& args) {
    // argv[0] is parsed differently: quotes only toggle, backslashes are literal.
    std::string line = program.find_first_of(" \t") == std::string::npos && !program.empty()
                           ? program
                           : "\"" + program + "\"";
    for (const auto& arg : args) {
        line.push_back(' ');
        line += quote_windows_argument(arg);
    }
    return line;
}

}  // namespace pipeslot::detail
