// The driver: starts the children, SIGKILLs them at random and starts them
// again, watches for hangs, then stops everything in order, checks the counts
// of every process and prints the summary. Its parts: driver.cpp (setup,
// spawning, the chaos, hangs), driver_own.cpp (its own channels and
// mailslot), driver_end.cpp (the ordered stop, the checks, the summary).
#pragma once

#include "soak.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace soak {

struct Options {
    double minutes = 2;
    std::uint64_t seed = 0;
    int servers = 3, server_instances = 6;
    int clients = 6, client_threads = 3;
    int readers = 2, writers = 2;
    bool keep = false;
};

enum class Role { server, client, reader, writer };
const char* role_name(Role r);

struct Child {
    Role role;
    int slot;
    pid_t pid = 0;
    std::string result;
    std::int64_t started_ns = 0;
    bool killed = false;  // by the chaos (SIGKILL)
    bool hung = false;
    bool reaped = false;
    int status = 0;
};

struct Driver {
    Options opt;
    std::string self, run_dir, runtime_dir, shared_dir, pipe;
    std::vector<std::string> mailslots;
    pid_t me = ::getpid();
    Rng rng;
    std::vector<Child> children;       // every child ever started
    std::map<int, std::size_t> live;   // slot key -> index in children (live ones)
    std::set<std::int32_t> killed_servers;
    std::vector<std::pair<std::int64_t, std::int64_t>> member_stops;  // the driver's own member leaving: [from, to]
    std::vector<std::int64_t> server_kill_times;
    std::map<Role, int> kills, spawns;
    std::vector<std::string> failures;
    std::uint64_t next_id = 1;
    Counters own{};  // the driver's in-process channels

    // What run() finds on the way, for the summary.
    std::int64_t t0 = 0;
    std::size_t fd_before = 0, threads_before = 0;  // counted before any work
    bool saw_socket = false;
    static constexpr std::size_t final_count = 50;  // final mailslot messages per reader
    std::atomic<std::uint64_t> final_sent{0};
    std::vector<std::size_t> final_readers;  // indices in children

    int run();  // the whole soak; its exit status

    // driver.cpp
    void fail(const std::string& s);
    static int slot_key(Role r, int slot) { return int(r) * 1000 + slot; }
    bool make_run_directory();
    void name_pipe_and_mailslots();
    bool spawn(Role role, int slot);
    std::vector<std::size_t> live_of(Role r);
    void kill_child(std::size_t i);
    void reap();  // collects exited children; an exit nobody asked for is a failure
    void check_exit(const Child& ch);
    void check_hangs();
    std::string evidence(pid_t pid);
    void chaos_until(std::int64_t chaos_end);

    // driver_own.cpp
    void own_work(std::atomic<bool>& stop, std::mutex& m, std::uint64_t seed);
    void own_mailslot(ClientCtx& x, std::uint64_t round);

    // driver_end.cpp
    void stop_role(Role role, std::int64_t bound_ns);
    void kill_hung();
    void stop_everything();
    bool explained(const FailRecord& f);
    std::size_t files_left(const std::string& dir, std::vector<std::string>& names);
    int summarize(std::size_t fd_after, std::size_t threads_after);
};

}  // namespace soak
