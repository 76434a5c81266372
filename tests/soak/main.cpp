// The soak's command line: with --role, a child of that role (the driver
// spawns them); without, the driver. See soak.hpp for the whole.
#include "driver.hpp"

#include <cstdio>
#include <cstdlib>
#include <signal.h>
#include <sys/prctl.h>

using namespace soak;

namespace {

// A child dies with its driver, and refuses to start for another parent.
int child_main(const ChildArgs& a) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != a.parent) return 9;
    Counters* c = map_counters(a.result);
    if (!c) return 8;
    if (a.role == "server") return run_server(a, *c);
    if (a.role == "client") return run_client(a, *c);
    if (a.role == "reader") return run_reader(a, *c);
    if (a.role == "writer") return run_writer(a, *c);
    return 7;
}

void usage(FILE* to) {
    std::fprintf(to,
                 "usage: pipeslot-soak [--minutes N] [--seed S] [--servers N] [--instances N] [--clients N]\n"
                 "                     [--threads N] [--readers N] [--writers N] [--keep]\n"
                 "Runs the soak for N minutes (default 2) and prints its summary; exits 1 on any\n"
                 "corruption, unexplained failure, hang or leak. --keep keeps the run directory.\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    const auto value = [&](std::size_t& i) -> std::string {
        if (i + 1 >= args.size()) {
            usage(stderr);
            std::exit(2);
        }
        return args[++i];
    };
    ChildArgs child;
    Driver d;
    try {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const auto& a = args[i];
            if (a == "--help" || a == "-h") {
                usage(stdout);
                return 0;
            } else if (a == "--role") child.role = value(i);
            else if (a == "--id") child.id = std::stoi(value(i));
            else if (a == "--parent") child.parent = std::stoi(value(i));
            else if (a == "--result") child.result = value(i);
            else if (a == "--seed") child.seed = d.opt.seed = std::stoull(value(i));
            else if (a == "--pipe") child.pipe = value(i);
            else if (a == "--threads") child.threads = d.opt.client_threads = std::stoi(value(i));
            else if (a == "--lifetime-ms") child.lifetime_ms = std::stoi(value(i));
            else if (a == "--mailslots") child.mailslots = value(i);
            else if (a == "--minutes") d.opt.minutes = std::stod(value(i));
            else if (a == "--servers") d.opt.servers = std::stoi(value(i));
            else if (a == "--instances") d.opt.server_instances = std::stoi(value(i));
            else if (a == "--clients") d.opt.clients = std::stoi(value(i));
            else if (a == "--readers") d.opt.readers = std::stoi(value(i));
            else if (a == "--writers") d.opt.writers = std::stoi(value(i));
            else if (a == "--keep") d.opt.keep = true;
            else {
                usage(stderr);
                return 2;
            }
        }
    } catch (const std::exception&) {
        usage(stderr);
        return 2;
    }
    if (!child.role.empty()) return child_main(child);
    if (!(d.opt.minutes > 0) || d.opt.minutes > 24 * 60 || d.opt.servers < 1 || d.opt.clients < 1 || d.opt.readers < 1 ||
        d.opt.writers < 0 || d.opt.client_threads < 1 || d.opt.client_threads > max_threads || d.opt.server_instances < 1) {
        usage(stderr);
        return 2;
    }
    char buf[4096];
    const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return 1;
    d.self.assign(buf, std::size_t(n));
    return d.run();
}
