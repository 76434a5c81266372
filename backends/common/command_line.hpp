// Building a Windows command line from an argument vector so that the child's
// CommandLineToArgvW (and the C runtime) gives back exactly the same vector.
#pragma once

#include <string>
#include <vector>

namespace pipeslot::detail {

// One argument after the program name, quoted only when it must be.
std::string quote_windows_argument(const std::string& arg);
// The program name (never escaped with backslashes: it cannot contain '"').
std::string windows_command_line(const std::string& program, const std::vector<std::string>& args);

}  // namespace pipeslot::detail
