// The server side: the handler every server instance runs (in the server
// processes, and in the driver's own temporary member), and the server role.
#include "soak.hpp"

#include <memory>
#include <thread>

namespace soak {

ServerOptions soak_server_options() {
    ServerOptions o;
    o.max_instances = unlimited_instances;
    o.default_wait = 200ms;
    return o;
}

// Reads each request whole or in parts, checks it, replies with transform().
// Each connection draws its own generator from a shared seed counter.
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

// Serves until told to stop; a start that keeps failing for 15 s is reported.
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

}  // namespace soak
