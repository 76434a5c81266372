// pipeslot-job-client JOB...: locates a job server by broadcast and sends it
// each JOB, printing the replies. (A server: pipeslot-server NAME together
// with pipeslot-announce NAME.)
#include "job_client.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    const auto args = pipeslot::command_line_arguments(argc, argv);
    if (args.size() < 2) {
        std::fprintf(stderr, "usage: pipeslot-job-client JOB...\n");
        return 2;
    }
    jobs::JobClient client(pipeslot::native_ipc());
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::error_code ec;
        const auto reply = client.run(args[i], ec);
        if (ec) {
            std::fprintf(stderr, "pipeslot-job-client: %s: %s\n", args[i].c_str(), ec.message().c_str());
            return 1;
        }
        std::printf("%s\n", reply.c_str());
    }
    return 0;
}
