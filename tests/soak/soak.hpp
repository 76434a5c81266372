// The soak (scripts/soak --minutes N): several server processes serving one
// pipe name, many client processes exchanging random messages with them,
// mailslot writers and readers alongside, with clients, servers, readers and
// writers SIGKILLed at random and started again. At the end every completed
// exchange has been checked byte for byte, every wait was bounded, and no
// descriptor, thread or runtime file is left over.
//
// One program in several roles: `pipeslot-soak [--minutes N] ...` is the
// driver; it runs itself again as `pipeslot-soak --role ROLE ...` for the
// servers, clients, mailslot readers and writers. Each child keeps its counts
// in a file the driver made and the child maps shared, so the counts of a
// SIGKILLed child survive it.
//
// The files: this header (what every role shares: the counters file, the
// message formats, the children's frame), common.cpp and messages.cpp (their
// definitions), server.cpp, client.cpp and mailslot.cpp (the roles; the
// driver uses the server and client side too, in process), driver.hpp,
// driver.cpp, driver_own.cpp and driver_end.cpp (the driver), main.cpp (argv).
#pragma once

#include <pipeslot/pipeslot.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <random>
#include <signal.h>
#include <span>
#include <string>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <vector>

// The soak is one program: its files share the library's names unqualified.
namespace soak {

using namespace pipeslot;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// --- clocks, /proc counts ---------------------------------------------------------

std::int64_t now_ns();  // CLOCK_MONOTONIC: one clock for every process of the host

std::size_t fd_count();
std::size_t thread_count();
// Joined threads leave the kernel's list a moment after join() returns.
std::size_t thread_count_back_to(std::size_t expected);

std::string dgram_qlen();  // net.unix.max_dgram_qlen, for the messages that depend on it

// --- the shared counters --------------------------------------------------------

enum Counter : int {
    // clients (and the driver's own channels)
    c_opens, c_open_not_found, c_open_busy, c_open_timed_out, c_open_other,
    c_exchanges, c_completed, c_verified, c_corrupt, c_more_data, c_large, c_abandoned, c_failed,
    c_bytes_out, c_bytes_in, c_connections_closed,
    // servers
    s_connections, s_requests, s_replies, s_bad_requests, s_more_data, s_start_retries,
    // mailslots
    m_sent, m_not_found, m_too_large_ok, m_send_errors, m_received, m_bad, m_order, m_final, m_creates,
    m_create_retries,
    // any role
    x_unexpected, x_fd_before, x_fd_after, x_threads_before, x_threads_after,
    counter_count
};

enum Stage : std::int32_t { st_idle, st_open, st_pid, st_transact, st_send, st_receive, st_close, st_serve, st_mailslot };
const char* stage_name(int s);

struct FailRecord {
    std::int64_t when_ns;
    std::int32_t server_pid;  // the channel's server process, -1 if not known
    std::int32_t code;        // pipeslot::errc, or -errno-like for other categories
    std::int32_t stage;
    std::int32_t pad;
};

constexpr int max_threads = 8;
constexpr int max_fail_records = 512;

// The layout of a child's counters file, mapped shared by the child and read
// with pread by the driver: plain atomics only, nothing that points.
struct Counters {
    std::atomic<std::uint64_t> v[counter_count];
    std::atomic<std::int64_t> busy_since[max_threads];  // 0: idle
    std::atomic<std::int32_t> busy_stage[max_threads];
    std::atomic<std::uint32_t> fail_count;
    FailRecord fails[max_fail_records];
    std::atomic<std::uint32_t> note_taken;
    char note[512];
    std::atomic<std::int32_t> state;  // 0 starting, 1 ready, 2 finished cleanly
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free);

// Something that should not happen: counted, the first kept for the driver, the first few printed.
void note(Counters& c, const std::string& text);
// A failed exchange, kept so the driver can tell whether its server was killed or stopping.
void record_fail(Counters& c, std::int64_t server_pid, const std::error_code& ec, Stage stage);

// Errors a channel may report because its peer went away (killed, stopped):
// anything else from an exchange is a bug of the library or of the soak.
bool peer_may_cause(const std::error_code& ec);

bool make_counter_file(const std::string& path);       // the driver, before the spawn
Counters* map_counters(const std::string& path);       // the child, for its whole life
bool read_counters(const std::string& path, Counters& out);  // the driver: a copy, no mapping kept

struct Busy {  // marks a thread's blocking call, for the driver's hang check
    Counters& c;
    int slot;
    Busy(Counters& c, int slot, Stage s) : c(c), slot(slot) {
        c.busy_stage[slot] = s;
        c.busy_since[slot] = now_ns();
    }
    ~Busy() {
        c.busy_since[slot] = 0;
        c.busy_stage[slot] = st_idle;
    }
};

// --- the messages (messages.cpp) -------------------------------------------------

constexpr std::size_t mailslot_header = 32;
constexpr std::size_t mailslot_max = 8192;
constexpr auto op_timeout = 15s;

using Rng = std::mt19937_64;
std::size_t pick(Rng& rng, std::size_t lo, std::size_t hi);  // [lo, hi]

std::uint64_t get64(const std::byte* p);

// Request: header (magic, payload length, tag, seq, payload hash, header hash) + payload; or empty.
std::vector<std::byte> make_request(Rng& rng, std::uint64_t tag, std::uint64_t seq, bool& large,
                                    std::size_t max_payload = ~std::size_t{0});
bool request_is_good(std::span<const std::byte> m);
// The reply: the request's hash, then the request reversed.
std::vector<std::byte> transform(std::span<const std::byte> request);

// Mailslot message: header (magic, payload length, writer, seq, payload hash) + payload.
std::vector<std::byte> make_mailslot_message(Rng& rng, std::uint64_t writer, std::uint64_t seq, std::size_t payload);
bool mailslot_message_is_good(std::span<const std::byte> m);

// --- the server and client side (server.cpp, client.cpp), also used by the driver ---

ServerOptions soak_server_options();
PipeServer::ConnectionHandler server_handler(Counters& c, std::uint64_t seed);

struct ClientCtx {
    Counters& c;
    int slot;  // its Busy slot
    Rng rng;
    std::uint64_t tag;
    std::uint64_t seq = 0;
};

// Open, a few exchanges, close. Returns after a bounded time whatever happens.
void one_connection(ClientCtx& x, const std::string& pipe);

// --- the children's common frame (common.cpp) ---------------------------------------

struct ChildArgs {
    std::string role, pipe, result, mailslots;  // mailslots: names separated by '|'
    int id = 0;
    pid_t parent = 0;
    std::uint64_t seed = 1;
    int threads = 3;
    int lifetime_ms = 5000;
};

std::vector<std::string> split(const std::string& s, char sep);

// Set when a child is to stop; its worker threads look at it between calls.
extern std::atomic<bool> g_stop;

// Blocks SIGTERM/SIGINT in every thread (before any is started); the main
// thread takes them with sigtimedwait.
void block_stop_signals(sigset_t& set);

// Waits for a stop signal, the parent's end, or `done()`, until `deadline_ns` (0: none).
template <class Done>
void wait_for_stop(const sigset_t& set, pid_t parent, Done done, std::int64_t deadline_ns = 0) {
    for (;;) {
        timespec t{0, 100 * 1000 * 1000};
        const int s = ::sigtimedwait(&set, nullptr, &t);
        if (s == SIGTERM || s == SIGINT) break;
        if (::getppid() != parent) break;
        if (done()) break;
        if (deadline_ns && now_ns() > deadline_ns) break;
    }
    g_stop = true;
}

int run_server(const ChildArgs& a, Counters& c);
int run_client(const ChildArgs& a, Counters& c);
int run_reader(const ChildArgs& a, Counters& c);
int run_writer(const ChildArgs& a, Counters& c);

}  // namespace soak
