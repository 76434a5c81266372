// pipeslot-server NAME [--instances N] [--allow PROGRAM]... [--clients N] [--remote] [--smb [--smb-directory DIR]]
// A named-pipe server in the classic shape: N instances, one thread each. A
// request whose first word is an allowed PROGRAM runs it (no shell) and
// replies with its output; any other request is echoed back upper-cased.
#include <pipeslot/pipeslot.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

using namespace pipeslot;

namespace {

int usage(const char* problem) {
    std::fprintf(stderr,
                 "pipeslot-server: %s\n"
                 "usage: pipeslot-server NAME [--instances N] [--allow PROGRAM]... [--clients N] [--remote]\n"
                 "                       [--smb [--smb-directory DIR]]\n"
                 "Serves the named pipe NAME (e.g. \\\\.\\pipe\\demo) with N instances (default 4).\n"
                 "A request 'PROGRAM ARGS...' runs PROGRAM if it was allowed and replies with its\n"
                 "output; any other request is echoed upper-cased. Stops once N clients have\n"
                 "come and gone (--clients), or when standard input ends. --remote accepts\n"
                 "clients on other hosts (through a gateway; refused by default). --smb also\n"
                 "serves Windows clients through Samba's smbd (implies --remote), publishing the\n"
                 "pipe in DIR (default $PIPESLOT_SMB_DIRECTORY, else /run/samba/ncalrpc/np).\n",
                 problem);
    return 2;
}

std::string run_allowed(const std::vector<std::string>& words) {
    auto out = Pipe::create();
    Command command;
    command.program = words[0];
    command.args.assign(words.begin() + 1, words.end());
    command.std_in = Stdio::null();
    command.std_out = Stdio::from(std::move(out.write_end));
    std::error_code ec;
    auto process = Process::spawn(std::move(command), ec);
    if (ec) return "error: cannot run " + words[0] + ": " + ec.message();
    std::string output;
    std::vector<std::byte> buffer(4096);
    while (output.size() < 65536) {
        const auto n = out.read_end.read(buffer, std::chrono::seconds(10), ec);
        output.append(reinterpret_cast<const char*>(buffer.data()), n);
        if (ec) break;
    }
    out.read_end.close();
    const int status = process.wait(std::chrono::seconds(10), ec);
    if (ec) process.kill(ec), process.wait(std::chrono::seconds(10), ec);
    return output + "[exit " + std::to_string(status) + "]";
}

}  // namespace

int main(int argc, char** argv) {
    const auto args = command_line_arguments(argc, argv);
    if (args.size() < 2) return usage("a pipe name is needed");
    const std::string name = args[1];
    std::size_t instances = 4;
    long clients = -1;
    std::set<std::string> allowed;
    ServerOptions options;
    for (std::size_t i = 2; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--instances" && has_value) instances = std::strtoul(args[++i].c_str(), nullptr, 10);
        else if (args[i] == "--clients" && has_value) clients = std::strtol(args[++i].c_str(), nullptr, 10);
        else if (args[i] == "--allow" && has_value) allowed.insert(args[++i]);
        else if (args[i] == "--remote") options.reject_remote_clients = false;
        else if (args[i] == "--smb") options.publish_smb = true, options.reject_remote_clients = false;
        else if (args[i] == "--smb-directory" && has_value) options.smb_directory = args[++i];
        else return usage(("unknown or incomplete option " + args[i]).c_str());
    }
    if (instances == 0 || instances > max_limited_instances) return usage("--instances takes 1..254");

    const auto answer = [&](const std::string& text) {
        std::istringstream split(text);
        std::vector<std::string> words{std::istream_iterator<std::string>(split), {}};
        if (!words.empty() && allowed.count(words[0])) return run_allowed(words);
        std::string reply = text;
        std::transform(reply.begin(), reply.end(), reply.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        return reply;
    };
    std::mutex mutex;
    std::condition_variable done;
    long served = 0;
    std::error_code ec;
    auto server = PipeServer::start(
        name, options, instances,
        PipeServer::ConnectionHandler([&](PipeInstance& client) {
            for (std::error_code io;;) {
                const auto request = client.receive_message(Timeout::forever(), io);
                if (io) break;  // the client has gone
                const auto reply = answer(std::string(reinterpret_cast<const char*>(request.data()), request.size()));
                client.send(std::as_bytes(std::span(reply)), std::chrono::seconds(30), io);
                if (io) break;
            }
            std::lock_guard lock(mutex);
            ++served;
            done.notify_all();
        }),
        ec);
    if (ec) {
        std::fprintf(stderr, "pipeslot-server: cannot serve %s: %s\n", name.c_str(), ec.message().c_str());
        return 1;
    }
    std::printf("pipeslot-server: serving %s with %zu instances\n", name.c_str(), instances);
    std::fflush(stdout);
    if (clients >= 0) {
        std::unique_lock lock(mutex);
        done.wait(lock, [&] { return served >= clients; });
    } else {
        while (std::getchar() != EOF) {
        }
    }
    server.stop();
    std::printf("pipeslot-server: served %ld clients\n", served);
    return 0;
}
