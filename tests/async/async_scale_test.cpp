// Scale: one thread with one io_context serves thousands of concurrent
// clients (in a child process: pipeslot-async-clients), every reply checked
// byte for byte, and nothing left open afterwards.
#include "async_support.hpp"

#include <pipeslot/asio/pipe.hpp>
#include <pipeslot/asio/server.hpp>
#include <pipeslot/process.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#ifndef _WIN32
#include <sys/resource.h>
#endif

namespace pipeslot::test {
namespace {

// A connected POSIX server instance holds one descriptor (its socket), a
// client one; 10,000 clients fit a limit of 20,000 (each side its own
// process); 2,000 under the sanitizers. Under Wine (the Win32 path: overlapped
// calls on the completion port) 10,000 as well, in about 23 s on 2 cores.
int client_count() {
    if (const char* set = std::getenv("PIPESLOT_ASYNC_SCALE_CLIENTS")) return std::atoi(set);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 2000;  // the sanitizers' runs look for errors and races, at a tenth of the speed
#endif
#ifndef _WIN32
    rlimit limit{};  // the soft limit up to the hard one
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
#endif
    return 10000;
}

TEST(AsyncScale, OneThreadServesThousandsOfConcurrentClients) {
    PIPESLOT_SKIP_UNDER_FAKE("other processes: its pipes live in this process");
    const int clients = client_count();
    std::printf("%d concurrent clients\n", clients);
    const auto handles_before = settled_handle_count();
    run_coroutine(std::chrono::seconds(240), [clients](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto name = unique_pipe_name("async-scale");
        std::error_code ec;
        auto server = async::AsyncServer::start(ex, name, ServerOptions(), 64, async::AsyncServer::CoroutineHandler(echo),
                                                ec, ipc());
        EXPECT_FALSE(ec) << ec.message();
        auto out = Pipe::create();
        auto command = peer("", {});
        command.program = command.program.substr(0, command.program.rfind("pipeslot-test-peer")) + "pipeslot-async-clients" +
                          (command.program.ends_with(".exe") ? ".exe" : "");
        command.args = {name, std::to_string(clients), "3"};
        command.std_out = Stdio::from(std::move(out.write_end));
        auto process = Process::spawn(std::move(command));
        // The helper's report, read on the same loop as the server.
        async::AsyncReader report(ex, std::move(out.read_end));
        std::string text;
        for (;;) {
            std::byte buffer[256];
            auto [read_ec, n] = co_await report.async_read_some(buffer, no_throw);
            text.append(reinterpret_cast<const char*>(buffer), n);
            if (read_ec) break;
        }
        std::erase(text, '\r');  // Windows' text mode
        std::error_code wait_ec;
        EXPECT_EQ(process.wait(generous, wait_ec), 0) << text;
        EXPECT_EQ(text, "ok " + std::to_string(clients) + "\n");
        server.stop();
    });
    EXPECT_EQ(handle_count_back_to(handles_before), handles_before);
}

}  // namespace
}  // namespace pipeslot::test
