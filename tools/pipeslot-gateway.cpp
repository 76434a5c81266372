// pipeslot-gateway [--config FILE] [--listen ADDRESS] [--port N] [--allow NETWORK]...
//                  [--certificate FILE --key FILE] [--client-ca FILE] [--psk IDENTITY=HEXFILE]...
//                  [--plaintext-loopback]
// Serves this host's named pipes to clients on other hosts (POSIX). Logs every
// refusal on stderr; SIGTERM or SIGINT stops it taking connections, waits for
// the ones it carries to end (--drain-seconds), then ends the rest and exits.
#include <pipeslot/pipeslot.hpp>

#include "common/hex_file.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#ifndef _WIN32
#include <pthread.h>
#endif

using namespace pipeslot;

namespace {

int usage(const std::string& problem) {
    std::fprintf(stderr,
                 "pipeslot-gateway: %s\n"
                 "usage: pipeslot-gateway [--config FILE] [--listen ADDRESS] [--port N] [--allow NETWORK]...\n"
                 "                        [--certificate FILE --key FILE] [--client-ca FILE] [--psk IDENTITY=HEXFILE]...\n"
                 "                        [--plaintext-loopback] [--max-connections N] [--request-timeout-ms N]\n"
                 "                        [--dead-peer-timeout-ms N] [--drain-seconds N] [--quiet]\n"
                 "Serves this host's named pipes to clients on other hosts, which open\n"
                 "\\\\THIS-HOST\\pipe\\NAME. Listens on ADDRESS (default 127.0.0.1) and port N (default\n"
                 "PIPESLOT_GATEWAY_PORT, else %u); only clients in an allowed NETWORK (e.g.\n"
                 "198.51.100.0/24; default: loopback) get in. A pipe created with reject_remote_clients\n"
                 "(the default) refuses them. Every connection is TLS 1.3: the gateway shows its\n"
                 "--certificate (PEM, with its --key); clients prove who they are with a certificate\n"
                 "signed by --client-ca, or with a pre-shared key (--psk: an identity and a file holding\n"
                 "the 32-byte key in hex). --plaintext-loopback lets clients on loopback skip TLS.\n"
                 "A config FILE holds the same options, one 'name = value'\n"
                 "per line ('allow' may repeat; '#' starts a comment). Refusals are logged on stderr.\n"
                 "SIGTERM drains: no new connection, the current ones get --drain-seconds (default 10).\n"
                 "See docs/gateway.md.\n",
                 problem.c_str(), unsigned{default_gateway_port});
    return 2;
}

bool parse_number(const std::string& text, long long low, long long high, long long& out) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc{} && end == text.data() + text.size() && out >= low && out <= high;
}

struct Settings {
    GatewayOptions gateway;
    long long drain_seconds = 10;
    bool quiet = false;
};

// One option by its name (without the dashes); an empty string if fine, else the problem.
std::string apply(Settings& s, const std::string& name, const std::string& value) {
    long long n = 0;
    if (name == "listen") s.gateway.address = value;
    else if (name == "certificate") s.gateway.certificate_file = value;
    else if (name == "key") s.gateway.private_key_file = value;
    else if (name == "client-ca") s.gateway.client_ca_file = value;
    else if (name == "psk") {
        const auto eq = value.find('=');
        if (eq == std::string::npos || eq == 0) return "--psk takes IDENTITY=HEXFILE";
        const auto key = pipeslot::detail::read_hex_file(value.substr(eq + 1));
        if (!key) return "--psk: " + value.substr(eq + 1) + " does not hold a key in hex";
        s.gateway.psks[value.substr(0, eq)] = *key;
    } else if (name == "plaintext-loopback") {
        if (value != "true" && value != "false") return "plaintext-loopback takes true or false";
        s.gateway.plaintext_on_loopback = value == "true";
    }
    else if (name == "allow") s.gateway.allowed_clients.push_back(value);
    else if (name == "port") {
        if (!parse_number(value, 0, 65535, n)) return "--port takes 0..65535";
        s.gateway.port = static_cast<std::uint16_t>(n);
    } else if (name == "max-connections") {
        if (!parse_number(value, 1, 1'000'000, n)) return "--max-connections takes 1..1000000";
        s.gateway.max_connections = static_cast<std::size_t>(n);
    } else if (name == "request-timeout-ms") {
        if (!parse_number(value, 1, 3'600'000, n)) return "--request-timeout-ms takes 1..3600000";
        s.gateway.request_timeout = std::chrono::milliseconds(n);
    } else if (name == "dead-peer-timeout-ms") {
        if (!parse_number(value, 1, 3'600'000, n)) return "--dead-peer-timeout-ms takes 1..3600000";
        s.gateway.dead_peer_timeout = std::chrono::milliseconds(n);
    } else if (name == "drain-seconds") {
        if (!parse_number(value, 0, 86'400, n)) return "--drain-seconds takes 0..86400";
        s.drain_seconds = n;
    } else {
        return "unknown option " + name;
    }
    return {};
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string read_config(Settings& s, const std::string& path) {
    std::ifstream in(path);
    if (!in) return "cannot read " + path;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        line = trim(line.substr(0, line.find('#')));
        if (line.empty()) continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos) return path + ":" + std::to_string(number) + ": expected 'name = value'";
        if (auto problem = apply(s, trim(line.substr(0, eq)), trim(line.substr(eq + 1))); !problem.empty())
            return path + ":" + std::to_string(number) + ": " + problem;
    }
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    const auto args = command_line_arguments(argc, argv);
    Settings settings;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--help" || a == "-h") {
            usage("serves named pipes to other hosts");
            return 0;
        }
        if (a == "--quiet") {
            settings.quiet = true;
            continue;
        }
        if (a == "--plaintext-loopback") {
            settings.gateway.plaintext_on_loopback = true;
            continue;
        }
        if (a.rfind("--", 0) != 0 || i + 1 >= args.size()) return usage("unknown or incomplete option " + a);
        const auto problem = a == "--config" ? read_config(settings, args[++i]) : apply(settings, a.substr(2), args[++i]);
        if (!problem.empty()) return usage(problem);
    }
    if (!settings.quiet)
        settings.gateway.log = [](std::string_view line) {
            std::fprintf(stderr, "pipeslot-gateway: %.*s\n", static_cast<int>(line.size()), line.data());
        };
#ifndef _WIN32
    // SIGTERM and SIGINT are taken here, by sigwait, never by a handler in another thread.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
#endif
    std::error_code ec;
    auto gateway = Gateway::start(settings.gateway, ec);
    if (ec == errc::invalid_argument) {
        return usage("nothing could connect (give --certificate and --key with --client-ca or --psk, or "
                     "--plaintext-loopback), or a file does not load");
    }
    if (ec) {
        std::fprintf(stderr, "pipeslot-gateway: cannot listen on %s: %s\n", settings.gateway.address.c_str(),
                     ec.message().c_str());
        return 1;
    }
    std::printf("pipeslot-gateway: listening on %s port %u\n", settings.gateway.address.c_str(), unsigned{gateway.port()});
    std::fflush(stdout);
#ifndef _WIN32
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
#endif
    gateway.stop_accepting();
    const auto carried = gateway.connections();
    const bool drained = gateway.wait_idle(std::chrono::seconds(settings.drain_seconds));
    gateway.stop();
    std::printf("pipeslot-gateway: stopped (%zu connections at the signal%s)\n", carried,
                drained ? ", all ended by their clients" : ", the rest closed");
    return 0;
}
