// pipeslot-client NAME [--wait MS] [REQUEST...]
// Connects to the named pipe NAME, sends each REQUEST (or each line of
// standard input) as one message and prints each reply.
#include <pipeslot/pipeslot.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

using namespace pipeslot;

namespace {

int usage(const char* problem) {
    std::fprintf(stderr,
                 "pipeslot-client: %s\n"
                 "usage: pipeslot-client NAME [--wait MS] [REQUEST...]\n"
                 "Sends each REQUEST (or each line of standard input) to the named pipe NAME and\n"
                 "prints each reply. Waits up to MS milliseconds (default 5000) for the server.\n",
                 problem);
    return 2;
}

// Waits for the server to exist as well as for a free instance: a client
// started next to its server may come first.
MessageChannel connect(const std::string& name, std::chrono::milliseconds wait, std::error_code& ec) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        ClientOptions options;
        options.wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (options.wait.value().count() < 0) options.wait = Timeout::none();
        auto channel = MessageChannel::open(name, options, ec);
        if (ec != errc::not_found || std::chrono::steady_clock::now() >= deadline) return channel;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace

int main(int argc, char** argv) {
    const auto args = command_line_arguments(argc, argv);
    if (args.size() < 2) return usage("a pipe name is needed");
    const std::string name = args[1];
    long wait_ms = 5000;
    std::vector<std::string> requests;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--wait" && i + 1 < args.size()) wait_ms = std::strtol(args[++i].c_str(), nullptr, 10);
        else requests.push_back(args[i]);
    }
    if (wait_ms < 0) return usage("--wait takes a number of milliseconds");

    std::error_code ec;
    auto channel = connect(name, std::chrono::milliseconds(wait_ms), ec);
    if (ec) {
        std::fprintf(stderr, "pipeslot-client: cannot connect to %s: %s\n", name.c_str(), ec.message().c_str());
        return 1;
    }
    const auto exchange = [&](const std::string& request) {
        channel.send(std::as_bytes(std::span(request)), std::chrono::seconds(30), ec);
        const auto reply = ec ? std::vector<std::byte>{} : channel.receive_message(std::chrono::seconds(30), ec);
        if (ec) {
            std::fprintf(stderr, "pipeslot-client: %s\n", ec.message().c_str());
            return false;
        }
        std::printf("> %s\n%.*s\n", request.c_str(), static_cast<int>(reply.size()),
                    reinterpret_cast<const char*>(reply.data()));
        return true;
    };
    if (requests.empty()) {
        for (std::string line; std::getline(std::cin, line);)
            if (!exchange(line)) return 1;
    }
    for (const auto& r : requests)
        if (!exchange(r)) return 1;
    return 0;
}
