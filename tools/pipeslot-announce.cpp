// pipeslot-announce PIPE [--slot SLOT] [--interval MS] [--for MS]
// Announces the local named pipe PIPE on a mailslot, every MS milliseconds,
// so that clients can locate it (pipeslot-locate).
#include <pipeslot/pipeslot.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

using namespace pipeslot;

namespace {
int usage(const char* problem) {
    std::fprintf(stderr,
                 "pipeslot-announce: %s\n"
                 "usage: pipeslot-announce PIPE [--slot SLOT] [--interval MS] [--for MS]\n"
                 "Announces the local pipe PIPE (e.g. \\\\.\\pipe\\jobs) on the mailslot SLOT\n"
                 "(default %s) every MS milliseconds (default 1000), for --for\n"
                 "milliseconds or until standard input ends.\n",
                 problem, std::string(default_announce_slot).c_str());
    return 2;
}
}  // namespace

int main(int argc, char** argv) {
    const auto args = command_line_arguments(argc, argv);
    if (args.size() < 2) return usage("a pipe name is needed");
    std::string slot(default_announce_slot);
    long interval = 1000, duration = -1;
    for (std::size_t i = 2; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--slot" && has_value) slot = args[++i];
        else if (args[i] == "--interval" && has_value) interval = std::strtol(args[++i].c_str(), nullptr, 10);
        else if (args[i] == "--for" && has_value) duration = std::strtol(args[++i].c_str(), nullptr, 10);
        else return usage(("unknown or incomplete option " + args[i]).c_str());
    }
    std::error_code ec;
    auto announcer = Announcer::start(args[1], slot, std::chrono::milliseconds(interval), ec);
    if (ec) {
        std::fprintf(stderr, "pipeslot-announce: cannot announce %s on %s: %s\n", args[1].c_str(), slot.c_str(),
                     ec.message().c_str());
        return 1;
    }
    std::printf("pipeslot-announce: announcing %s on %s\n", args[1].c_str(), slot.c_str());
    std::fflush(stdout);
    if (duration >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(duration));
    } else {
        while (std::getchar() != EOF) {
        }
    }
    return 0;
}
