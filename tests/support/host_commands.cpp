#include "host_commands.hpp"

#include "support.hpp"

#include <csignal>
#include <sstream>

namespace pipeslot::test {

int run_command(std::vector<std::string> argv, std::string* output) {
    Command c;
    c.program = argv.front();
    c.args.assign(argv.begin() + 1, argv.end());
    c.std_in = Stdio::null();
    c.std_err = Stdio::null();
    std::error_code ec;
    if (output) {
        auto pipe = Pipe::create({}, ec);
        if (ec) return -1;
        c.std_out = Stdio::from(std::move(pipe.write_end));
        auto p = Process::spawn(std::move(c), ec);
        if (ec) return -1;
        *output = read_all(pipe.read_end, generous);
        return p.wait(generous, ec);
    }
    c.std_out = Stdio::null();
    auto p = Process::spawn(std::move(c), ec);
    return ec ? -1 : p.wait(generous, ec);
}

std::vector<pid_t> pids_in_namespace(const std::string& ns) {
    std::string out;
    run_command({"ip", "netns", "pids", ns}, &out);
    std::vector<pid_t> pids;
    std::istringstream in(out);
    for (long pid = 0; in >> pid;)
        if (pid > 1) pids.push_back(static_cast<pid_t>(pid));
    return pids;
}

void remove_namespace(const std::string& ns) {
    for (const pid_t pid : pids_in_namespace(ns)) ::kill(pid, SIGKILL);
    run_command({"ip", "netns", "del", ns});
}

}  // namespace pipeslot::test
