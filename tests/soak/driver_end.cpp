// The driver's end: everything stopped in order (clients, writers, the final
// mailslot messages, readers, servers), then the counts of every process
// added up, checked across processes and printed as the summary.
#include "driver.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <signal.h>
#include <sys/wait.h>
#include <thread>

namespace soak {

// Sends SIGTERM to every live child of `role`, waits (bounded) for them all.
void Driver::stop_role(Role role, std::int64_t bound_ns) {
    for (auto i : live_of(role)) ::kill(children[i].pid, SIGTERM);
    const auto give_up = now_ns() + bound_ns;
    while (now_ns() < give_up) {
        reap();
        if (live_of(role).empty()) return;
        std::this_thread::sleep_for(20ms);
    }
    for (auto i : live_of(role)) {
        auto& ch = children[i];
        ch.hung = true;
        Counters c{};
        read_counters(ch.result, c);
        std::string where;
        for (int t = 0; t < max_threads; ++t)
            if (c.busy_since[t]) where += std::string(" thread ") + std::to_string(t) + " in " + stage_name(c.busy_stage[t]);
        fail(std::string(role_name(role)) + " " + std::to_string(ch.pid) + " did not stop within " +
             std::to_string(bound_ns / 1'000'000'000) + " s of SIGTERM;" + where + " (evidence: " + evidence(ch.pid) + ")");
    }
}

void Driver::kill_hung() {
    for (auto& ch : children)
        if (!ch.reaped && ch.hung) {
            ::kill(ch.pid, SIGKILL);
            int st;
            ::waitpid(ch.pid, &st, 0);
            ch.reaped = true;
        }
    live.clear();
}

// Clients and writers first, so the readers' final counts are of the final
// messages alone; each role within a bound, a child past it reported as hung.
void Driver::stop_everything() {
    reap();
    stop_role(Role::client, 40'000'000'000LL);
    stop_role(Role::writer, 20'000'000'000LL);
    // Every reader up, then the final messages, which each must get whole.
    for (int s = 0; s < opt.readers; ++s)
        if (!live.count(slot_key(Role::reader, s))) spawn(Role::reader, s);
    std::thread final_thread([&] {
        Rng r(rng());
        for (int s = 0; s < opt.readers; ++s) {
            const auto& ch = children[live.at(slot_key(Role::reader, s))];
            const auto give_up = now_ns() + 15'000'000'000LL;
            Counters c{};
            while (now_ns() < give_up && (!read_counters(ch.result, c) || c.state.load() != 1)) std::this_thread::sleep_for(20ms);
            if (c.state.load() != 1) {
                note(own, "reader " + std::to_string(ch.pid) + " not ready for the final messages");
                continue;
            }
            std::error_code ec;
            auto out = Broadcaster::open(mailslots[std::size_t(s)], ec);
            for (std::size_t i = 0; i < final_count && !ec; ++i) {
                out.send(make_mailslot_message(r, 0, i + 1, pick(r, 0, 4000)), 5s, ec);
                if (!ec) {
                    own.v[m_sent]++;
                    final_sent++;
                }
            }
            if (ec) note(own, "final mailslot messages: " + ec.message());
        }
    });
    final_thread.join();
    final_readers = live_of(Role::reader);
    stop_role(Role::reader, 20'000'000'000LL);
    stop_role(Role::server, 40'000'000'000LL);
    kill_hung();
    // Any child not yet collected (there should be none).
    for (auto& ch : children)
        if (!ch.reaped) {
            int st = 0;
            if (::waitpid(ch.pid, &st, WNOHANG) == 0) {
                fail("child " + std::to_string(ch.pid) + " still running at the end");
                ::kill(ch.pid, SIGKILL);
                ::waitpid(ch.pid, &st, 0);
            }
            ch.reaped = true;
        }
}

// A failed exchange is expected if its server was SIGKILLed, or if it came
// within 3 s of the driver's member stopping or (server not known) of a kill.
bool Driver::explained(const FailRecord& f) {
    if (f.server_pid > 0 && killed_servers.count(f.server_pid)) return true;
    const auto window = 3'000'000'000LL;
    if (f.server_pid == me || f.server_pid <= 0) {
        for (auto& [from, to] : member_stops)
            if (f.when_ns >= from - window && f.when_ns <= to + window) return true;
    }
    if (f.server_pid <= 0)
        for (auto t : server_kill_times)
            if (f.when_ns >= t - window && f.when_ns <= t + window) return true;
    return false;
}

std::size_t Driver::files_left(const std::string& dir, std::vector<std::string>& names) {
    std::size_t n = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_directory(ec)) continue;
        ++n;
        names.push_back(it->path().string());
    }
    return n;
}

// The summary's name for a FailRecord code (see code_of in common.cpp).
static std::string errc_name(int code) {
    if (code >= 1 && code <= int(errc::bad_pipe)) return make_error_code(errc(code)).message();
    return "other(" + std::to_string(code) + ")";
}

int Driver::summarize(std::size_t fd_after, std::size_t threads_after) {
    // Totals.
    std::uint64_t total[counter_count] = {};
    std::uint64_t fail_records = 0, unexplained = 0, unrecorded = 0;
    std::map<std::string, std::uint64_t> explained_by_code, unexplained_by_code;
    std::uint64_t leaky_children = 0, final_received = 0;
    const auto add = [&](const Counters& c, const char* who, pid_t pid, bool clean) {
        for (int k = 0; k < counter_count; ++k)
            if (k < x_fd_before) total[k] += c.v[k];
        total[x_unexpected] += c.v[x_unexpected];
        const auto n = c.fail_count.load();
        fail_records += n;
        if (n > max_fail_records) unrecorded += n - max_fail_records;
        for (std::uint32_t i = 0; i < std::min<std::uint32_t>(n, max_fail_records); ++i) {
            const auto& f = c.fails[i];
            const auto key = std::string(stage_name(f.stage)) + ": " + errc_name(f.code);
            if (explained(f)) {
                explained_by_code[key]++;
            } else {
                unexplained++;
                unexplained_by_code[key]++;
                if (unexplained <= 5)
                    fail(std::string(who) + " " + std::to_string(pid) + ": " + key + " on a channel of server " +
                         std::to_string(f.server_pid) + ", which was neither killed nor stopping");
            }
        }
        if (c.note_taken) fail(std::string(who) + " " + std::to_string(pid) + ": " + std::string(c.note, strnlen(c.note, sizeof c.note)));
        if (clean && c.state.load() == 2 &&
            (c.v[x_fd_after] != c.v[x_fd_before] || c.v[x_threads_after] != c.v[x_threads_before])) {
            leaky_children++;
            fail(std::string(who) + " " + std::to_string(pid) + " at its end: descriptors " + std::to_string(c.v[x_fd_before]) +
                 " -> " + std::to_string(c.v[x_fd_after]) + ", threads " + std::to_string(c.v[x_threads_before]) + " -> " +
                 std::to_string(c.v[x_threads_after]));
        }
    };
    add(own, "driver", me, false);
    std::size_t clean_exits = 0;
    for (std::size_t i = 0; i < children.size(); ++i) {
        const auto& ch = children[i];
        Counters c;
        if (!read_counters(ch.result, c)) {
            fail("no result file of " + std::string(role_name(ch.role)) + " " + std::to_string(ch.pid));
            continue;
        }
        const bool clean = !ch.killed && !ch.hung && WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0;
        if (clean && c.state.load() != 2) fail(std::string(role_name(ch.role)) + " " + std::to_string(ch.pid) + " exited 0 without finishing");
        clean_exits += clean;
        add(c, role_name(ch.role), ch.pid, clean);
        if (ch.role == Role::reader && std::find(final_readers.begin(), final_readers.end(), i) != final_readers.end()) {
            final_received += c.v[m_final];
            if (c.v[m_final] != final_count)
                fail("reader " + std::to_string(ch.pid) + " got " + std::to_string(c.v[m_final]) + " of the " +
                     std::to_string(final_count) + " final messages");
        }
    }
    if (final_readers.size() != std::size_t(opt.readers)) fail("not every reader was there for the final messages");

    // Checks across processes.
    total[c_completed] = total[c_verified] + total[c_corrupt];
    if (total[c_corrupt]) fail(std::to_string(total[c_corrupt]) + " corrupt replies");
    if (total[s_bad_requests]) fail(std::to_string(total[s_bad_requests]) + " corrupt requests at the servers");
    // A server SIGKILLed between a send and its count: at most one reply per instance uncounted.
    if (total[c_completed] > total[s_replies] + std::uint64_t(kills[Role::server]) * std::uint64_t(opt.server_instances))
        fail("more replies received than the servers sent");
    if (total[m_bad] || total[m_order]) fail("mailslot: corrupt or out-of-order messages");
    const auto writer_kills = std::uint64_t(kills[Role::writer]);
    const auto ordinary_sent = total[m_sent] - final_sent;
    if (total[m_received] > ordinary_sent + writer_kills)
        fail("mailslot: more messages received than sent");
    if (total[c_verified] == 0) fail("no exchange completed at all");
    if (!saw_socket) fail("no socket ever appeared in " + runtime_dir + " (are the runtime directories used?)");
    if (unrecorded) fail(std::to_string(unrecorded) + " exchange failures beyond the records kept (not attributed)");

    std::vector<std::string> leftovers;
    const auto left = files_left(runtime_dir, leftovers) + files_left(shared_dir, leftovers);
    for (auto& f : leftovers) fail("left over: " + f);
    if (fd_after != fd_before) fail("driver descriptors " + std::to_string(fd_before) + " -> " + std::to_string(fd_after));
    if (threads_after != threads_before) fail("driver threads " + std::to_string(threads_before) + " -> " + std::to_string(threads_after));

    const auto secs = double(now_ns() - t0) / 1e9;
    std::printf("\nsoak summary (%.0f s, seed %llu)\n", secs, static_cast<unsigned long long>(opt.seed));
    std::printf("  processes started: %d servers, %d clients (%d threads each), %d mailslot readers, %d writers; %zu exited cleanly\n",
                spawns[Role::server], spawns[Role::client], opt.client_threads, spawns[Role::reader], spawns[Role::writer], clean_exits);
    std::printf("  SIGKILLed: %d clients, %d servers, %d readers, %d writers\n", kills[Role::client], kills[Role::server],
                kills[Role::reader], kills[Role::writer]);
    std::printf("  opens: %llu connected, %llu not_found, %llu pipe_busy, %llu timed_out, %llu other\n",
                (unsigned long long)total[c_opens], (unsigned long long)total[c_open_not_found],
                (unsigned long long)total[c_open_busy], (unsigned long long)total[c_open_timed_out],
                (unsigned long long)total[c_open_other]);
    std::printf("  exchanges: %llu started, %llu completed, %llu verified byte-exact, %llu corrupt; %llu large (>512 B), "
                "%llu more_data parts, %llu abandoned on purpose\n",
                (unsigned long long)total[c_exchanges], (unsigned long long)total[c_completed],
                (unsigned long long)total[c_verified], (unsigned long long)total[c_corrupt],
                (unsigned long long)total[c_large], (unsigned long long)total[c_more_data],
                (unsigned long long)total[c_abandoned]);
    std::printf("  bytes: %.1f MiB sent, %.1f MiB received and checked\n", double(total[c_bytes_out]) / 1048576,
                double(total[c_bytes_in]) / 1048576);
    std::printf("  servers: %llu connections, %llu requests, %llu replies, %llu more_data parts, %llu corrupt requests\n",
                (unsigned long long)total[s_connections], (unsigned long long)total[s_requests],
                (unsigned long long)total[s_replies], (unsigned long long)total[s_more_data],
                (unsigned long long)total[s_bad_requests]);
    std::printf("  failed exchanges: %llu, all on servers killed or stopping: %s\n", (unsigned long long)fail_records,
                unexplained || unrecorded ? "NO" : "yes");
    for (auto& [k, n] : explained_by_code) std::printf("    %-40s %llu (server killed/stopping)\n", k.c_str(), (unsigned long long)n);
    for (auto& [k, n] : unexplained_by_code) std::printf("    %-40s %llu UNEXPLAINED\n", k.c_str(), (unsigned long long)n);
    std::printf("  mailslots: %llu sent, %llu received (%llu lost with killed readers or writers), %llu sends with no reader, "
                "%llu over-size refused, %llu final received of %zu, %llu readers created\n",
                (unsigned long long)total[m_sent], (unsigned long long)total[m_received],
                (unsigned long long)(ordinary_sent - std::min(ordinary_sent, total[m_received])),
                (unsigned long long)total[m_not_found], (unsigned long long)total[m_too_large_ok],
                (unsigned long long)final_received, final_count * std::size_t(opt.readers), (unsigned long long)total[m_creates]);
    std::printf("  driver: descriptors %zu before, %zu after; threads %zu before, %zu after\n", fd_before, fd_after,
                threads_before, threads_after);
    std::printf("  children with a descriptor or thread left at their end: %llu\n", (unsigned long long)leaky_children);
    std::printf("  files left in the runtime directories: %zu\n", left);
    std::printf("  unexpected errors: %llu\n", (unsigned long long)total[x_unexpected]);
    if (failures.empty()) {
        std::printf("soak: PASS\n");
        if (!opt.keep) fs::remove_all(run_dir);
        return 0;
    }
    // The same failure in many processes once, with its count and its first instance.
    std::vector<std::pair<std::string, std::size_t>> kinds;  // first text, count
    std::map<std::string, std::size_t> index;
    for (const auto& f : failures) {
        std::string key;
        for (char ch : f)
            if (!(ch >= '0' && ch <= '9')) key.push_back(ch);
            else if (key.empty() || key.back() != '#') key.push_back('#');
        auto [it, fresh] = index.emplace(key, kinds.size());
        if (fresh) kinds.push_back({f, 0});
        kinds[it->second].second++;
    }
    std::printf("soak: FAIL (%zu failures, %zu kinds): run directory kept: %s\n", failures.size(), kinds.size(),
                run_dir.c_str());
    for (std::size_t i = 0; i < std::min<std::size_t>(kinds.size(), 20); ++i)
        std::printf("  - %zux %s\n", kinds[i].second, kinds[i].first.c_str());
    return 1;
}

}  // namespace soak
