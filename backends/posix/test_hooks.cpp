#include "test_hooks.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

namespace pipeslot::posix {

void test_stop_point(const char* step) noexcept {
    static const char* const wanted = std::getenv("PIPESLOT_TEST_STOP_AT");
    if (!wanted || std::strcmp(wanted, step) != 0) return;
    const std::string line = std::string("pipeslot-stopped-at ") + step + "\n";
    (void)!::write(STDOUT_FILENO, line.data(), line.size());
    ::raise(SIGSTOP);
}

}  // namespace pipeslot::posix
