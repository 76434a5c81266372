// What every role shares: the clock, the /proc counts, the counters file and
// the children's frame. See soak.hpp.
#include "soak.hpp"

#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <sys/mman.h>
#include <thread>

namespace soak {

std::int64_t now_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);  // one clock for every process of the host
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static std::size_t count_entries(const char* dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n;
}
std::size_t fd_count() { return count_entries("/proc/self/fd"); }
std::size_t thread_count() { return count_entries("/proc/self/task"); }
std::size_t thread_count_back_to(std::size_t expected) {
    const auto give_up = std::chrono::steady_clock::now() + 3s;
    auto n = thread_count();
    while (n > expected && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(5ms);
        n = thread_count();
    }
    return n;
}

std::string dgram_qlen() {
    std::ifstream in("/proc/sys/net/unix/max_dgram_qlen");
    std::string v;
    std::getline(in, v);
    return v.empty() ? "?" : v;
}

// --- the shared counters --------------------------------------------------------

const char* stage_name(int s) {
    static const char* names[] = {"idle", "open", "server_process_id", "transact", "send", "receive", "close", "serve", "mailslot"};
    return s >= 0 && s < int(std::size(names)) ? names[s] : "?";
}

void note(Counters& c, const std::string& text) {
    const auto n = c.v[x_unexpected]++;
    if (c.note_taken.exchange(1) == 0) {
        std::snprintf(c.note, sizeof c.note, "%s", text.c_str());
    }
    if (n < 3) std::fprintf(stderr, "soak[%d]: %s\n", int(::getpid()), text.c_str());
}

static int code_of(const std::error_code& ec) {
    return ec.category() == pipeslot::category() ? ec.value() : -1000 - ec.value();
}

void record_fail(Counters& c, std::int64_t server_pid, const std::error_code& ec, Stage stage) {
    c.v[c_failed]++;
    const auto i = c.fail_count.fetch_add(1);
    if (i < max_fail_records) c.fails[i] = {now_ns(), std::int32_t(server_pid), code_of(ec), stage, 0};
}

bool peer_may_cause(const std::error_code& ec) {
    return ec == errc::broken_pipe || ec == errc::pipe_closing || ec == errc::not_connected ||
           ec == errc::end_of_stream || ec == errc::no_data || ec == errc::timed_out;
}

Counters* map_counters(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return nullptr;
    void* p = ::mmap(nullptr, sizeof(Counters), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    return p == MAP_FAILED ? nullptr : static_cast<Counters*>(p);
}

bool make_counter_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    const bool ok = ::ftruncate(fd, sizeof(Counters)) == 0;
    ::close(fd);
    return ok;
}

// Read without mapping: the driver keeps no mapping or descriptor per child.
bool read_counters(const std::string& path, Counters& out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const auto n = ::pread(fd, &out, sizeof out, 0);
    ::close(fd);
    return n == ssize_t(sizeof out);
}

// --- the children's common frame --------------------------------------------------------

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : s) {
        if (ch == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(ch);
        }
    }
    out.push_back(cur);
    return out;
}

std::atomic<bool> g_stop{false};

void block_stop_signals(sigset_t& set) {
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace soak
