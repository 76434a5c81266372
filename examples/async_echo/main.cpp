// The README's asynchronous server and client, on one thread: an echo server
// kept ready with 8 listening instances, a coroutine per connection, and
// clients that open it (waiting for a free instance) and transact.
//   pipeslot-async-echo [CLIENTS]   prints each reply; exits 0 if all came back
#include <pipeslot/asio/server.hpp>
#include <pipeslot/pipeslot.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace async = pipeslot::async;
using asio::experimental::as_tuple;

// --- the server: one coroutine per connection -------------------------------------
asio::awaitable<void> echo(async::AsyncInstance& client) {
    for (;;) {
        auto [ec, request] = co_await client.async_receive_message(as_tuple(asio::use_awaitable));
        if (ec) co_return;  // broken_pipe: the client has gone
        co_await client.async_send(request, asio::use_awaitable);
    }
}

// --- a client: open (waiting for a free instance), then transact ------------------
asio::awaitable<std::string> ask(asio::any_io_executor ex, std::string name, std::string question) {
    pipeslot::ClientOptions options;
    options.wait = std::chrono::seconds(5);
    auto channel = co_await async::async_open(ex, pipeslot::native_ipc(), name, options, asio::use_awaitable);
    std::vector<std::byte> request(question.size());
    std::memcpy(request.data(), question.data(), question.size());
    std::byte reply[256];
    const auto n = co_await channel.async_transact(request, reply, asio::use_awaitable);
    co_return std::string(reinterpret_cast<const char*>(reply), n);
}

int main(int argc, char** argv) {
    const int clients = argc > 1 ? std::atoi(argv[1]) : 3;
    const std::string name = R"(\\.\pipe\pipeslot-async-echo-)" + std::to_string(std::rand()) + "-" +
                             std::to_string(static_cast<long long>(std::chrono::steady_clock::now().time_since_epoch().count()));
    asio::io_context io;
    std::error_code ec;
    auto server = async::AsyncServer::start(io.get_executor(), name, pipeslot::ServerOptions{}, 8,
                                            async::AsyncServer::CoroutineHandler(echo), ec);
    if (ec) {
        std::fprintf(stderr, "pipeslot-async-echo: %s\n", ec.message().c_str());
        return 1;
    }
    int answered = 0;
    for (int i = 0; i < clients; ++i) {
        asio::co_spawn(io, ask(io.get_executor(), name, "hello " + std::to_string(i)),
                       [&, i](std::exception_ptr failure, std::string reply) {
                           if (failure) return;
                           std::printf("client %d: %s\n", i, reply.c_str());
                           if (reply == "hello " + std::to_string(i) && ++answered == clients) server.stop();
                       });
    }
    io.run_for(std::chrono::seconds(60));
    return answered == clients ? 0 : 1;
}
