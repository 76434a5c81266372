// The asynchronous rows: pipeslot's Asio layer (pipeslot/asio/) next to raw
// Asio over an AF_UNIX stream with the 4-byte length prefix of the other raw
// baselines, in the same completion model: coroutines (asio::use_awaitable)
// on one io_context per side, each on one thread. A server serves every
// connection from its one thread; the client side drives all its
// connections from one thread too.
//
// (g++ 12: no `{}` and no defaulted by-value arguments in a coroutine's
// calls; it destroys such temporaries twice. Everything below is named.)
#include "links.hpp"

#include <pipeslot/asio/channel.hpp>
#include <pipeslot/pipeslot.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace bench {
namespace {

namespace net = pipeslot::async::net;
using pipeslot::async::AsyncChannel;
using pipeslot::async::AsyncInstance;
using stream = net::local::stream_protocol;
using Clock = std::chrono::steady_clock;

constexpr auto no_throw = net::experimental::as_tuple(net::use_awaitable);
// As serve_link's buffer (links.cpp): the largest message any case sends.
constexpr std::size_t largest_message = 64 * 1024;

// --- the clients' loop ---------------------------------------------------------------

// What the connections of one loop share: the start line (the clock starts
// when the last connection has connected and warmed up) and the tallies.
class Run {
public:
    Run(const net::any_io_executor& ex, int clients, double seconds)
        : gate_(ex), clients_(clients), seconds_(seconds) {
        gate_.expires_at(Clock::time_point::max());
    }

    // After the warm-up (or a failure): waits for the other connections.
    net::awaitable<void> ready() {
        if (++ready_ == clients_) {
            start = Clock::now();
            end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_));
            gate_.cancel();
            co_return;
        }
        auto [ec] = co_await gate_.async_wait(no_throw);
        (void)ec;  // operation_aborted: the start
    }
    void finished(long round_trips, std::vector<double>& latencies) {
        figures.round_trips += round_trips;
        figures.latencies_us.insert(figures.latencies_us.end(), latencies.begin(), latencies.end());
        if (++finished_ == clients_) figures.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    }
    void failed(const std::string& what) {
        if (error.empty()) error = what;
    }
    bool all_finished() const { return finished_ == clients_; }

    Clock::time_point start, end;
    LoopFigures figures;
    std::string error;

private:
    net::steady_timer gate_;
    int clients_;
    double seconds_;
    int ready_ = 0, finished_ = 0;
};

// One connection's round trips: `exchange()` sends the message and takes its
// echo (false on an error, with `what` set). The first `warmup` are not counted.
template <class Exchange>
net::awaitable<void> round_trips(Run& run, int warmup, Exchange& exchange) {
    std::vector<double> latencies;
    long measured = 0;
    for (int i = 0; i < warmup; ++i) {
        if (!co_await exchange.once()) {
            run.failed(exchange.what);
            co_await run.ready();
            run.finished(0, latencies);
            co_return;
        }
    }
    co_await run.ready();
    if (run.error.empty()) {
        latencies.reserve(4096);
        auto now = Clock::now();
        while (now < run.end) {
            const auto t0 = now;
            if (!co_await exchange.once()) {
                run.failed(exchange.what);
                break;
            }
            now = Clock::now();
            latencies.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
            ++measured;
        }
    }
    run.finished(measured, latencies);
}

// pipeslot: an AsyncChannel on a message pipe; a message is one send, its echo one receive.
struct PipeslotExchange {
    PipeslotExchange(AsyncChannel c, std::size_t size) : channel(std::move(c)), message(size, std::byte{'e'}), buffer(size + 16) {}
    AsyncChannel channel;
    std::vector<std::byte> message, buffer;
    std::string what;

    net::awaitable<bool> once() {
        const std::span<const std::byte> out(message);
        const std::span<std::byte> in(buffer);
        auto [send_ec, sent] = co_await channel.async_send(out, no_throw);
        if (send_ec || sent != message.size()) {
            what = "async_send: " + send_ec.message();
            co_return false;
        }
        auto [receive_ec, got] = co_await channel.async_receive(in, no_throw);
        if (receive_ec || got != message.size()) {
            what = "async_receive: " + receive_ec.message();
            co_return false;
        }
        co_return true;
    }
};

net::awaitable<void> pipeslot_client(Run& run, std::string name, std::size_t size, int warmup) {
    const auto ex = co_await net::this_coro::executor;
    pipeslot::ClientOptions options;
    options.wait = std::chrono::seconds(30);  // the server makes a new instance as each one accepts
    auto [open_ec, channel] = co_await pipeslot::async::async_open(ex, pipeslot::native_ipc(), name, options, no_throw);
    PipeslotExchange exchange(std::move(channel), size);
    if (open_ec) {
        run.failed("async_open " + name + ": " + open_ec.message());
        co_await run.ready();
        std::vector<double> none;
        run.finished(0, none);
        co_return;
    }
    co_await round_trips(run, warmup, exchange);
}

// Raw Asio: the prefix and the message in one gathered async_write, the
// reply's prefix and then its bytes with async_read, as RawStream does.
struct AsioExchange {
    AsioExchange(const net::any_io_executor& ex, std::size_t size) : socket(ex), message(size, std::byte{'e'}), buffer(size + 16) {}
    stream::socket socket;
    std::vector<std::byte> message, buffer;
    std::string what;

    net::awaitable<bool> once() {
        const std::uint32_t length = static_cast<std::uint32_t>(message.size());
        const std::array<net::const_buffer, 2> frame = {net::buffer(&length, sizeof length), net::buffer(message)};
        auto [write_ec, written] = co_await net::async_write(socket, frame, no_throw);
        if (write_ec) {
            what = "async_write: " + write_ec.message();
            co_return false;
        }
        std::uint32_t reply = 0;
        auto [head_ec, head] = co_await net::async_read(socket, net::buffer(&reply, sizeof reply), no_throw);
        if (head_ec || reply > buffer.size()) {
            what = "async_read: " + (head_ec ? head_ec.message() : std::string("a reply too long"));
            co_return false;
        }
        auto [body_ec, body] = co_await net::async_read(socket, net::buffer(buffer.data(), reply), no_throw);
        if (body_ec || reply != message.size()) {
            what = "async_read: " + body_ec.message();
            co_return false;
        }
        (void)written, (void)head, (void)body;
        co_return true;
    }
};

net::awaitable<void> asio_client(Run& run, std::string path, std::size_t size, int warmup) {
    const auto ex = co_await net::this_coro::executor;
    AsioExchange exchange(ex, size);
    const stream::endpoint endpoint(path);
    auto [connect_ec] = co_await exchange.socket.async_connect(endpoint, no_throw);
    if (connect_ec) {
        run.failed("connect " + path + ": " + connect_ec.message());
        co_await run.ready();
        std::vector<double> none;
        run.finished(0, none);
        co_return;
    }
    co_await round_trips(run, warmup, exchange);
}

// --- servers ---------------------------------------------------------------------------

// The rules of serve_link (links.cpp): echo a message starting with 'e',
// "A" for a zero-length one, nothing for the others.

// pipeslot: `ready` instances listen at all times; as one accepts, another is
// made in its place (max_instances unlimited), so any number of clients connect.
class PipeslotServer {
public:
    PipeslotServer(net::io_context& io, std::string name) : io_(io), name_(std::move(name)) {
        // The quotas of start_pipe_server's instances (links.cpp): a socket's buffer.
        options_.in_buffer_size = options_.out_buffer_size = 256 * 1024;
    }
    void listen() {
        std::error_code ec;
        auto instance = pipeslot::PipeInstance::create(name_, options_, ec);
        if (ec) throw std::system_error(ec, "create " + name_);
        net::co_spawn(io_, serve(AsyncInstance(io_.get_executor(), std::move(instance))), net::detached);
    }

private:
    net::awaitable<void> serve(AsyncInstance instance) {
        auto [accept_ec] = co_await instance.async_accept(no_throw);
        try {
            listen();  // another instance takes this one's place
        } catch (const std::exception& e) {
            std::fprintf(stderr, "server: %s\n", e.what());
        }
        if (accept_ec && accept_ec != pipeslot::errc::already_connected) co_return;
        std::vector<std::byte> buffer(largest_message);
        const std::byte ack_byte{'A'};
        const std::span<const std::byte> ack(&ack_byte, 1);
        const std::span<std::byte> in(buffer);
        for (;;) {
            auto [receive_ec, n] = co_await instance.async_receive(in, no_throw);
            if (receive_ec) co_return;  // broken_pipe: the client has gone
            if (n > 0 && buffer[0] != std::byte{'e'}) continue;
            const std::span<const std::byte> reply = n == 0 ? ack : std::span<const std::byte>(buffer.data(), n);
            auto [send_ec, sent] = co_await instance.async_send(reply, no_throw);
            if (send_ec) co_return;
            (void)sent;
        }
    }

    net::io_context& io_;
    std::string name_;
    pipeslot::ServerOptions options_;
};

net::awaitable<void> asio_session(stream::socket socket) {
    std::vector<std::byte> buffer(largest_message);
    const std::byte ack{'A'};
    for (;;) {
        std::uint32_t length = 0;
        auto [head_ec, head] = co_await net::async_read(socket, net::buffer(&length, sizeof length), no_throw);
        if (head_ec || length > buffer.size()) co_return;
        if (length > 0) {
            auto [body_ec, body] = co_await net::async_read(socket, net::buffer(buffer.data(), length), no_throw);
            if (body_ec) co_return;
            if (buffer[0] != std::byte{'e'}) continue;
        }
        const std::uint32_t reply_length = length == 0 ? 1 : length;
        const std::array<net::const_buffer, 2> frame = {net::buffer(&reply_length, sizeof reply_length),
                                                        length == 0 ? net::buffer(&ack, 1) : net::buffer(buffer.data(), length)};
        auto [write_ec, written] = co_await net::async_write(socket, frame, no_throw);
        if (write_ec) co_return;
        (void)head, (void)written;
    }
}

net::awaitable<void> asio_listener(stream::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(no_throw);
        if (ec) co_return;
        net::co_spawn(acceptor.get_executor(), asio_session(std::move(socket)), net::detached);
    }
}

}  // namespace

LoopFigures async_clients(Kind k, const std::string& address, int clients, std::size_t size, double seconds) {
    if (k != Kind::async_pipeslot && k != Kind::asio_raw) throw std::runtime_error("not an asynchronous kind");
    net::io_context io(1);
    Run run(io.get_executor(), clients, seconds);
    // As round_trips() in pipeslot_bench.cpp: 2,000 round trips first, shared out.
    const int warmup = std::max(1, 2000 / clients);
    for (int i = 0; i < clients; ++i) {
        if (k == Kind::async_pipeslot) net::co_spawn(io, pipeslot_client(run, address, size, warmup), net::detached);
        else net::co_spawn(io, asio_client(run, address, size, warmup), net::detached);
    }
    // Bounded: connecting and warming up, the run, and a generous margin.
    io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds + 60)));
    if (!run.all_finished()) throw std::runtime_error(std::string(kind_name(k)) + ": the clients did not finish");
    if (!run.error.empty()) throw std::runtime_error(std::string(kind_name(k)) + ": " + run.error);
    return std::move(run.figures);
}

int serve_async(Kind k, const std::string& address, int instances) {
    net::io_context io(1);
    auto work = net::make_work_guard(io);
    PipeslotServer pipeslot_server(io, address);
    std::optional<stream::acceptor> acceptor;
    if (k == Kind::async_pipeslot) {
        for (int i = 0; i < instances; ++i) pipeslot_server.listen();
    } else if (k == Kind::asio_raw) {
        ::unlink(address.c_str());
        acceptor.emplace(io, stream::endpoint(address));  // listens with the system's largest backlog
        net::co_spawn(io, asio_listener(*acceptor), net::detached);
    } else {
        return 2;
    }
    std::thread server([&io] { io.run(); });  // the one server thread
    std::fprintf(stderr, "ready\n");
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    if (k == Kind::asio_raw) ::unlink(address.c_str());
    ::_exit(0);  // the server's thread is in its loop; the process simply ends
}

}  // namespace bench
