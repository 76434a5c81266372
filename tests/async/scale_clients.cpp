// pipeslot-async-clients NAME COUNT ROUNDS: COUNT clients of the pipe NAME on
// one thread and one io_context. All open first (waiting for free
// instances), so that COUNT are connected at once; then each does ROUNDS
// transacts of "client I round R" and checks that the reply is "echo:" and
// the request, byte for byte. Prints "ok COUNT" and exits 0, or prints the
// first failure and exits 1.
#include <pipeslot/asio/channel.hpp>
#include <pipeslot/pipeslot.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace pipeslot;
constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);

struct Run {
    std::string name;
    int count = 0, rounds = 0, opened = 0, finished = 0, good = 0;
    std::string first_failure;
    std::unique_ptr<asio::steady_timer> all_open, all_done;
    void fail(const std::string& what) {
        if (first_failure.empty()) first_failure = what;
    }
};

asio::awaitable<void> client(asio::any_io_executor ex, Run* run, int id) {
    ClientOptions patient;
    patient.wait = std::chrono::seconds(120);
    auto [open_ec, channel] = co_await async::async_open(ex, native_ipc(), run->name, patient, no_throw);
    if (open_ec) run->fail("client " + std::to_string(id) + " open: " + open_ec.message());
    if (++run->opened == run->count) run->all_open->cancel();
    else co_await run->all_open->async_wait(no_throw);  // until every client is connected
    bool ok = !open_ec;
    for (int r = 0; ok && r < run->rounds; ++r) {
        const auto request = "client " + std::to_string(id) + " round " + std::to_string(r);
        const auto expected = "echo:" + request;
        std::vector<std::byte> bytes(request.size());
        std::memcpy(bytes.data(), request.data(), request.size());
        std::byte reply[128];
        auto [ec, n] = co_await channel.async_transact(bytes, reply, no_throw);
        if (ec || n != expected.size() || std::memcmp(reply, expected.data(), n) != 0) {
            run->fail("client " + std::to_string(id) + " round " + std::to_string(r) + ": " +
                      (ec ? ec.message() : "reply " + std::string(reinterpret_cast<const char*>(reply), n)));
            ok = false;
        }
    }
    if (ok) ++run->good;
    if (++run->finished == run->count) run->all_done->cancel();
}

asio::awaitable<void> all_clients(asio::any_io_executor ex, Run* run) {
    for (int i = 0; i < run->count; ++i) asio::co_spawn(ex, client(ex, run, i), asio::detached);
    co_await run->all_done->async_wait(no_throw);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: pipeslot-async-clients NAME COUNT ROUNDS\n");
        return 2;
    }
    asio::io_context io;
    Run run;
    run.name = argv[1];
    run.count = std::atoi(argv[2]);
    run.rounds = std::atoi(argv[3]);
    run.all_open = std::make_unique<asio::steady_timer>(io, std::chrono::hours(1));
    run.all_done = std::make_unique<asio::steady_timer>(io, std::chrono::hours(1));
    bool finished = false;
    asio::co_spawn(io, all_clients(io.get_executor(), &run), [&](std::exception_ptr) { finished = true; });
    io.run_for(std::chrono::seconds(240));
    if (!finished) run.fail("not finished within 240 s: " + std::to_string(run.finished) + " of " + std::to_string(run.count));
    if (!run.first_failure.empty() || run.good != run.count) {
        std::printf("failed %d of %d: %s\n", run.count - run.good, run.count, run.first_failure.c_str());
        return 1;
    }
    std::printf("ok %d\n", run.count);
    return 0;
}
