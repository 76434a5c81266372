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
//   gateway-server NAME INSTANCES [KEY=VALUE]...  (POSIX) a PipeServer on NAME (INSTANCES instances, at
//                            most that many) that takes remote clients, replying "echo:" + request to each
//                            message ("whoami": the client's client_user()), and a Gateway for it: listen=ADDRESS
//                            port=N allow=NETWORK (repeats) certificate=FILE key=FILE client-ca=FILE
//                            psk=IDENTITY:HEXFILE plaintext-loopback=1 dead-peer-ms=N request-timeout-ms=N.
//                            Prints "ready PORT", then "log: AT LINE" for each gateway log line and
//                            "served: AT WHY" each time a client's connection ends (AT: steady_clock ms);
//                            serves until stdin ends
//   remote-client            commands from stdin, one a line, each answered by one line "CODE MS AT TEXT"
//                            (CODE: 0, or the error's value, +1000 outside pipeslot's category; MS: how long
//                            it took; AT: when it ended, steady_clock ms; TEXT: the data, else the error's
//                            message): open NAME WAIT_MS|none|forever, close, send TEXT,
//                            receive SIZE TIMEOUT_MS|forever, transact TEXT,
//                            call NAME WAIT_MS TEXT (IpcSystem::call), call-simple NAME TIMEOUT_MS TEXT
//                            (pipeslot::call), wait NAME WAIT_MS (wait_for_instance), big BYTES (one message
//                            of BYTES and its echo, compared), send-loop BYTES (messages of BYTES until a send
//                            fails; TEXT: how many went whole). Ends at the end of stdin
//   raw-open ADDRESS PORT NAME  (POSIX) a plaintext gateway request for NAME over TCP, no TLS; exit 10 + the
//                            reply's result, 2 if no reply came
//   env KEY=VALUE MODE ...   set an environment variable first (PIPESLOT_TEST_STOP_AT, ...)
//   rlimit nofile|fsize N MODE ...   (POSIX) lower a resource limit first
#include <pipeslot/pipeslot.hpp>

#ifndef _WIN32
#include "common/framing.hpp"
#include "common/gateway_protocol.hpp"
#include "common/hex_file.hpp"
#endif

#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <sstream>
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
#include <sys/time.h>
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

// --- networked pipes ---------------------------------------------------------------

std::mutex output_mutex;

void print_line(const std::string& line) {
    std::lock_guard lock(output_mutex);
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

// steady_clock in ms: the same clock in every process (and network namespace) of the machine.
[[maybe_unused]] std::string now_ms() {  // (the gateway modes are POSIX only)
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::string text_of(std::span<const std::byte> bytes) { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

#ifndef _WIN32
int gateway_server(const std::string& name, unsigned instances, const std::vector<std::string>& settings) {
    GatewayOptions gateway;
    for (const auto& kv : settings) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) return 64;
        const auto key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key == "listen") gateway.address = value;
        else if (key == "port") gateway.port = static_cast<std::uint16_t>(std::stoul(value));
        else if (key == "allow") gateway.allowed_clients.push_back(value);
        else if (key == "certificate") gateway.certificate_file = value;
        else if (key == "key") gateway.private_key_file = value;
        else if (key == "client-ca") gateway.client_ca_file = value;
        else if (key == "plaintext-loopback") gateway.plaintext_on_loopback = value == "1";
        else if (key == "dead-peer-ms") gateway.dead_peer_timeout = std::chrono::milliseconds(std::stol(value));
        else if (key == "request-timeout-ms") gateway.request_timeout = std::chrono::milliseconds(std::stol(value));
        else if (key == "psk") {
            const auto colon = value.find(':');
            const auto psk = colon == std::string::npos ? std::nullopt : detail::read_hex_file(value.substr(colon + 1));
            if (!psk) return 64;
            gateway.psks[value.substr(0, colon)] = *psk;
        } else {
            return 64;
        }
    }
    gateway.log = [](std::string_view line) { print_line("log: " + now_ms() + " " + std::string(line)); };
    ServerOptions options;
    options.reject_remote_clients = false;
    options.max_instances = instances;
    std::error_code ec;
    auto server = PipeServer::start(
        name, options, instances, PipeServer::ConnectionHandler([](PipeInstance& instance) {
            for (;;) {
                std::error_code error;
                const auto request = instance.receive_message(Timeout::forever(), error);
                if (error) return print_line("served: " + now_ms() + " " + error.message());
                const auto text = text_of(request);
                const std::string reply = text == "whoami" ? instance.client_user(error) : "echo:" + text;
                instance.send(bytes_of(reply), bound, error);
                if (error) return print_line("served: " + now_ms() + " " + error.message());
            }
        }),
        ec);
    if (ec) return exit_code(ec);
    auto running = Gateway::start(gateway, ec);
    if (ec) return exit_code(ec);
    print_line("ready " + std::to_string(running.port()));
    char c;
    while (std::fread(&c, 1, 1, stdin) == 1) {
    }
    running.stop();
    server.stop();
    return 0;
}

int raw_open(const std::string& address, std::uint16_t port, const std::string& name) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(port);
    const timeval limit{10, 0};
    if (fd < 0 || ::inet_pton(AF_INET, address.c_str(), &at.sin_addr) != 1 ||
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0)
        return 3;
    detail::GatewayOpen open;
    open.name = name;
    open.request.wait_ms = 0;
    const auto frame = detail::encode_gateway_open(open);
    if (::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) return 3;
    std::vector<std::byte> reply(detail::frame_header_size + detail::open_reply_size);
    std::size_t have = 0;
    while (have < reply.size()) {
        const ssize_t n = ::recv(fd, reply.data() + have, reply.size() - have, 0);
        if (n <= 0) break;
        have += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (have < reply.size()) return 2;
    const auto header =
        detail::decode_header(std::span<const std::byte, detail::frame_header_size>(reply.data(), detail::frame_header_size));
    if (!header || header->kind != detail::FrameKind::open_reply) return 2;
    const auto decoded = detail::decode_open_reply(std::span<const std::byte>(reply).subspan(detail::frame_header_size));
    return decoded ? 10 + static_cast<int>(decoded->result) : 2;
}
#endif

Timeout timeout_of(const std::string& word) {
    if (word == "forever") return Timeout::forever();
    if (word == "none") return Timeout::none();
    return std::chrono::milliseconds(std::strtol(word.c_str(), nullptr, 10));
}

int remote_client() {
    MessageChannel channel;
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream words(line);
        std::string command;
        words >> command;
        // What follows the line's first `count` words (the text of a message).
        const auto after_words = [&](int count) {
            std::size_t at = 0;
            for (int i = 0; i < count; ++i) {
                at = line.find(' ', at);
                if (at == std::string::npos) return std::string();
                ++at;
            }
            return line.substr(at);
        };
        const auto start = std::chrono::steady_clock::now();
        std::error_code ec;
        std::string text;
        std::vector<std::byte> reply(1 << 20);
        if (command == "open") {
            std::string name, wait;
            words >> name >> wait;
            ClientOptions options;
            options.wait = timeout_of(wait);
            channel = MessageChannel::open(name, options, ec);
        } else if (command == "close") {
            channel.close();
        } else if (command == "send") {
            text = std::to_string(channel.send(bytes_of(after_words(1)), bound, ec));
        } else if (command == "receive") {
            std::size_t size = 0;
            std::string timeout;
            words >> size >> timeout;
            std::vector<std::byte> buffer(size);
            text = text_of(std::span(buffer).first(channel.receive(buffer, timeout_of(timeout), ec)));
        } else if (command == "transact") {
            text = text_of(std::span(reply).first(channel.transact(bytes_of(after_words(1)), reply, bound, ec)));
        } else if (command == "call" || command == "call-simple" || command == "wait") {
            std::string name, ms;
            words >> name >> ms;
            ClientOptions options;
            options.wait = timeout_of(ms);
            const auto request = after_words(3);
            std::size_t n = 0;
            if (command == "call") n = native_ipc().call(name, bytes_of(request), reply, options, bound, ec);
            else if (command == "call-simple") n = call(name, bytes_of(request), reply, timeout_of(ms), ec);
            else wait_for_instance(name, options, ec);
            text = text_of(std::span(reply).first(n));
        } else if (command == "big") {
            std::size_t size = 0;
            words >> size;
            std::string message(size, '\0');
            for (std::size_t i = 0; i < size; ++i) message[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
            channel.send(bytes_of(message), bound, ec);
            const auto echo = ec ? std::vector<std::byte>() : channel.receive_message(bound, ec);
            if (!ec) text = text_of(echo) == "echo:" + message ? "match" : "mismatch of " + std::to_string(echo.size()) + " bytes";
        } else if (command == "send-loop") {
            std::size_t size = 0;
            words >> size;
            const std::string message(size, 'x');
            std::size_t sent = 0;
            while (!ec) {
                channel.send(bytes_of(message), Timeout::forever(), ec);
                if (!ec) ++sent;
                if (sent == 1) print_line("sending");  // the first went: the rest back up
            }
            text = std::to_string(sent);
        } else {
            ec = errc::invalid_argument;
        }
        const auto end = std::chrono::steady_clock::now();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count();
        const auto at = std::chrono::duration_cast<std::chrono::milliseconds>(end.time_since_epoch()).count();
        const int code = !ec ? 0 : ec.category() == pipeslot::category() ? ec.value() : 1000 + ec.value();
        if (text.empty() && ec) text = ec.message();
        print_line(std::to_string(code) + " " + std::to_string(ms) + " " + std::to_string(at) + " " + text);
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
    if (args.size() == 2 && args[1] == "remote-client") return remote_client();
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
    if (mode == "gateway-server" && args.size() > 3)
        return gateway_server(name, static_cast<unsigned>(number()), {args.begin() + 4, args.end()});
    if (mode == "raw-open" && args.size() > 4)
        return raw_open(name, static_cast<std::uint16_t>(std::stoul(args[3])), args[4]);
#endif
    if (mode == "mailslot-collect")
        return mailslot_collect(name, static_cast<int>(number()), args.size() > 4 ? std::strtol(args[4].c_str(), nullptr, 10) : 5000);
    if (mode == "mailslot-send") return mailslot_send(name, args.size() > 3 ? args[3] : "");
    return 64;
}
