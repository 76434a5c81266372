// pipeslot-locate [--slot SLOT] [--timeout MS] [--query]
// Lists the named-pipe servers that announce themselves (or, with --query,
// that answer a query) within MS milliseconds, one pipe name per line.
#include <pipeslot/pipeslot.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace pipeslot;

namespace {
int usage(const char* problem) {
    std::fprintf(stderr,
                 "pipeslot-locate: %s\n"
                 "usage: pipeslot-locate [--slot SLOT] [--timeout MS] [--query]\n"
                 "Listens on the mailslot SLOT (default %s) for MS milliseconds\n"
                 "(default 2000) and prints each announced pipe once. With --query, sends a\n"
                 "query to SLOT (default %s) and prints the answers.\n",
                 problem, std::string(default_listen_slot).c_str(), std::string(default_query_slot).c_str());
    return 2;
}
}  // namespace

int main(int argc, char** argv) {
    const auto args = command_line_arguments(argc, argv);
    std::string slot;
    long timeout = 2000;
    bool query = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--slot" && has_value) slot = args[++i];
        else if (args[i] == "--timeout" && has_value) timeout = std::strtol(args[++i].c_str(), nullptr, 10);
        else if (args[i] == "--query") query = true;
        else return usage(("unknown or incomplete option " + args[i]).c_str());
    }
    if (timeout < 0) return usage("--timeout takes a number of milliseconds");
    if (slot.empty()) slot = query ? default_query_slot : default_listen_slot;
    std::error_code ec;
    const auto found = query ? query_servers(slot, std::chrono::milliseconds(timeout), ec)
                             : locate_servers(slot, std::chrono::milliseconds(timeout), ec);
    if (ec) {
        std::fprintf(stderr, "pipeslot-locate: %s: %s\n", slot.c_str(), ec.message().c_str());
        return 1;
    }
    for (const auto& server : found) std::printf("%s\n", server.pipe.c_str());
    return found.empty() ? 3 : 0;
}
