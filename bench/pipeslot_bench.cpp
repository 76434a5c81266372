// pipeslot-bench: pipeslot next to the raw system calls it wraps (and peers
// where installed), in one run, two processes per case, reported as ratios.
//
//   pipeslot-bench [--seconds S] [--pairs N] [--only TEXT] [--side pipeslot|raw] [--csv FILE] [--plot FILE.png]
//   pipeslot-bench --serve KIND ADDRESS INSTANCES        (the child's side)
#include "links.hpp"

#include <pipeslot/pipeslot.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <malloc.h>
#include <map>
#include <filesystem>
#include <thread>
#include <fcntl.h>
#include <unistd.h>

using namespace std::chrono;
using bench::Kind;

namespace {

double seconds_per_run = 1.0;
int pairs = 3;
std::string self;
// --side pipeslot|raw: only that contender of each case runs (the other is
// reported as 0), so a profiler sees one kind's processes alone.
std::string side;

struct Server {
    pipeslot::Process process;
    pipeslot::PipeWriteEnd control;  // closing it stops the server
    pipeslot::PipeReadEnd out, err;
    int data_read = -1, data_write = -1;  // pipe kinds: the client's ends
    std::string address;  // what clients connect to (a remote kind's names the gateway's port)

    ~Server() {
        control.close();
        std::error_code ec;
        if (process.valid() && process.wait(seconds(2), ec) < 0) {
            process.kill(ec);
            process.wait(seconds(5), ec);
        }
    }
};

std::string address_for(Kind k, int n) {
    const auto tag = std::to_string(::getpid()) + "-" + std::to_string(n);
    switch (k) {
    case Kind::channel_pipeslot:
    case Kind::async_pipeslot:
    case Kind::remote_pipeslot:
    case Kind::remote_tls_pipeslot: return R"(\\.\pipe\pipeslot-bench-)" + tag;
    case Kind::slot_pipeslot: return R"(\\.\mailslot\pipeslot-bench\)" + tag;
    case Kind::tcp_raw:
    case Kind::tls_raw: return "0";  // the server listens on a port the system chooses and reports it
    default: return "/tmp/pipeslot-bench-" + tag + ".sock";
    }
}

std::unique_ptr<Server> start_server(Kind k, const std::string& address, int instances) {
    auto s = std::make_unique<Server>();
    s->address = address;
    pipeslot::Command c;
    c.program = self;
    c.args = {"--serve", std::to_string(static_cast<int>(k)), address, std::to_string(instances)};
    auto in = pipeslot::Pipe::create({.buffer_size = 1 << 20});
    auto out = pipeslot::Pipe::create({.buffer_size = 1 << 20});
    auto err = pipeslot::Pipe::create();
    c.std_in = pipeslot::Stdio::from(std::move(in.read_end));
    c.std_out = pipeslot::Stdio::from(std::move(out.write_end));
    c.std_err = pipeslot::Stdio::from(std::move(err.write_end));
    s->process = pipeslot::Process::spawn(std::move(c));
    if (k == Kind::pipe_pipeslot || k == Kind::pipe_raw) {
        s->data_write = static_cast<int>(in.write_end.release());
        s->data_read = static_cast<int>(out.read_end.release());
        if (k == Kind::pipe_raw) {  // pipeslot's own ends are non-blocking; plain read/write wants blocking
            for (int fd : {s->data_write, s->data_read}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        }
        return s;
    }
    s->control = std::move(in.write_end);
    s->out = std::move(out.read_end);
    s->err = std::move(err.read_end);
    // "ready\n", or "ready PORT\n" from a server that listens on a port it chose.
    std::string line;
    while (line.size() < 200 && (line.empty() || line.back() != '\n')) {
        std::byte b[1];
        if (s->err.read(b, seconds(30)) != 1) break;
        line += static_cast<char>(b[0]);
    }
    if (line.rfind("ready", 0) != 0) throw std::runtime_error("the server did not start: " + line);
    if (bench::reports_port(k)) s->address = bench::client_address(k, address, static_cast<unsigned>(std::stoul(line.substr(5))));
    return s;
}

std::unique_ptr<bench::Link> client_of(Kind k, const std::string& address, Server& s) {
    if (k == Kind::pipe_pipeslot || k == Kind::pipe_raw) return bench::connect_link(k, address, s.data_read, s.data_write);
    return bench::connect_link(k, address);
}

// --- measurements ---------------------------------------------------------------

struct Figure {
    double value = 0;  // per second
    double median_us = 0, p99_us = 0;
};

Figure round_trips(bench::Link& link, std::size_t size) {
    std::vector<std::byte> message(size, std::byte{'e'}), buffer(size + 16);
    for (int i = 0; i < 2000; ++i) {
        link.send(message.data(), size);
        link.receive(buffer);
    }
    std::vector<double> latencies;
    const auto start = steady_clock::now();
    const auto end = start + duration<double>(seconds_per_run);
    auto now = start;
    while (now < end) {
        const auto t0 = now;
        link.send(message.data(), size);
        link.receive(buffer);
        now = steady_clock::now();
        latencies.push_back(duration<double, std::micro>(now - t0).count());
    }
    std::sort(latencies.begin(), latencies.end());
    return {latencies.size() / duration<double>(now - start).count(), latencies[latencies.size() / 2],
            latencies[latencies.size() * 99 / 100]};
}

// Sends messages one way for a while; the server answers the end marker.
// `batch` > 1: that many per call (Link::send_batch).
Figure one_way(bench::Link& link, std::size_t size, const std::function<void()>& wait_ack, int batch = 1) {
    std::vector<std::byte> message(size, std::byte{'s'});
    const auto start = steady_clock::now();
    const auto end = start + duration<double>(seconds_per_run);
    long sent = 0;
    while (steady_clock::now() < end) {
        for (int i = 0; i < 256; i += batch) {
            if (batch > 1) link.send_batch(message.data(), size, batch);
            else link.send(message.data(), size);
        }
        sent += 256;
    }
    link.send(nullptr, 0);
    wait_ack();
    return {sent / duration<double>(steady_clock::now() - start).count()};
}

Figure connections(Kind k, const std::string& address) {
    std::vector<std::byte> message(64, std::byte{'e'}), buffer(128);
    const auto start = steady_clock::now();
    const auto end = start + duration<double>(seconds_per_run);
    long count = 0;
    while (steady_clock::now() < end) {
        auto link = bench::connect_link(k, address);
        link->send(message.data(), message.size());
        link->receive(buffer);
        ++count;
    }
    return {count / duration<double>(steady_clock::now() - start).count()};
}

// `connect_first`: the clock starts once every thread has connected (as the
// asynchronous rows' loops, which it is the reference of); else it includes
// the connections.
Figure scaled(Kind k, const std::string& address, int clients, bool connect_first = false) {
    std::atomic<long> total{0};
    std::vector<std::thread> threads;
    auto end = steady_clock::now() + duration<double>(seconds_per_run);
    auto start = steady_clock::now();
    std::barrier connected(clients, [&]() noexcept {
        start = steady_clock::now();
        end = start + duration_cast<steady_clock::duration>(duration<double>(seconds_per_run));
    });
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&] {
            auto link = bench::connect_link(k, address);
            if (connect_first) connected.arrive_and_wait();
            std::vector<std::byte> message(64, std::byte{'e'}), buffer(128);
            long n = 0;
            while (steady_clock::now() < end) {
                link->send(message.data(), message.size());
                link->receive(buffer);
                ++n;
            }
            total += n;
        });
    }
    for (auto& t : threads) t.join();
    return {total / duration<double>(steady_clock::now() - start).count()};
}

#if BENCH_HAVE_ASIO
// The asynchronous rows: `clients` connections on one client loop
// (bench::loop_clients); the synchronous MessageChannel next to them, a
// thread per client (one: round_trips(), as the MessageChannel rows).
Figure looped(Kind k, const std::string& address, int clients) {
    if (k == Kind::channel_pipeslot)
        return clients == 1 ? round_trips(*bench::connect_link(k, address), 64) : scaled(k, address, clients, true);
    auto f = bench::loop_clients(k, address, clients, 64, seconds_per_run);
    if (f.latencies_us.empty() || f.seconds <= 0) throw std::runtime_error(std::string(bench::kind_name(k)) + ": no round trip");
    std::sort(f.latencies_us.begin(), f.latencies_us.end());
    return {f.round_trips / f.seconds, f.latencies_us[f.latencies_us.size() / 2], f.latencies_us[f.latencies_us.size() * 99 / 100]};
}
#endif

// --- cases ---------------------------------------------------------------------------

enum class Metric { rate, median_latency, p99_latency };  // what of a Figure a case reports

struct Case {
    std::string name, unit;
    Kind pipeslot, raw;
    std::vector<Kind> peers;
    double target;  // ratio pipeslot/raw to meet (0: none)
    Metric metric;
    std::function<Figure(Kind, Server&, const std::string&)> run;
};

struct Row {
    std::string name, unit;
    double pipeslot = 0, raw = 0, ratio = 0, target = 0;
    bool lower_is_better = false;
    std::map<std::string, double> peers;  // name -> value (or absent)
};

// A PNG of how many times better or worse than raw each contender is (latency
// ratios inverted, so higher is better everywhere), on a log scale.
void plot(const std::vector<Row>& rows, const std::vector<Kind>& peers, const std::string& path) {
    const auto data = path + ".dat";
    std::ofstream dat(data);
    dat << "case pipeslot";
    for (Kind p : peers) dat << " \"" << bench::kind_name(p) << '"';
    dat << "\n";
    const auto better = [](const Row& r, double ratio) { return r.lower_is_better ? 1 / ratio : ratio; };
    for (const auto& r : rows) {
        dat << '"' << r.name << "\" " << better(r, r.ratio);
        for (Kind p : peers) {
            const auto it = r.peers.find(bench::kind_name(p));
            if (it == r.peers.end() || it->second <= 0) dat << " ?";
            else dat << " " << better(r, it->second / r.raw);
        }
        dat << "\n";
    }
    dat.close();
    const std::string script =
        "set terminal png size 1400,750 noenhanced; set output '" + path +
        "'; set datafile missing '?'; set style data histograms; set style histogram clustered gap 1;"
        " set style fill solid border -1; set logscale y; set yrange [0.02:20]; set grid ytics;"
        " set xtics rotate by 30 right font ',8'; set ylabel 'ratio to raw (higher is better; log scale)';"
        " set title 'pipeslot and its peers next to the raw system calls'; set bmargin 12; set lmargin 14;"
        " plot for [i=2:" + std::to_string(2 + peers.size()) + "] '" + data +
        "' using i:xtic(1) title columnheader, 1 with lines lc 'black' title 'raw'";
    const std::string command = "gnuplot -e \"" + script + "\"";
    if (std::system(command.c_str()) != 0) std::fprintf(stderr, "gnuplot failed or is missing: no plot\n");
}

double metric(const Figure& f, Metric m) {
    return m == Metric::rate ? f.value : m == Metric::median_latency ? f.median_us : f.p99_us;
}

Row run_case(const Case& c, int& serial) {
    Row row;
    row.name = c.name;
    row.unit = c.unit;
    row.target = c.target;
    row.lower_is_better = c.metric != Metric::rate;
    std::vector<double> ratios, ours, theirs;
    std::map<Kind, std::vector<double>> peer_ratios;
    const auto measure = [&](Kind k) {
        const auto address = address_for(k, ++serial);
        auto server = start_server(k, address, 64);
        return metric(c.run(k, *server, server->address), c.metric);
    };
    // Every contender in every pair, next to the same raw run, so the peers'
    // ratios are medians over the pairs as well.
    for (int p = 0; p < pairs; ++p) {
        const double a = side == "raw" ? 0 : measure(c.pipeslot), b = side == "pipeslot" ? 0 : measure(c.raw);
        ours.push_back(a);
        theirs.push_back(b);
        ratios.push_back(a / b);
        for (Kind peer : c.peers)
            if (bench::kind_available(peer) && side.empty()) peer_ratios[peer].push_back(measure(peer) / b);
    }
    const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    row.pipeslot = median(ours);
    row.raw = median(theirs);
    row.ratio = median(ratios);
    for (Kind peer : c.peers)  // kept as a value (ratio x raw) for the table and CSV
        row.peers[bench::kind_name(peer)] = bench::kind_available(peer) && side.empty() ? median(peer_ratios[peer]) * row.raw : -1;
    return row;
}

std::string fmt(double v) {
    char text[32];
    if (v >= 1e6) std::snprintf(text, sizeof text, "%.2fM", v / 1e6);
    else if (v >= 1e3) std::snprintf(text, sizeof text, "%.1fk", v / 1e3);
    else std::snprintf(text, sizeof text, "%.2f", v);
    return text;
}

void memory_and_threads(std::vector<std::string>& notes) {
    // In one process: 1000 instances, 1000 connected clients, one exchange each.
    const auto threads = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
        return n;
    };
    const auto name = address_for(Kind::channel_pipeslot, 9999);
    const auto heap_before = mallinfo2().uordblks;
    const auto threads_before = threads();
    std::vector<pipeslot::PipeInstance> servers;
    std::vector<pipeslot::MessageChannel> clients;
    constexpr int count = 1000;
    for (int i = 0; i < count; ++i) servers.push_back(pipeslot::PipeInstance::create(name));
    std::vector<std::byte> message(64, std::byte{'x'}), buffer(64);
    for (int i = 0; i < count; ++i) {
        clients.push_back(pipeslot::MessageChannel::open(name));
        clients.back().send(message);
    }
    std::error_code ec;
    for (auto& s : servers) {
        s.accept(seconds(5), ec);
        s.receive(buffer, seconds(5), ec);
    }
    const double per_end = (mallinfo2().uordblks - heap_before) / (2.0 * count);
    char text[200];
    std::snprintf(text, sizeof text,
                  "memory: %.0f bytes of heap per connected idle channel end (target <= 16384); "
                  "threads: %zu before, %zu with %d connected channels",
                  per_end, threads_before, threads(), count);
    notes.push_back(text);
}

}  // namespace

int main(int argc, char** argv) {
    // Under valgrind /proc/self/exe is valgrind's: PIPESLOT_BENCH_SELF names the program instead.
    const char* named_self = std::getenv("PIPESLOT_BENCH_SELF");
    self = named_self ? std::string(named_self) : std::filesystem::read_symlink("/proc/self/exe").string();
    if (argc == 5 && std::string(argv[1]) == "--serve") {
        try {
            return bench::serve(static_cast<Kind>(std::atoi(argv[2])), argv[3], std::atoi(argv[4]));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "server: %s\n", e.what());
            return 1;
        }
    }
    std::string csv_path, plot_path, only;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc) seconds_per_run = std::atof(argv[++i]);
        else if (a == "--pairs" && i + 1 < argc) pairs = std::atoi(argv[++i]);
        else if (a == "--csv" && i + 1 < argc) csv_path = argv[++i];
        else if (a == "--plot" && i + 1 < argc) plot_path = argv[++i];
        else if (a == "--only" && i + 1 < argc) only = argv[++i];
        else if (a == "--side" && i + 1 < argc && (std::string(argv[i + 1]) == "pipeslot" || std::string(argv[i + 1]) == "raw"))
            side = argv[++i];
        else {
            std::fprintf(stderr, "usage: pipeslot-bench [--seconds S] [--pairs N] [--only TEXT] [--side pipeslot|raw] [--csv FILE] [--plot FILE.png]\n");
            return 2;
        }
    }
    ::setenv("PIPESLOT_MAILSLOT_NETWORK", "off", 1);  // local datagrams only; and no traffic off the host

    const auto rt = [](std::size_t size) {
        return [size](Kind k, Server& s, const std::string& a) { return round_trips(*client_of(k, a, s), size); };
    };
    const auto stream_one_way = [](std::size_t size, int batch = 1) {
        return [size, batch](Kind k, Server& s, const std::string& a) {
            auto link = client_of(k, a, s);
            std::vector<std::byte> ack(64);
            return one_way(*link, size, [&] { link->receive(ack); }, batch);
        };
    };
    const auto slot_one_way = [](Kind k, Server& s, const std::string& a) {
        auto link = client_of(k, a, s);
        return one_way(*link, 64, [&] {
            std::byte ack[1];
            s.out.read(ack);
        });
    };
    const std::vector<Kind> peers = {Kind::nng_pair, Kind::zmq_pair, Kind::uv_pipe};
    std::vector<Case> cases = {
        {"Pipe 64 B round trip (median latency)", "us", Kind::pipe_pipeslot, Kind::pipe_raw, {}, 0, Metric::median_latency, rt(64)},
        {"Pipe 64 B one way", "msg/s", Kind::pipe_pipeslot, Kind::pipe_raw, {}, 0, Metric::rate, stream_one_way(64)},
        {"Pipe 64 KiB one way", "msg/s", Kind::pipe_pipeslot, Kind::pipe_raw, {}, 0.95, Metric::rate, stream_one_way(65536)},
        {"MessageChannel 64 B round trip (median latency)", "us", Kind::channel_pipeslot, Kind::channel_raw, peers, 1.2,
         Metric::median_latency, rt(64)},
        {"MessageChannel 64 B round trip (p99 latency)", "us", Kind::channel_pipeslot, Kind::channel_raw, peers, 0,
         Metric::p99_latency, rt(64)},
        {"MessageChannel 64 B round trips", "rt/s", Kind::channel_pipeslot, Kind::channel_raw, peers, 0, Metric::rate,
         [](Kind k, Server& s, const std::string& a) {
             auto f = round_trips(*client_of(k, a, s), 64);
             return Figure{f.value};
         }},
        {"MessageChannel 64 B one way", "msg/s", Kind::channel_pipeslot, Kind::channel_raw, peers, 0.8, Metric::rate,
         stream_one_way(64)},
        {"MessageChannel 64 B one way, 64 per call", "msg/s", Kind::channel_pipeslot, Kind::channel_raw, peers, 0, Metric::rate,
         stream_one_way(64, 64)},
        {"MessageChannel 64 KiB one way", "msg/s", Kind::channel_pipeslot, Kind::channel_raw, peers, 0.9, Metric::rate,
         stream_one_way(65536)},
        {"MessageChannel open + exchange + close", "conn/s", Kind::channel_pipeslot, Kind::channel_raw, {}, 0.8, Metric::rate,
         [](Kind k, Server&, const std::string& a) { return connections(k, a); }},
        {"MessageChannel 8 clients round trips", "rt/s", Kind::channel_pipeslot, Kind::channel_raw, {}, 0, Metric::rate,
         [](Kind k, Server&, const std::string& a) { return scaled(k, a, 8); }},
        {"MessageChannel 64 clients round trips", "rt/s", Kind::channel_pipeslot, Kind::channel_raw, {}, 0.95, Metric::rate,
         [](Kind k, Server&, const std::string& a) { return scaled(k, a, 64); }},
        {"Broadcaster 64 B local datagrams", "msg/s", Kind::slot_pipeslot, Kind::slot_raw, {}, 0.85, Metric::rate,
         slot_one_way},
        {"AF_UNIX 64 B round trip, poll() before each read (reference)", "us", Kind::channel_raw_poll,
         Kind::channel_raw, {}, 0, Metric::median_latency, rt(64)},
        {"TCP loopback 64 B round trip, next to AF_UNIX (reference)", "us", Kind::tcp_raw, Kind::channel_raw, {},
         0, Metric::median_latency, rt(64)},
        // Networked pipes: the client opens \\127.0.0.1\pipe\NAME and goes over TCP
        // loopback to the gateway in the server's process (links.cpp says why
        // there), plaintext next to raw TCP, TLS 1.3 (PSK) next to raw TLS 1.3
        // through OpenSSL with the same key, suites and framing. The TLS
        // target "at least 0.8 x raw TLS" is for a rate; for a latency it is
        // the same bound turned over: at most 1 / 0.8 = 1.25 x raw TLS.
        {"Remote plaintext 64 B round trip (median latency)", "us", Kind::remote_pipeslot, Kind::tcp_raw, {}, 1.5,
         Metric::median_latency, rt(64)},
        {"Remote plaintext 64 B one way", "msg/s", Kind::remote_pipeslot, Kind::tcp_raw, {}, 0, Metric::rate,
         stream_one_way(64)},
        {"Remote plaintext 64 KiB one way", "msg/s", Kind::remote_pipeslot, Kind::tcp_raw, {}, 0.8, Metric::rate,
         stream_one_way(65536)},
        {"Remote plaintext open + exchange + close", "conn/s", Kind::remote_pipeslot, Kind::tcp_raw, {}, 0, Metric::rate,
         [](Kind k, Server&, const std::string& a) { return connections(k, a); }},
        {"Remote TLS 64 B round trip (median latency)", "us", Kind::remote_tls_pipeslot, Kind::tls_raw, {}, 1 / 0.8,
         Metric::median_latency, rt(64)},
        {"Remote TLS 64 B one way", "msg/s", Kind::remote_tls_pipeslot, Kind::tls_raw, {}, 0.8, Metric::rate,
         stream_one_way(64)},
        {"Remote TLS 64 KiB one way", "msg/s", Kind::remote_tls_pipeslot, Kind::tls_raw, {}, 0.8, Metric::rate,
         stream_one_way(65536)},
        {"Remote TLS open + handshake + exchange + close", "conn/s", Kind::remote_tls_pipeslot, Kind::tls_raw, {}, 0,
         Metric::rate, [](Kind k, Server&, const std::string& a) { return connections(k, a); }},
        {"Remote reference: raw TLS next to raw TCP, 64 B round trip", "us", Kind::tls_raw, Kind::tcp_raw, {}, 0,
         Metric::median_latency, rt(64)},
    };
#if BENCH_HAVE_ASIO
    // The asynchronous layer (pipeslot/asio/): the server an io_context on one
    // thread (AsyncInstance; a new instance listens as each accepts), the
    // clients AsyncChannels on one io_context on one thread; raw Asio the same
    // over an AF_UNIX stream with the length prefix, libuv its loop on each
    // side (bench/async_links.cpp, uv_link.cpp). Round trip target: <= 1.1 x
    // raw Asio. The last row is 1,000 async clients of one server thread next
    // to the synchronous PipeServer (64 instances, 64 threads) and 64 client
    // threads, both timed from when every client has connected: >= 0.9.
    // Peers: libuv (its loop on each side) and, where its 64-instance server
    // can take every client, the synchronous MessageChannel (a thread each).
    const std::vector<Kind> async_peers = {Kind::uv_pipe, Kind::channel_pipeslot}, many_peers = {Kind::uv_pipe};
    const auto loop_of = [](int clients) {
        return [clients](Kind k, Server&, const std::string& a) { return looped(k, a, clients); };
    };
    const std::vector<Case> async_cases = {
        {"async 64 B round trip, 1 client (median latency)", "us", Kind::async_pipeslot, Kind::asio_raw, async_peers, 1.1,
         Metric::median_latency, loop_of(1)},
        {"async 64 B round trip, 1 client (p99 latency)", "us", Kind::async_pipeslot, Kind::asio_raw, async_peers, 0,
         Metric::p99_latency, loop_of(1)},
        {"async 64 B round trips, 1 client, one server thread", "rt/s", Kind::async_pipeslot, Kind::asio_raw, async_peers, 0,
         Metric::rate, loop_of(1)},
        {"async 64 B round trips, 64 clients, one server thread", "rt/s", Kind::async_pipeslot, Kind::asio_raw, async_peers,
         0, Metric::rate, loop_of(64)},
        {"async 64 B round trips, 1,000 clients, one server thread", "rt/s", Kind::async_pipeslot, Kind::asio_raw,
         many_peers, 0, Metric::rate, loop_of(1000)},
        {"async 1,000 clients 1 thread / sync 64 clients 64 threads", "rt/s", Kind::async_pipeslot,
         Kind::channel_pipeslot, {Kind::asio_raw}, 0.9, Metric::rate,  // raw Asio's 1,000 as a peer: the same bound for it
         [](Kind k, Server&, const std::string& a) {
             return k == Kind::channel_pipeslot ? scaled(k, a, 64, true) : looped(k, a, 1000);
         }},
    };
    cases.insert(cases.end(), async_cases.begin(), async_cases.end());
#endif

    // The key of the TLS kinds, for this process and its servers (the file is
    // named in the environment they inherit).
    const std::string psk_file = bench::make_psk_file();

    std::vector<Row> rows;
    int serial = 0;
    for (const auto& c : cases) {
        if (!only.empty() && c.name.find(only) == std::string::npos) continue;
        std::fprintf(stderr, "running: %s\n", c.name.c_str());
        try {
            rows.push_back(run_case(c, serial));
        } catch (const std::exception& e) {  // a server that did not start, a failed connect
            std::fprintf(stderr, "pipeslot-bench: %s: %s\n", c.name.c_str(), e.what());
            ::unlink(psk_file.c_str());
            return 1;
        }
    }
    std::vector<std::string> notes;
    if (only.empty()) memory_and_threads(notes);

    std::printf("\n%-66s %12s %12s %8s %8s  %s\n", "case", "pipeslot", "raw", "ratio", "target", "peers (ratio to raw)");
    for (const auto& r : rows) {
        std::string peer_text;
        for (const auto& [name, value] : r.peers)
            peer_text += name + ": " + (value < 0 ? std::string("absent") : fmt(r.lower_is_better ? value / r.raw : value / r.raw)) + "  ";
        char target[16] = "-";
        if (r.target > 0) std::snprintf(target, sizeof target, "%s%.2f", r.lower_is_better ? "<=" : ">=", r.target);
        const bool met = r.target == 0 || (r.lower_is_better ? r.ratio <= r.target : r.ratio >= r.target);
        std::printf("%-66s %12s %12s %8.3f %8s%s %s\n", (r.name + " [" + r.unit + "]").c_str(), fmt(r.pipeslot).c_str(),
                    fmt(r.raw).c_str(), r.ratio, target, met ? " " : "!", peer_text.c_str());
    }
    for (const auto& n : notes) std::printf("%s\n", n.c_str());
    std::printf("(%d pairs of %.1f s runs per case; the ratio is the median of pipeslot/raw over the pairs; '!' marks a missed target)\n",
                pairs, seconds_per_run);

    // The CSV's and the plot's peer columns: the peers above, then any other a row has.
    std::vector<Kind> all_peers = peers;
    for (const auto& c : cases)
        for (Kind p : c.peers)
            if (std::find(all_peers.begin(), all_peers.end(), p) == all_peers.end()) all_peers.push_back(p);
    if (!csv_path.empty()) {
        std::ofstream csv(csv_path);
        csv << "case,unit,pipeslot,raw,ratio,target,lower_is_better";
        for (Kind p : all_peers) csv << "," << bench::kind_name(p);
        csv << "\n";
        for (const auto& r : rows) {
            csv << '"' << r.name << "\"," << r.unit << "," << r.pipeslot << "," << r.raw << "," << r.ratio << ","
                << r.target << "," << r.lower_is_better;
            for (Kind p : all_peers) {
                const auto it = r.peers.find(bench::kind_name(p));
                csv << "," << (it == r.peers.end() ? std::string() : it->second < 0 ? "absent" : std::to_string(it->second / r.raw));
            }
            csv << "\n";
        }
    }
    if (!plot_path.empty()) plot(rows, all_peers, plot_path);
    ::unlink(psk_file.c_str());
    return 0;
}
