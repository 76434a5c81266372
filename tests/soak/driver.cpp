// The driver's setup, its children (spawned, SIGKILLed, reaped, watched for
// hangs) and the chaos loop; run() puts the parts in order.
#include "driver.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

extern char** environ;

namespace soak {

const char* role_name(Role r) {
    switch (r) {
    case Role::server: return "server";
    case Role::client: return "client";
    case Role::reader: return "reader";
    case Role::writer: return "writer";
    }
    return "?";
}

void Driver::fail(const std::string& s) {
    failures.push_back(s);
    std::fprintf(stderr, "soak: FAILURE: %s\n", s.c_str());
}

bool Driver::spawn(Role role, int slot) {
    Child ch;
    ch.role = role;
    ch.slot = slot;
    const auto id = next_id++;
    ch.result = run_dir + "/results/" + role_name(role) + "-" + std::to_string(id);
    if (!make_counter_file(ch.result)) {
        fail("cannot create " + ch.result);
        return false;
    }
    std::vector<std::string> args = {self, "--role", role_name(role), "--id", std::to_string(id),
                                     "--parent", std::to_string(me), "--result", ch.result,
                                     "--seed", std::to_string(rng())};
    switch (role) {
    case Role::server:
        args.insert(args.end(), {"--pipe", pipe, "--threads", std::to_string(opt.server_instances)});
        break;
    case Role::client:
        args.insert(args.end(), {"--pipe", pipe, "--threads", std::to_string(opt.client_threads),
                                 "--lifetime-ms", std::to_string(pick(rng, 1000, 8000))});
        break;
    case Role::reader: args.insert(args.end(), {"--mailslots", mailslots[std::size_t(slot)]}); break;
    case Role::writer: {
        std::string all;
        for (auto& m : mailslots) all += (all.empty() ? "" : "|") + m;
        args.insert(args.end(), {"--mailslots", all});
        break;
    }
    }
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    // The child starts with SIGTERM and SIGINT blocked (it waits for them
    // with sigwait): a stop sent before it has set itself up is not its death.
    posix_spawnattr_t attributes;
    ::posix_spawnattr_init(&attributes);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    ::posix_spawnattr_setsigmask(&attributes, &stop_signals);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, self.c_str(), nullptr, &attributes, argv.data(), environ);
    ::posix_spawnattr_destroy(&attributes);
    if (rc != 0) {
        fail(std::string("posix_spawn: ") + std::strerror(rc));
        return false;
    }
    ch.pid = pid;
    ch.started_ns = now_ns();
    children.push_back(ch);
    live[slot_key(role, slot)] = children.size() - 1;
    spawns[role]++;
    return true;
}

std::vector<std::size_t> Driver::live_of(Role r) {
    std::vector<std::size_t> out;
    for (auto& [key, i] : live)
        if (children[i].role == r && !children[i].hung) out.push_back(i);
    return out;
}

void Driver::kill_child(std::size_t i) {
    auto& ch = children[i];
    if (ch.reaped) return;
    ch.killed = true;
    ::kill(ch.pid, SIGKILL);
    kills[ch.role]++;
    if (ch.role == Role::server) {
        killed_servers.insert(ch.pid);
        server_kill_times.push_back(now_ns());
    }
}

// An exit nobody asked for is a failure (check_exit).
void Driver::reap() {
    for (auto it = live.begin(); it != live.end();) {
        auto& ch = children[it->second];
        int status = 0;
        const pid_t r = ::waitpid(ch.pid, &status, WNOHANG);
        if (r == ch.pid) {
            ch.reaped = true;
            ch.status = status;
            check_exit(ch);
            it = live.erase(it);
        } else {
            ++it;
        }
    }
}

void Driver::check_exit(const Child& ch) {
    const auto who = std::string(role_name(ch.role)) + " " + std::to_string(ch.pid);
    if (WIFSIGNALED(ch.status)) {
        if (!(ch.killed && WTERMSIG(ch.status) == SIGKILL))
            fail(who + " died by signal " + std::to_string(WTERMSIG(ch.status)) + " (" + strsignal(WTERMSIG(ch.status)) + ")");
        return;
    }
    if (WIFEXITED(ch.status) && WEXITSTATUS(ch.status) != 0) {
        Counters c;
        std::string text;
        if (read_counters(ch.result, c) && c.note_taken) text = std::string(": ") + std::string(c.note, strnlen(c.note, sizeof c.note));
        fail(who + " exited with status " + std::to_string(WEXITSTATUS(ch.status)) + text);
    }
}

// A blocking call of a child older than every timeout it was given: a hang.
void Driver::check_hangs() {
    const auto now = now_ns();
    for (auto& [key, i] : live) {
        auto& ch = children[i];
        if (ch.hung) continue;
        Counters c;
        if (!read_counters(ch.result, c)) continue;
        for (int t = 0; t < max_threads; ++t) {
            const auto since = c.busy_since[t].load();
            if (since && now - since > 60'000'000'000LL) {
                ch.hung = true;
                fail(std::string(role_name(ch.role)) + " " + std::to_string(ch.pid) + " hung: thread " + std::to_string(t) +
                     " in " + stage_name(c.busy_stage[t]) + " for " + std::to_string((now - since) / 1'000'000'000) +
                     " s (evidence: " + evidence(ch.pid) + ")");
                break;
            }
        }
    }
}

// Stacks of a hung process, into the run directory.
std::string Driver::evidence(pid_t pid) {
    const auto file = run_dir + "/hang-" + std::to_string(pid) + ".txt";
    std::ofstream out(file);
    std::error_code ec;
    for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/task", ec), end; !ec && it != end; it.increment(ec)) {
        for (const char* what : {"comm", "wchan", "stack"}) {
            std::ifstream in(it->path() / what);
            std::stringstream s;
            s << in.rdbuf();
            out << it->path().string() << "/" << what << ":\n" << s.str() << "\n";
        }
    }
    out.close();
    const auto cmd = "timeout 60 gdb -p " + std::to_string(pid) + " -batch -ex 'thread apply all bt' >> " + file + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {}
    return file;
}

// A directory of its own for the run: the library's runtime and shared
// directories, and the children's counters files under results/.
bool Driver::make_run_directory() {
    char tmpl[] = "/tmp/pipeslot-soak-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return false;
    }
    run_dir = tmpl;
    runtime_dir = run_dir + "/runtime";
    shared_dir = run_dir + "/shared";
    ::mkdir(runtime_dir.c_str(), 0700);
    ::mkdir(shared_dir.c_str(), 0700);
    ::chmod(shared_dir.c_str(), 01777);
    ::mkdir((run_dir + "/results").c_str(), 0700);
    // Every file of this run goes to its own directories; the network is off.
    ::setenv("PIPESLOT_RUNTIME_DIR", runtime_dir.c_str(), 1);
    ::setenv("PIPESLOT_SHARED_DIR", shared_dir.c_str(), 1);
    ::setenv("PIPESLOT_MAILSLOT_NETWORK", "off", 1);
    ::setenv("PIPESLOT_MAILSLOT_INTERFACES", "lo", 1);
    return true;
}

// Names no other run on this host uses: the driver's pid and a random part.
void Driver::name_pipe_and_mailslots() {
    char hex[32];
    std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(rng() & 0xffffffffULL));
    const std::string prefix = "pipeslot-soak-" + std::to_string(me) + "-" + hex;
    pipe = R"(\\.\pipe\)" + prefix;
    for (int i = 0; i < opt.readers; ++i) mailslots.push_back(R"(\\.\mailslot\)" + prefix + "-" + std::to_string(i));
}

// Until `chaos_end`: children gone are started again, others SIGKILLed at
// random; hangs and the clients' progress are checked on the way.
void Driver::chaos_until(std::int64_t chaos_end) {
    std::map<int, std::int64_t> respawn_at;  // slot key -> when
    std::int64_t next_hang_check = 0, next_progress = t0 + 10'000'000'000LL, last_progress_ns = now_ns();
    std::uint64_t last_completed = 0;
    std::uniform_real_distribution<double> u(0, 1);
    const double tick = 0.05;  // s
    while (now_ns() < chaos_end) {
        std::this_thread::sleep_for(50ms);
        reap();
        const auto now = now_ns();
        // Restart what is gone, after a short pause (servers and readers longer).
        for (Role r : {Role::server, Role::client, Role::reader, Role::writer}) {
            const int want = r == Role::server ? opt.servers : r == Role::client ? opt.clients : r == Role::reader ? opt.readers : opt.writers;
            for (int s = 0; s < want; ++s) {
                const int key = slot_key(r, s);
                if (live.count(key)) continue;
                auto it = respawn_at.find(key);
                if (it == respawn_at.end()) {
                    const auto pause = r == Role::client || r == Role::writer ? pick(rng, 0, 200) : pick(rng, 100, 1500);
                    respawn_at[key] = now + std::int64_t(pause) * 1'000'000;
                } else if (now >= it->second) {
                    respawn_at.erase(it);
                    spawn(r, s);
                }
            }
        }
        // Kills: clients about twice a second, a server every ~8 s, a reader every ~6 s, a writer every ~10 s.
        const auto chaos = [&](Role r, double per_second) {
            if (u(rng) >= per_second * tick) return;
            auto l = live_of(r);
            if (l.empty()) return;
            const auto i = l[pick(rng, 0, l.size() - 1)];
            // Mid-exchange: a child that has been up for a moment.
            if (now - children[i].started_ns < 200'000'000) return;
            kill_child(i);
        };
        chaos(Role::client, 2.0);
        chaos(Role::server, 1.0 / 8);
        chaos(Role::reader, 1.0 / 6);
        chaos(Role::writer, 1.0 / 10);
        if (!saw_socket) {
            std::error_code ec;
            for (fs::directory_iterator it(runtime_dir, ec), end; !ec && it != end; it.increment(ec))
                if (it->path().extension() == ".sock") saw_socket = true;
        }
        if (now >= next_hang_check) {
            next_hang_check = now + 1'000'000'000LL;
            check_hangs();
            const auto since = own.busy_since[0].load();
            if (since && now - since > 60'000'000'000LL) {
                fail(std::string("the driver's own channel hung in ") + stage_name(own.busy_stage[0]) + " (evidence: " + evidence(me) + ")");
                own.busy_since[0] = 0;
            }
        }
        if (now >= next_progress) {  // the clients as a whole must keep completing exchanges
            next_progress = now + 5'000'000'000LL;
            std::uint64_t completed = own.v[c_verified] + own.v[c_corrupt];
            for (auto& ch : children) {
                Counters c;
                if (read_counters(ch.result, c)) completed += c.v[c_verified] + c.v[c_corrupt];
            }
            if (completed > last_completed) {
                last_completed = completed;
                last_progress_ns = now;
            } else if (now - last_progress_ns > 30'000'000'000LL) {
                fail("no exchange completed for 30 s");
                last_progress_ns = now;
            }
        }
    }
}

int Driver::run() {
    t0 = now_ns();
    if (!opt.seed) opt.seed = std::random_device{}() ^ std::uint64_t(t0);
    rng.seed(opt.seed);
    if (!make_run_directory()) return 1;
    name_pipe_and_mailslots();
    std::signal(SIGPIPE, SIG_IGN);
    std::printf("soak: %.1f min, seed %llu, pipe %s, run directory %s\n", opt.minutes,
                static_cast<unsigned long long>(opt.seed), pipe.c_str(), run_dir.c_str());
    std::fflush(stdout);

    // Counted before any work: what the driver holds must be the same after.
    fd_before = fd_count();
    threads_before = thread_count();

    for (int i = 0; i < opt.servers; ++i) spawn(Role::server, i);
    for (int i = 0; i < opt.readers; ++i) spawn(Role::reader, i);
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < opt.clients; ++i) spawn(Role::client, i);
    for (int i = 0; i < opt.writers; ++i) spawn(Role::writer, i);

    std::atomic<bool> own_stop{false}, own_done{false};
    std::mutex own_mutex;
    std::thread own_thread([&, seed = rng()] {
        own_work(own_stop, own_mutex, seed);
        own_done = true;
    });

    chaos_until(t0 + std::int64_t(opt.minutes * 60e9));

    // The end: no more kills; everything stops in order, each within a bound.
    std::printf("soak: stopping\n");
    std::fflush(stdout);
    own_stop = true;
    {
        const auto give_up = now_ns() + 60'000'000'000LL;
        while (!own_done && now_ns() < give_up) std::this_thread::sleep_for(20ms);
        if (!own_done) {
            fail("the driver's own work did not stop within 60 s (evidence: " + evidence(me) + ")");
            std::fflush(stdout);
            ::_exit(1);
        }
        own_thread.join();
    }
    stop_everything();

    const auto fd_after = fd_count();
    const auto threads_after = thread_count_back_to(threads_before);
    return summarize(fd_after, threads_after);
}

}  // namespace soak
