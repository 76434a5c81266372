// Commands a POSIX test runs on the machine (ip, smbd, ...), and the network
// namespaces it makes with them. Every wait is bounded (test::generous).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

namespace pipeslot::test {

// Runs argv to its end, quietly (standard error dropped); its exit status,
// -1 if it could not run. `output`, if given, receives its standard output.
int run_command(std::vector<std::string> argv, std::string* output = nullptr);

// The processes in the network namespace `ns` (ip netns pids).
std::vector<pid_t> pids_in_namespace(const std::string& ns);

// Kills what runs in `ns`, then deletes it.
void remove_namespace(const std::string& ns);

}  // namespace pipeslot::test
