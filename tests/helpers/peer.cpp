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
//   echo-server NAME INSTANCES [others] [max=N]  a PipeServer replying "echo:" + request,
//                            print "ready", serve until stdin ends; "others": allow_other_users
//   open-result NAME [USER]  open once (waiting up to 60 s); exit 0, or 10 + the error's value
//   create-result NAME [others]  create an instance; exit 0, or 10 + the error's value
//   open-hold NAME           open (waiting), print "connected", wait until stdin ends
//   attack-door DIR FILE     (as another user) try to unlink, rename and replace DIR/FILE and
//                            to plant files in DIR; exit with a bit set for each that worked
//   mailslot-create-result NAME  create a mailslot reader; exit 0, or 10 + the error's value
//   udp-bind-result PORT     (POSIX) try to bind the UDP PORT on 0.0.0.0 and 127.0.0.1, with and
//                            without SO_REUSEADDR / SO_REUSEPORT; exit 0 if every bind failed
//   udp-hold PORT            (POSIX) bind UDP PORT (both reuse options), print "ready", wait until stdin ends
//   as-nobody MODE ARGS...   (POSIX, as root) become user nobody, then run MODE
//   env KEY=VALUE MODE ...   set an environment variable first (PIPESLOT_TEST_STOP_AT, ...)
//   rlimit nofile|fsize N MODE ...   (POSIX) lower a resource limit first
#include <pipeslot/pipeslot.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <cstring>
#include <functional>

#ifndef _WIN32
#include <csignal>
#include <grp.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

int echo_client(const std::string& name, int count, const std::string& server_user) {
    ClientOptions options;
    options.wait = bound;
    options.server_user = server_user;
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

int exit_code(const std::error_code& ec) {
    if (ec) std::fprintf(stderr, "%s\n", ec.message().c_str());
    return ec ? 10 + ec.value() : 0;
}

int echo_server(const std::string& name, int instances, const std::vector<std::string>& flags) {
    ServerOptions options;
    for (const auto& f : flags) {
        if (f == "others") options.allow_other_users = true;
        else if (f.rfind("max=", 0) == 0) options.max_instances = static_cast<unsigned>(std::stoul(f.substr(4)));
    }
    std::error_code ec;
    auto server = PipeServer::start(name, options, static_cast<std::size_t>(instances),
                                    PipeServer::RequestHandler([](std::span<const std::byte> request) {
                                        // Sized once (GCC 12 at -O2 takes an insert after a memcpy for an overflow).
                                        std::vector<std::byte> reply(5 + request.size());
                                        std::memcpy(reply.data(), "echo:", 5);
                                        if (!request.empty()) std::memcpy(reply.data() + 5, request.data(), request.size());
                                        return reply;
                                    }),
                                    ec);
    if (ec) return exit_code(ec);
    return ready_then_wait();
}

int open_result(const std::string& name, const std::string& user) {
    ClientOptions options;
    options.wait = bound;
    options.server_user = user;
    std::error_code ec;
    auto channel = MessageChannel::open(name, options, ec);
    return exit_code(ec);
}

int create_result(const std::string& name, bool others) {
    ServerOptions options;
    options.allow_other_users = others;
    std::error_code ec;
    auto instance = PipeInstance::create(name, options, ec);
    return exit_code(ec);
}

int mailslot_create_result(const std::string& name) {
    std::error_code ec;
    auto slot = Mailslot::create(name, {}, ec);
    return exit_code(ec);
}

#ifndef _WIN32
int bind_udp(std::uint16_t port, std::uint32_t address, bool reuse_address, bool reuse_port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (reuse_address) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(port);
    at.sin_addr.s_addr = htonl(address);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0) return fd;
    ::close(fd);
    return -1;
}

int udp_bind_result(std::uint16_t port) {
    int bound_somewhere = 0;
    for (const std::uint32_t address : {INADDR_ANY, INADDR_LOOPBACK})
        for (int options = 0; options < 4; ++options)
            if (const int fd = bind_udp(port, address, options & 1, options & 2); fd >= 0) {
                std::fprintf(stderr, "bound %s with options %d\n", address ? "127.0.0.1" : "0.0.0.0", options);
                ::close(fd);
                bound_somewhere = 1;
            }
    return bound_somewhere;
}

int udp_hold(std::uint16_t port) {
    if (bind_udp(port, INADDR_ANY, true, true) < 0) return 2;
    return ready_then_wait();
}
#endif

int open_hold(const std::string& name) {
    ClientOptions options;
    options.wait = bound;
    std::error_code ec;
    auto channel = MessageChannel::open(name, options, ec);
    if (ec) return exit_code(ec);
    std::printf("connected\n");
    std::fflush(stdout);
    char c;
    while (std::fread(&c, 1, 1, stdin) == 1) {
    }
    return 0;
}

#ifndef _WIN32
int attack_door(const std::string& dir, const std::string& file) {
    const std::string path = dir + "/" + file;
    int worked = 0;
    if (::rename(path.c_str(), (path + ".moved").c_str()) == 0) worked |= 1;
    if (::unlink(path.c_str()) == 0) worked |= 2;
    if (::symlink("/tmp", (dir + "/planted").c_str()) == 0) worked |= 4;
    if (::mkdir((dir + "/planted-dir").c_str(), 0777) == 0) worked |= 8;
    if (::chmod(dir.c_str(), 0777) == 0) worked |= 16;
    return worked;
}
#endif

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

int run(std::vector<std::string> args);
std::function<void()> restore_limit = [] {};

int main(int argc, char** argv) {
    const int status = run(command_line_arguments(argc, argv));
    restore_limit();
    return status;
}

int run(std::vector<std::string> args) {
    for (bool prefix = true; prefix && args.size() > 2;) {
        prefix = false;
        if (args[1] == "env") {
            const auto& kv = args[2];
            const auto eq = kv.find('=');
            if (eq == std::string::npos) return 64;
#ifdef _WIN32
            _putenv_s(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str());
#else
            ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
#endif
            args.erase(args.begin() + 1, args.begin() + 3);
            prefix = true;
        }
#ifndef _WIN32
        else if (args[1] == "as-nobody") {
            constexpr uid_t nobody = 65534;
            if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0) return 65;
            ::unsetenv("PIPESLOT_RUNTIME_DIR");  // root's: nobody gets its own
            ::setenv("PIPESLOT_RUNTIME_DIR", ("/tmp/pipeslot-test-nobody-" + std::to_string(::getpid())).c_str(), 1);
            args.erase(args.begin() + 1);
            prefix = true;
        } else if (args[1] == "rlimit" && args.size() > 4) {
            const rlim_t value = std::strtoull(args[3].c_str(), nullptr, 10);
            const int which = args[2] == "nofile" ? RLIMIT_NOFILE : RLIMIT_FSIZE;
            if (which == RLIMIT_FSIZE) ::signal(SIGXFSZ, SIG_IGN);  // a write past it fails, as it would in a server that handles it
            // The soft limit only, and put back before exit: a sanitizer's checks at exit need descriptors.
            rlimit limit{};
            ::getrlimit(which, &limit);
            restore_limit = [which, limit] { ::setrlimit(which, &limit); };
            const rlimit lowered{value, limit.rlim_max};
            if (::setrlimit(which, &lowered) != 0) return 66;
            args.erase(args.begin() + 1, args.begin() + 4);
            prefix = true;
        }
#endif
    }
    if (args.size() < 3) return 64;
    const std::string& mode = args[1];
    const std::string& name = args[2];
    const auto number = [&] { return args.size() > 3 ? std::strtoull(args[3].c_str(), nullptr, 10) : 0ULL; };
    const std::string extra = args.size() > 3 ? args[3] : "";
    if (mode == "echo-client") return echo_client(name, static_cast<int>(number()), args.size() > 4 ? args[4] : "");
    if (mode == "echo-server")
        return echo_server(name, static_cast<int>(number()), {args.begin() + std::min<std::size_t>(4, args.size()), args.end()});
    if (mode == "open-result") return open_result(name, extra);
    if (mode == "create-result") return create_result(name, extra == "others");
    if (mode == "open-hold") return open_hold(name);
#ifndef _WIN32
    if (mode == "attack-door") return attack_door(name, extra);
#endif
    if (mode == "serve-and-hang") return serve_and_hang(name);
    if (mode == "send-huge") return send_huge(name, number());
    if (mode == "mailslot-hold") return mailslot_hold(name);
    if (mode == "mailslot-create-result") return mailslot_create_result(name);
#ifndef _WIN32
    if (mode == "udp-bind-result") return udp_bind_result(static_cast<std::uint16_t>(std::stoul(name)));
    if (mode == "udp-hold") return udp_hold(static_cast<std::uint16_t>(std::stoul(name)));
#endif
    if (mode == "mailslot-collect")
        return mailslot_collect(name, static_cast<int>(number()), args.size() > 4 ? std::strtol(args[4].c_str(), nullptr, 10) : 5000);
    if (mode == "mailslot-send") return mailslot_send(name, args.size() > 3 ? args[3] : "");
    return 64;
}
