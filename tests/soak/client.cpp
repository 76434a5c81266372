// The client side: one connection and its exchanges (in the client
// processes, and on the driver's own thread), and the client role.
#include "soak.hpp"

#include <algorithm>
#include <array>
#include <thread>

namespace soak {

static bool check_reply(ClientCtx& x, const std::vector<std::byte>& got, const std::vector<std::byte>& expected,
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
static bool receive_rest(ClientCtx& x, MessageChannel& ch, std::vector<std::byte>& got, std::size_t expected_size,
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
static bool exchange(ClientCtx& x, MessageChannel& ch, std::int64_t spid) {
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

// Threads connecting again and again until the lifetime the driver gave is
// over or a stop comes; the tag (id, thread) marks each thread's requests.
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

}  // namespace soak
