// pipeslot-pipe PROG1 [ARGS...] = PROG2 [ARGS...] [= PROG3 ...]
// Runs the programs as a pipeline, each one's stdout feeding the next one's
// stdin, and exits with the last program's exit code.
#include <pipeslot/pipeslot.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr int usage_status = 2;

int usage(const char* problem) {
    std::fprintf(stderr,
                 "pipeslot-pipe: %s\n"
                 "usage: pipeslot-pipe PROG1 [ARGS...] = PROG2 [ARGS...] [= PROG3 [ARGS...] ...]\n"
                 "Runs PROG1 with its output redirected into PROG2's input and exits with\n"
                 "PROG2's exit status. Each '=' starts the next program of the pipeline.\n",
                 problem);
    return usage_status;
}

}  // namespace

int main(int argc, char** argv) {
    const auto args = pipeslot::command_line_arguments(argc, argv);
    std::vector<pipeslot::Command> stages(1);
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "=") {
            if (stages.back().program.empty()) return usage("a program is missing before '='");
            stages.emplace_back();
        } else if (stages.back().program.empty()) {
            stages.back().program = args[i];
        } else {
            stages.back().args.push_back(args[i]);
        }
    }
    if (stages.back().program.empty()) return usage("a program is missing after '='");
    if (stages.size() < 2) return usage("at least two programs separated by '=' are needed");

    std::error_code ec;
    auto processes = pipeslot::spawn_pipeline(std::move(stages), ec);
    if (ec) {
        std::fprintf(stderr, "pipeslot-pipe: cannot start the pipeline: %s\n", ec.message().c_str());
        return 127;
    }
    int status = 0;
    for (auto& p : processes) {
        status = p.wait(pipeslot::Timeout::forever(), ec);
        if (ec) {
            std::fprintf(stderr, "pipeslot-pipe: wait failed: %s\n", ec.message().c_str());
            return 127;
        }
    }
    return status;
}
