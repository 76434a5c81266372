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
#include <pipeslot/pipeslot.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using namespace pipeslot;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// --- clocks, sizes, hashing ------------------------------------------------------

std::int64_t now_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);  // one clock for every process of the host
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::uint64_t fnv64(const std::byte* p, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= std::to_integer<unsigned>(p[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

void put64(std::byte* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
void put32(std::byte* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
std::uint64_t get64(const std::byte* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
std::uint32_t get32(const std::byte* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

std::size_t count_entries(const char* dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n;
}
std::size_t fd_count() { return count_entries("/proc/self/fd"); }
std::size_t thread_count() { return count_entries("/proc/self/task"); }
// Joined threads leave the kernel's list a moment after join() returns.
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
const char* stage_name(int s) {
    static const char* names[] = {"idle", "open", "server_process_id", "transact", "send", "receive", "close", "serve", "mailslot"};
    return s >= 0 && s < int(std::size(names)) ? names[s] : "?";
}

struct FailRecord {
    std::int64_t when_ns;
    std::int32_t server_pid;  // the channel's server process, -1 if not known
    std::int32_t code;        // pipeslot::errc, or -errno-like for other categories
    std::int32_t stage;
    std::int32_t pad;
};

constexpr int max_threads = 8;
constexpr int max_fail_records = 512;

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

void note(Counters& c, const std::string& text) {
    const auto n = c.v[x_unexpected]++;
    if (c.note_taken.exchange(1) == 0) {
        std::snprintf(c.note, sizeof c.note, "%s", text.c_str());
    }
    if (n < 3) std::fprintf(stderr, "soak[%d]: %s\n", int(::getpid()), text.c_str());
}

int code_of(const std::error_code& ec) {
    return ec.category() == pipeslot::category() ? ec.value() : -1000 - ec.value();
}

void record_fail(Counters& c, std::int64_t server_pid, const std::error_code& ec, Stage stage) {
    c.v[c_failed]++;
    const auto i = c.fail_count.fetch_add(1);
    if (i < max_fail_records) c.fails[i] = {now_ns(), std::int32_t(server_pid), code_of(ec), stage, 0};
}

// Errors a channel may report because its peer went away (killed, stopped):
// anything else from an exchange is a bug of the library or of the soak.
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

// A copy, read without mapping (the driver keeps no mapping or descriptor per child).
bool read_counters(const std::string& path, Counters& out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const auto n = ::pread(fd, &out, sizeof out, 0);
    ::close(fd);
    return n == ssize_t(sizeof out);
}

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

// --- the messages ------------------------------------------------------------------

constexpr std::uint32_t request_magic = 0x4b414f53;   // "SOAK"
constexpr std::uint32_t mailslot_magic = 0x544c534d;  // "MSLT"
constexpr std::size_t request_header = 40;
constexpr std::size_t mailslot_header = 32;
constexpr std::size_t mailslot_max = 8192;
constexpr auto op_timeout = 15s;

using Rng = std::mt19937_64;
std::size_t pick(Rng& rng, std::size_t lo, std::size_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

std::size_t random_payload_size(Rng& rng, bool& large) {
    const auto r = pick(rng, 0, 99);
    large = r >= 60;
    if (r < 60) return pick(rng, 0, 512);
    if (r < 85) return pick(rng, 513, 16 << 10);
    if (r < 97) return pick(rng, (16 << 10) + 1, 64 << 10);
    return pick(rng, (64 << 10) + 1, 256 << 10);
}

void fill_random(Rng& rng, std::byte* p, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 8) {
        const auto v = rng();
        std::memcpy(p + i, &v, std::min<std::size_t>(8, n - i));
    }
}

// Request: header (magic, payload length, tag, seq, payload hash, header hash) + payload; or empty.
std::vector<std::byte> make_request(Rng& rng, std::uint64_t tag, std::uint64_t seq, bool& large, std::size_t max_payload = ~std::size_t{0}) {
    large = false;
    if (pick(rng, 0, 99) < 3) return {};
    const auto n = std::min(random_payload_size(rng, large), max_payload);
    std::vector<std::byte> m(request_header + n);
    fill_random(rng, m.data() + request_header, n);
    put32(m.data(), request_magic);
    put32(m.data() + 4, std::uint32_t(n));
    put64(m.data() + 8, tag);
    put64(m.data() + 16, seq);
    put64(m.data() + 24, fnv64(m.data() + request_header, n));
    put64(m.data() + 32, fnv64(m.data(), 32));
    return m;
}

bool request_is_good(std::span<const std::byte> m) {
    if (m.empty()) return true;
    if (m.size() < request_header || get32(m.data()) != request_magic) return false;
    const auto n = get32(m.data() + 4);
    return m.size() == request_header + n && get64(m.data() + 32) == fnv64(m.data(), 32) &&
           get64(m.data() + 24) == fnv64(m.data() + request_header, n);
}

// The reply: the request's hash, then the request reversed.
std::vector<std::byte> transform(std::span<const std::byte> request) {
    std::vector<std::byte> r(8 + request.size());
    put64(r.data(), fnv64(request.data(), request.size()));
    std::reverse_copy(request.begin(), request.end(), r.begin() + 8);
    return r;
}

// --- the server side (server processes, and the driver's temporary member) ---------

ServerOptions soak_server_options() {
    ServerOptions o;
    o.max_instances = unlimited_instances;
    o.default_wait = 200ms;
    return o;
}

PipeServer::ConnectionHandler server_handler(Counters& c, std::uint64_t seed) {
    auto next_seed = std::make_shared<std::atomic<std::uint64_t>>(seed);
    return [&c, next_seed](PipeInstance& client) {
        Rng rng(next_seed->fetch_add(0x9e3779b97f4a7c15ULL));
        c.v[s_connections]++;
        std::vector<std::byte> buffer, request;
        for (;;) {
            std::error_code ec;
            request.clear();
            if (pick(rng, 0, 1) == 0) {
                request = client.receive_message(Timeout::forever(), ec);
            } else {  // in parts, more_data after each but the last
                buffer.resize(pick(rng, 1, 64 << 10));
                for (;;) {
                    const auto n = client.receive(buffer, Timeout::forever(), ec);
                    request.insert(request.end(), buffer.begin(), buffer.begin() + std::ptrdiff_t(n));
                    if (ec != errc::more_data) break;
                    c.v[s_more_data]++;
                }
            }
            if (ec) {
                if (!peer_may_cause(ec) && ec != errc::cancelled)
                    note(c, "server receive: unexpected " + ec.message());
                return;
            }
            c.v[s_requests]++;
            if (!request_is_good(request)) {
                c.v[s_bad_requests]++;
                note(c, "server: a corrupt request of " + std::to_string(request.size()) + " bytes");
            }
            const auto reply = transform(request);
            client.send(reply, op_timeout, ec);
            if (ec) {
                if (!peer_may_cause(ec) && ec != errc::cancelled) note(c, "server send: unexpected " + ec.message());
                return;
            }
            c.v[s_replies]++;
        }
    };
}

// --- the client side ------------------------------------------------------------------

struct ClientCtx {
    Counters& c;
    int slot;
    Rng rng;
    std::uint64_t tag;
    std::uint64_t seq = 0;
};

bool check_reply(ClientCtx& x, const std::vector<std::byte>& got, const std::vector<std::byte>& expected,
                 std::int64_t spid) {
    // completed = verified + corrupt: one increment, so a SIGKILL cannot split the two.
    x.c.v[c_bytes_in] += got.size();
    if (got == expected) {
        x.c.v[c_verified]++;
        return true;
    }
    x.c.v[c_corrupt]++;
    note(x.c, "corrupt reply from server " + std::to_string(spid) + ": " + std::to_string(got.size()) +
                  " bytes, expected " + std::to_string(expected.size()));
    return false;
}

// Receives the rest of a message after more_data, in parts of random size.
bool receive_rest(ClientCtx& x, MessageChannel& ch, std::vector<std::byte>& got, std::size_t expected_size,
                  std::error_code& ec) {
    std::vector<std::byte> part;
    while (ec == errc::more_data) {
        const auto left = expected_size > got.size() ? expected_size - got.size() : 1;
        part.resize(pick(x.rng, std::max<std::size_t>(1, left / 8), left + 16));
        Busy b(x.c, x.slot, st_receive);
        const auto n = ch.receive(part, op_timeout, ec);
        got.insert(got.end(), part.begin(), part.begin() + std::ptrdiff_t(n));
        if (ec == errc::more_data) x.c.v[c_more_data]++;
    }
    return !ec;
}

// One exchange (or two, pipelined). False: the channel is done with (an
// error, recorded, or an exchange abandoned on purpose).
bool exchange(ClientCtx& x, MessageChannel& ch, std::int64_t spid) {
    auto& c = x.c;
    std::error_code ec;
    const auto fail = [&](Stage st) {
        if (!peer_may_cause(ec)) note(c, std::string("client ") + stage_name(st) + ": unexpected " + ec.message());
        record_fail(c, spid, ec, st);
        return false;
    };
    bool large = false;
    const auto mode = pick(x.rng, 0, 99);
    if (mode >= 92) {  // two small requests in one call, then both replies
        std::array<std::vector<std::byte>, 2> req;
        for (auto& r : req) r = make_request(x.rng, x.tag, ++x.seq, large, 4096);
        const std::array<std::span<const std::byte>, 2> spans{req[0], req[1]};
        c.v[c_exchanges] += 2;
        c.v[c_bytes_out] += req[0].size() + req[1].size();
        {
            Busy b(c, x.slot, st_send);
            const auto sent = ch.send_messages(spans, op_timeout, ec);
            if (ec || sent != 2) return fail(st_send);
        }
        for (auto& r : req) {
            std::vector<std::byte> got;
            {
                Busy b(c, x.slot, st_receive);
                got = ch.receive_message(op_timeout, ec);
            }
            if (ec) return fail(st_receive);
            check_reply(x, got, transform(r), spid);
        }
        return true;
    }
    const auto request = make_request(x.rng, x.tag, ++x.seq, large);
    const auto expected = transform(request);
    c.v[c_exchanges]++;
    c.v[c_bytes_out] += request.size();
    if (large) c.v[c_large]++;
    std::vector<std::byte> got;
    if (mode < 45) {  // transact, into a buffer too small about half the time
        const auto cap = pick(x.rng, 0, 1) ? expected.size() + pick(x.rng, 0, 64)
                                           : pick(x.rng, 1, std::max<std::size_t>(1, expected.size() - 1));
        got.resize(cap);
        std::size_t n = 0;
        {
            Busy b(c, x.slot, st_transact);
            n = ch.transact(request, got, op_timeout, ec);
        }
        if (ec && ec != errc::more_data) return fail(st_transact);
        if (ec) c.v[c_more_data]++;
        got.resize(n);
        if (!receive_rest(x, ch, got, expected.size(), ec)) return fail(st_receive);
    } else {
        {
            Busy b(c, x.slot, st_send);
            ch.send(request, op_timeout, ec);
        }
        if (ec) return fail(st_send);
        if (mode >= 88) {  // gone before the reply (or part way through it)
            c.v[c_abandoned]++;
            if (pick(x.rng, 0, 1)) {
                std::vector<std::byte> part(pick(x.rng, 1, expected.size()));
                Busy b(c, x.slot, st_receive);
                ch.receive(part, op_timeout, ec);
                if (ec && ec != errc::more_data) return fail(st_receive);
            }
            return false;
        }
        if (mode < 65) {
            Busy b(c, x.slot, st_receive);
            got = ch.receive_message(op_timeout, ec);
            if (ec) return fail(st_receive);
        } else {
            ec = errc::more_data;
            if (!receive_rest(x, ch, got, expected.size(), ec)) return fail(st_receive);
        }
    }
    check_reply(x, got, expected, spid);
    return true;
}

// Open, a few exchanges, close. Returns after a bounded time whatever happens.
void one_connection(ClientCtx& x, const std::string& pipe) {
    auto& c = x.c;
    ClientOptions options;
    options.wait = 5s;
    std::error_code ec;
    MessageChannel ch;
    {
        Busy b(c, x.slot, st_open);
        ch = MessageChannel::open(pipe, options, ec);
    }
    if (ec) {
        if (ec == errc::not_found) c.v[c_open_not_found]++;
        else if (ec == errc::pipe_busy) c.v[c_open_busy]++;
        else if (ec == errc::timed_out) c.v[c_open_timed_out]++;
        else {
            c.v[c_open_other]++;
            if (ec != errc::resource_exhausted) note(c, "open: unexpected " + ec.message());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(pick(x.rng, 5, 50)));
        return;
    }
    c.v[c_opens]++;
    std::int64_t spid = -1;
    {
        Busy b(c, x.slot, st_pid);
        spid = ch.server_process_id(ec);
    }
    if (ec) {
        spid = -1;
        record_fail(c, -1, ec, st_pid);
        if (!peer_may_cause(ec)) note(c, "server_process_id: unexpected " + ec.message());
    } else {
        const auto exchanges = pick(x.rng, 1, 8);
        for (std::size_t i = 0; i < exchanges; ++i)
            if (!exchange(x, ch, spid)) break;
    }
    Busy b(c, x.slot, st_close);
    ch.close();
    c.v[c_connections_closed]++;
}

// --- the mailslot side ------------------------------------------------------------------

std::vector<std::byte> make_mailslot_message(Rng& rng, std::uint64_t writer, std::uint64_t seq, std::size_t payload) {
    std::vector<std::byte> m(mailslot_header + payload);
    fill_random(rng, m.data() + mailslot_header, payload);
    put32(m.data(), mailslot_magic);
    put32(m.data() + 4, std::uint32_t(payload));
    put64(m.data() + 8, writer);
    put64(m.data() + 16, seq);
    put64(m.data() + 24, fnv64(m.data() + mailslot_header, payload));
    return m;
}

bool mailslot_message_is_good(std::span<const std::byte> m) {
    if (m.size() < mailslot_header || get32(m.data()) != mailslot_magic) return false;
    const auto n = get32(m.data() + 4);
    return m.size() == mailslot_header + n && get64(m.data() + 24) == fnv64(m.data() + mailslot_header, n);
}

// --- the children's common frame --------------------------------------------------------

struct ChildArgs {
    std::string role, pipe, result, mailslots;  // mailslots: names separated by '|'
    int id = 0;
    pid_t parent = 0;
    std::uint64_t seed = 1;
    int threads = 3;
    int lifetime_ms = 5000;
};

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

// Blocks SIGTERM/SIGINT in every thread (before any is started); the main
// thread takes them with sigtimedwait.
void block_stop_signals(sigset_t& set) {
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

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

int run_server(const ChildArgs& a, Counters& c) {
    sigset_t set;
    block_stop_signals(set);
    c.v[x_fd_before] = fd_count();
    c.v[x_threads_before] = thread_count();
    PipeServer server;
    std::error_code ec;
    const auto give_up = now_ns() + 15'000'000'000LL;
    for (;;) {
        {
            Busy b(c, 0, st_serve);
            server = PipeServer::start(a.pipe, soak_server_options(), std::size_t(a.threads),
                                       server_handler(c, a.seed), ec);
        }
        if (!ec) break;
        c.v[s_start_retries]++;
        if (now_ns() > give_up) {
            note(c, "server: PipeServer::start kept failing: " + ec.message());
            return 2;
        }
        std::this_thread::sleep_for(50ms);
    }
    c.state = 1;
    wait_for_stop(set, a.parent, [] { return false; });
    {
        Busy b(c, 0, st_serve);
        server.stop();
    }
    c.v[x_fd_after] = fd_count();
    c.v[x_threads_after] = thread_count_back_to(c.v[x_threads_before]);
    c.state = 2;
    return 0;
}

int run_client(const ChildArgs& a, Counters& c) {
    sigset_t set;
    block_stop_signals(set);
    c.v[x_fd_before] = fd_count();
    c.v[x_threads_before] = thread_count();
    const auto end = now_ns() + std::int64_t(a.lifetime_ms) * 1'000'000;
    std::atomic<int> finished{0};
    std::vector<std::thread> threads;
    const int n = std::clamp(a.threads, 1, max_threads);
    for (int t = 0; t < n; ++t) {
        threads.emplace_back([&, t] {
            ClientCtx x{c, t, Rng(a.seed * 131 + std::uint64_t(t)), (std::uint64_t(a.id) << 32) | std::uint64_t(t)};
            while (!g_stop && now_ns() < end) {
                one_connection(x, a.pipe);
                std::this_thread::sleep_for(std::chrono::microseconds(pick(x.rng, 0, 3000)));
            }
            finished++;
        });
    }
    c.state = 1;
    wait_for_stop(set, a.parent, [&] { return finished == n; });
    for (auto& t : threads) t.join();
    c.v[x_fd_after] = fd_count();
    c.v[x_threads_after] = thread_count_back_to(c.v[x_threads_before]);
    c.state = 2;
    return 0;
}

int run_reader(const ChildArgs& a, Counters& c) {
    sigset_t set;
    block_stop_signals(set);
    c.v[x_fd_before] = fd_count();
    c.v[x_threads_before] = thread_count();
    std::atomic<int> result{-1};
    std::thread worker([&] {
        MailslotOptions options;
        options.max_message_size = mailslot_max;
        options.read_timeout = 200ms;
        std::error_code ec;
        Mailslot slot;
        const auto give_up = now_ns() + 10'000'000'000LL;
        for (;;) {
            {
                Busy b(c, 0, st_mailslot);
                slot = Mailslot::create(a.mailslots, options, ec);
            }
            if (!ec) break;
            c.v[m_create_retries]++;
            if (now_ns() > give_up || g_stop) {
                note(c, "reader: Mailslot::create kept failing: " + ec.message());
                result = 2;
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        c.v[m_creates]++;
        c.state = 1;
        std::map<std::uint64_t, std::uint64_t> last_seq;
        std::vector<std::byte> buffer(mailslot_max);
        bool draining = false;
        for (;;) {
            if (g_stop && !draining) {  // take what is queued, then stop
                draining = true;
                slot.set_read_timeout(Timeout::none(), ec);
            }
            std::size_t n = 0;
            {
                Busy b(c, 0, st_mailslot);
                n = slot.receive(buffer, ec);
            }
            if (ec == errc::timed_out) {
                if (draining) break;
                continue;
            }
            if (ec) {
                note(c, "reader: receive: " + ec.message());
                break;
            }
            const std::span<const std::byte> m(buffer.data(), n);
            if (!mailslot_message_is_good(m)) {
                c.v[m_bad]++;
                note(c, "reader: a corrupt message of " + std::to_string(n) + " bytes");
                continue;
            }
            const auto writer = get64(m.data() + 8), seq = get64(m.data() + 16);
            auto& last = last_seq[writer];
            if (seq <= last) {
                c.v[m_order]++;
                note(c, "reader: writer " + std::to_string(writer) + " message " + std::to_string(seq) + " after " +
                            std::to_string(last));
            }
            last = seq;
            if (writer == 0) c.v[m_final]++;
            else c.v[m_received]++;
        }
        slot.close();
        result = 0;
    });
    wait_for_stop(set, a.parent, [&] { return result >= 0; });
    worker.join();
    c.v[x_fd_after] = fd_count();
    c.v[x_threads_after] = thread_count_back_to(c.v[x_threads_before]);
    if (result != 0) return result;
    c.state = 2;
    return 0;
}

int run_writer(const ChildArgs& a, Counters& c) {
    sigset_t set;
    block_stop_signals(set);
    c.v[x_fd_before] = fd_count();
    c.v[x_threads_before] = thread_count();
    const auto names = split(a.mailslots, '|');
    std::atomic<bool> finished{false};
    std::thread worker([&] {
        Rng rng(a.seed);
        std::uint64_t seq = 0;
        const std::uint64_t writer = std::uint64_t(a.id);
        c.state = 1;
        while (!g_stop) {
            const auto& name = names[pick(rng, 0, names.size() - 1)];
            std::error_code ec;
            Broadcaster out;
            {
                Busy b(c, 0, st_mailslot);
                out = Broadcaster::open(name, ec);
            }
            if (ec) {
                if (ec == errc::not_found) c.v[m_not_found]++;
                else note(c, "writer: open: " + ec.message());
                std::this_thread::sleep_for(20ms);
                continue;
            }
            const auto count = pick(rng, 1, 20);
            for (std::size_t i = 0; i < count && !g_stop; ++i) {
                const bool too_large = pick(rng, 0, 99) < 3;
                const auto payload = too_large ? pick(rng, mailslot_max - mailslot_header + 1, mailslot_max + 512)
                                               : pick(rng, 0, 99) < 80 ? pick(rng, 0, 256)
                                                                       : pick(rng, 257, mailslot_max - mailslot_header);
                const auto m = make_mailslot_message(rng, writer, seq + 1, payload);
                {
                    Busy b(c, 0, st_mailslot);
                    out.send(m, 2s, ec);
                }
                if (too_large) {
                    if (ec == errc::message_too_large) c.v[m_too_large_ok]++;
                    else if (ec == errc::not_found) c.v[m_not_found]++;
                    else if (!ec) {
                        // A reader created after the open may publish its size late; count, then check below.
                        ++seq;
                        c.v[m_sent]++;
                        note(c, "writer: a message over the reader's maximum was accepted");
                    } else {
                        c.v[m_send_errors]++;
                    }
                    continue;
                }
                if (!ec) {
                    ++seq;
                    c.v[m_sent]++;
                } else if (ec == errc::not_found) {
                    c.v[m_not_found]++;
                    break;
                } else if (ec == errc::timed_out) {
                    // Its reader keeps receiving: a 2 s wait means the queue
                    // held far fewer than max_queued_messages.
                    c.v[m_send_errors]++;
                    note(c, "writer: a send to a reader that keeps receiving timed out after 2 s");
                    break;
                } else {
                    c.v[m_send_errors]++;
                    note(c, "writer: send (" + std::to_string(i + 1) + " of " + std::to_string(count) +
                                " on this Broadcaster, its reader possibly killed since the open): " + ec.message());
                    break;
                }
                if (pick(rng, 0, 3) == 0) std::this_thread::sleep_for(std::chrono::microseconds(pick(rng, 0, 2000)));
            }
            out.close();
            std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng, 1, 10)));
        }
        finished = true;
    });
    wait_for_stop(set, a.parent, [&] { return finished.load(); });
    worker.join();
    c.v[x_fd_after] = fd_count();
    c.v[x_threads_after] = thread_count_back_to(c.v[x_threads_before]);
    c.state = 2;
    return 0;
}

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

// --- the driver -----------------------------------------------------------------------------

struct Options {
    double minutes = 2;
    std::uint64_t seed = 0;
    int servers = 3, server_instances = 6;
    int clients = 6, client_threads = 3;
    int readers = 2, writers = 2;
    bool keep = false;
};

enum class Role { server, client, reader, writer };
const char* role_name(Role r) {
    switch (r) {
    case Role::server: return "server";
    case Role::client: return "client";
    case Role::reader: return "reader";
    case Role::writer: return "writer";
    }
    return "?";
}

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

    void fail(const std::string& s) {
        failures.push_back(s);
        std::fprintf(stderr, "soak: FAILURE: %s\n", s.c_str());
    }

    static int slot_key(Role r, int slot) { return int(r) * 1000 + slot; }

    bool spawn(Role role, int slot) {
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
        pid_t pid = 0;
        const int rc = ::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ);
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

    std::vector<std::size_t> live_of(Role r) {
        std::vector<std::size_t> out;
        for (auto& [key, i] : live)
            if (children[i].role == r && !children[i].hung) out.push_back(i);
        return out;
    }

    void kill_child(std::size_t i) {
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

    // Collects exited children; an exit nobody asked for is a failure.
    void reap() {
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

    void check_exit(const Child& ch) {
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
    void check_hangs() {
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
    std::string evidence(pid_t pid) {
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

    // The driver's own work, on a thread of its own (joined before the
    // counts after): client channels to the soak's pipe, now and then an
    // instance of its own on that name for a while, and a mailslot.
    void own_work(std::atomic<bool>& stop, std::mutex& m, std::uint64_t seed) {
        ClientCtx x{own, 0, Rng(seed), 0xd0d0d0d0ULL << 32};
        PipeServer member;
        std::int64_t member_until = 0, next_member = now_ns() + 2'000'000'000LL, next_mailslot = now_ns() + 1'000'000'000LL;
        std::uint64_t mseq = 0;
        while (!stop) {
            one_connection(x, pipe);
            const auto now = now_ns();
            if (member.running() && now > member_until) {
                const auto from = now_ns();
                {
                    Busy b(own, 1, st_serve);
                    member.stop();
                }
                std::lock_guard lock(m);
                member_stops.push_back({from, now_ns()});
                next_member = now_ns() + std::int64_t(pick(x.rng, 2000, 6000)) * 1'000'000;
            } else if (!member.running() && now > next_member) {
                std::error_code ec;
                {
                    Busy b(own, 1, st_serve);
                    member = PipeServer::start(pipe, soak_server_options(), 2, server_handler(own, x.rng()), ec);
                }
                if (ec) {
                    own.v[s_start_retries]++;
                    if (ec != errc::timed_out && ec != errc::resource_exhausted)
                        note(own, "driver: PipeServer::start: " + ec.message());
                    next_member = now + 1'000'000'000LL;
                } else {
                    member_until = now_ns() + std::int64_t(pick(x.rng, 1000, 4000)) * 1'000'000;
                }
            }
            if (now > next_mailslot) {
                next_mailslot = now + 1'500'000'000LL;
                own_mailslot(x, ++mseq);
            }
        }
        if (member.running()) {
            const auto from = now_ns();
            member.stop();
            std::lock_guard lock(m);
            member_stops.push_back({from, now_ns()});
        }
    }

    void own_mailslot(ClientCtx& x, std::uint64_t round) {
        const auto name = mailslots[0] + "-driver";
        MailslotOptions options;
        options.max_message_size = mailslot_max;
        options.read_timeout = 2s;
        std::error_code ec;
        Busy b(own, 0, st_mailslot);
        auto slot = Mailslot::create(name, options, ec);
        if (ec) {
            note(own, "driver: Mailslot::create: " + ec.message());
            return;
        }
        own.v[m_creates]++;
        auto out = Broadcaster::open(name, ec);
        if (ec) {
            note(own, "driver: Broadcaster::open: " + ec.message());
            return;
        }
        const auto n = pick(x.rng, 1, 30);
        std::vector<std::vector<std::byte>> sent;
        for (std::size_t i = 0; i < n; ++i) {
            sent.push_back(make_mailslot_message(x.rng, 1'000'000 + round, i + 1, pick(x.rng, 0, 2000)));
            out.send(sent.back(), 2s, ec);
            if (ec) {
                note(own, "driver: mailslot send " + std::to_string(i + 1) + " of " + std::to_string(n) + " with " +
                              std::to_string(i) + " messages unread (the reader holds up to " +
                              std::to_string(default_mailslot_queue_messages) + ", net.unix.max_dgram_qlen is " +
                              dgram_qlen() + "): " + ec.message());
                sent.pop_back();
                break;
            }
            own.v[m_sent]++;
        }
        out.close();
        for (auto& m : sent) {
            auto got = slot.receive_message(ec);
            if (ec) {
                note(own, "driver: mailslot receive: " + ec.message());
                return;
            }
            if (got != m) {
                own.v[m_bad]++;
                note(own, "driver: a mailslot message differs");
            }
            own.v[m_received]++;
        }
        slot.close();
    }

    std::size_t files_left(const std::string& dir, std::vector<std::string>& names) {
        std::size_t n = 0;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->is_directory(ec)) continue;
            ++n;
            names.push_back(it->path().string());
        }
        return n;
    }

    // Sends SIGTERM to every live child of `role`, waits (bounded) for them all.
    void stop_role(Role role, std::int64_t bound_ns) {
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

    void kill_hung() {
        for (auto& ch : children)
            if (!ch.reaped && ch.hung) {
                ::kill(ch.pid, SIGKILL);
                int st;
                ::waitpid(ch.pid, &st, 0);
                ch.reaped = true;
            }
        live.clear();
    }

    bool explained(const FailRecord& f) {
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

    int run();
};

std::string errc_name(int code) {
    if (code >= 1 && code <= int(errc::bad_pipe)) return make_error_code(errc(code)).message();
    return "other(" + std::to_string(code) + ")";
}

int Driver::run() {
    const auto t0 = now_ns();
    if (!opt.seed) opt.seed = std::random_device{}() ^ std::uint64_t(t0);
    rng.seed(opt.seed);
    char tmpl[] = "/tmp/pipeslot-soak-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 1;
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
    char hex[32];
    std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(rng() & 0xffffffffULL));
    const std::string prefix = "pipeslot-soak-" + std::to_string(me) + "-" + hex;
    pipe = R"(\\.\pipe\)" + prefix;
    for (int i = 0; i < opt.readers; ++i) mailslots.push_back(R"(\\.\mailslot\)" + prefix + "-" + std::to_string(i));
    std::signal(SIGPIPE, SIG_IGN);
    std::printf("soak: %.1f min, seed %llu, pipe %s, run directory %s\n", opt.minutes,
                static_cast<unsigned long long>(opt.seed), pipe.c_str(), run_dir.c_str());
    std::fflush(stdout);

    // Counted before any work: what the driver holds must be the same after.
    const auto fd_before = fd_count();
    const auto threads_before = thread_count();

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

    const auto chaos_end = t0 + std::int64_t(opt.minutes * 60e9);
    std::map<int, std::int64_t> respawn_at;  // slot key -> when
    std::int64_t next_hang_check = 0, next_progress = t0 + 10'000'000'000LL, last_progress_ns = now_ns();
    std::uint64_t last_completed = 0;
    bool saw_socket = false;
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
    reap();
    stop_role(Role::client, 40'000'000'000LL);
    stop_role(Role::writer, 20'000'000'000LL);
    // Every reader up, then the final messages, which each must get whole.
    for (int s = 0; s < opt.readers; ++s)
        if (!live.count(slot_key(Role::reader, s))) spawn(Role::reader, s);
    const std::size_t final_count = 50;
    std::atomic<std::uint64_t> final_sent{0};
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
    std::vector<std::size_t> final_readers = live_of(Role::reader);
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

    const auto fd_after = fd_count();
    const auto threads_after = thread_count_back_to(threads_before);

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
