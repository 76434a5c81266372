// pipeslot-test-peer: a second process for the conformance tests, linking
// pipeslot, so that servers and clients can live in different processes.
//
//   echo-client NAME COUNT   connect, send COUNT requests, check each reply is "echo:" + request
//   serve-and-hang NAME      create an instance, print "ready", then wait to be killed
//   send-huge NAME BYTES     connect and send one message of BYTES bytes (blocks if nobody reads)
//   mailslot-hold NAME       create a mailslot, print "ready", then wait to be killed
//   mailslot-collect NAME N MS   create a mailslot, print "ready", print up to N messages
//                            received within MS milliseconds (one per line), then exit;
//                            N = 0: until a message "end"
//   mailslot-send NAME TEXT  send TEXT to the mailslot NAME; exit 0, or 3 on an error
//   as-nobody MODE ARGS...   (POSIX, as root) become user nobody, then run MODE
#include <pipeslot/pipeslot.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#ifndef _WIN32
#include <grp.h>
#include <unistd.h>
#endif

using namespace pipeslot;

namespace {

constexpr auto bound = std::chrono::seconds(60);

// Says "ready" on stdout, then waits until stdin ends (or the process is killed).
int ready_then_wait() {
    std::printf("ready\n");
    std::fflush(stdout);
    char c;
    while (std::fread(&c, 1, 1, stdin) == 1) {
    }
    return 0;
}

int echo_client(const std::string& name, int count) {
    ClientOptions options;
    options.wait = bound;
    std::error_code ec;
    auto channel = MessageChannel::open(name, options, ec);
    if (ec) {
        std::fprintf(stderr, "open: %s\n", ec.message().c_str());
        return 2;
    }
    for (int i = 0; i < count; ++i) {
        const std::string request = "request-" + std::to_string(i);
        channel.send(std::as_bytes(std::span(request)), bound, ec);
        const auto reply = channel.receive_message(bound, ec);
        const std::string text(reinterpret_cast<const char*>(reply.data()), reply.size());
        if (ec || text != "echo:" + request) {
            std::fprintf(stderr, "exchange %d: %s '%s'\n", i, ec.message().c_str(), text.c_str());
            return 3;
        }
    }
    return 0;
}

int serve_and_hang(const std::string& name) {
    std::error_code ec;
    auto instance = PipeInstance::create(name, {}, ec);
    if (ec) {
        std::fprintf(stderr, "create: %s\n", ec.message().c_str());
        return 2;
    }
    return ready_then_wait();
}

int send_huge(const std::string& name, std::size_t bytes) {
    std::error_code ec;
    ClientOptions options;
    options.wait = bound;
    auto channel = MessageChannel::open(name, options, ec);
    if (ec) return 2;
    std::printf("connected\n");
    std::fflush(stdout);
    std::vector<std::byte> data(bytes, std::byte{'x'});
    channel.send(data, Timeout::forever(), ec);
    return 0;
}

int mailslot_hold(const std::string& name) {
    std::error_code ec;
    auto slot = Mailslot::create(name, {}, ec);
    if (ec) {
        std::fprintf(stderr, "create: %s\n", ec.message().c_str());
        return 2;
    }
    return ready_then_wait();
}

int mailslot_collect(const std::string& name, int count, long ms) {
    std::error_code ec;
    MailslotOptions options;
    options.read_timeout = std::chrono::milliseconds(100);
    auto slot = Mailslot::create(name, options, ec);
    if (ec) {
        std::fprintf(stderr, "create: %s\n", ec.message().c_str());
        return 2;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (int got = 0; (count == 0 || got < count) && std::chrono::steady_clock::now() < deadline;) {
        const auto message = slot.receive_message(ec);
        if (ec == errc::timed_out) continue;
        if (ec) return 3;
        const std::string text(reinterpret_cast<const char*>(message.data()), message.size());
        std::printf("%s\n", text.c_str());
        std::fflush(stdout);
        ++got;
        if (count == 0 && text == "end") break;
    }
    return 0;
}

int mailslot_send(const std::string& name, const std::string& text) {
    std::error_code ec;
    auto writer = Broadcaster::open(name, ec);
    if (!ec) writer.send(std::as_bytes(std::span(text)), ec);
    if (ec) {
        std::fprintf(stderr, "send: %s\n", ec.message().c_str());
        return 3;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto args = command_line_arguments(argc, argv);
#ifndef _WIN32
    if (args.size() > 1 && args[1] == "as-nobody") {
        constexpr uid_t nobody = 65534;
        if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0) return 65;
        ::unsetenv("PIPESLOT_RUNTIME_DIR");  // root's: nobody gets its own
        ::setenv("PIPESLOT_RUNTIME_DIR", ("/tmp/pipeslot-test-nobody-" + std::to_string(::getpid())).c_str(), 1);
        args.erase(args.begin() + 1);
    }
#endif
    if (args.size() < 3) return 64;
    const std::string& mode = args[1];
    const std::string& name = args[2];
    const auto number = [&] { return args.size() > 3 ? std::strtoull(args[3].c_str(), nullptr, 10) : 0ULL; };
    if (mode == "echo-client") return echo_client(name, static_cast<int>(number()));
    if (mode == "serve-and-hang") return serve_and_hang(name);
    if (mode == "send-huge") return send_huge(name, number());
    if (mode == "mailslot-hold") return mailslot_hold(name);
    if (mode == "mailslot-collect")
        return mailslot_collect(name, static_cast<int>(number()), args.size() > 4 ? std::strtol(args[4].c_str(), nullptr, 10) : 5000);
    if (mode == "mailslot-send") return mailslot_send(name, args.size() > 3 ? args[3] : "");
    return 64;
}
