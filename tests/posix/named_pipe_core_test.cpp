// The POSIX named-pipe core under load, crashes, faults and hostile peers
// (backends/posix/name_node.hpp): an instance is never lost or stuck, the
// instance count stays exact, and no process can harm another's instances.
#include "../support/support.hpp"
#include "posix/runtime_dir.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <poll.h>
#include <set>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::generous;

// Which sanitizer this build runs under (gcc defines the macros, clang has __has_feature).
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
constexpr bool address_sanitized = true;
#else
constexpr bool address_sanitized = false;
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = address_sanitized;
#endif

PipeServer::RequestHandler echo() {
    return PipeServer::RequestHandler([](std::span<const std::byte> request) {
        auto reply = test::bytes_of("echo:");
        reply.insert(reply.end(), request.begin(), request.end());
        return reply;
    });
}

PipeServer start_echo(const std::string& name, std::size_t instances, ServerOptions options = {}) {
    std::error_code ec;
    auto server = PipeServer::start(name, options, instances, echo(), ec);
    EXPECT_FALSE(ec) << ec.message();
    return server;
}

// open (waiting), transact, close; empty on success, else what went wrong.
std::string exchange_once(const std::string& name, const std::string& request, Timeout wait = generous,
                          std::int64_t* server_pid = nullptr) {
    ClientOptions options;
    options.wait = wait;
    std::error_code ec;
    auto channel = MessageChannel::open(name, options, ec);
    if (ec) return "open: " + ec.message();
    std::vector<std::byte> reply(request.size() + 16);
    const auto n = channel.transact(test::as_bytes(request), reply, generous, ec);
    if (ec) return "transact: " + ec.message();
    if (test::text_of(std::span(reply).first(n)) != "echo:" + request) return "wrong reply";
    if (server_pid) *server_pid = channel.server_process_id(ec);
    return {};
}

// Every instance of a max-`count` name serves a client again (once its server
// has seen its last client go, which it does in its own time) and there are no more.
void expect_all_free(const std::string& name, std::size_t count) {
    std::vector<MessageChannel> clients;
    ClientOptions wait;
    wait.wait = generous;  // an instance lost for good fails here
    for (std::size_t i = 0; i < count; ++i) {
        std::error_code ec;
        clients.push_back(MessageChannel::open(name, wait, ec));
        ASSERT_FALSE(ec) << "instance " << i << " does not come free: " << ec.message();
    }
    std::error_code ec;
    MessageChannel::open(name, {}, ec);
    EXPECT_EQ(ec, errc::pipe_busy) << "and there are no more than " << count;
    for (auto& c : clients) {
        std::vector<std::byte> reply(32);
        EXPECT_EQ(test::text_of(std::span(reply).first(c.transact(test::as_bytes("x"), reply, generous, ec))),
                  "echo:x");
        EXPECT_FALSE(ec) << ec.message();
    }
}

// --- load -------------------------------------------------------------------------------

TEST(NamedPipeCore, UnderLoadNoInstanceIsLostAndAllServeAfterwards) {
    const auto name = test::unique_pipe_name("load-32");
    const auto handles_before = test::open_handle_count();
    const auto threads_before = test::settled_thread_count();
    const auto names_before = test::thread_names();
    {
        ServerOptions four;
        four.max_instances = 4;
        auto server = start_echo(name, 4, four);
        std::atomic<long> done{0}, failed{0};
        const auto until = std::chrono::steady_clock::now() + (sanitized ? 2s : 4s);
        std::vector<std::thread> threads;
        for (int t = 0; t < 32; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < 100000 && std::chrono::steady_clock::now() < until; ++i) {
                    const auto why = exchange_once(name, std::to_string(t) + "/" + std::to_string(i));
                    if (why.empty()) ++done;
                    else if (++failed < 5) ADD_FAILURE() << why;
                }
            });
        }
        for (auto& t : threads) t.join();
        EXPECT_EQ(failed, 0);
        EXPECT_GT(done, 100);
        std::printf("32 threads: %ld open/transact/close\n", done.load());
        expect_all_free(name, 4);
    }
    EXPECT_EQ(test::open_handle_count(), handles_before) << "no descriptor left behind";
    EXPECT_EQ(test::thread_count_back_to(threads_before), threads_before) << "no thread left behind; before: " << names_before << "; after: " << test::thread_names();
}

TEST(NamedPipeCore, TwoHundredClientsEachConnectTwoHundredTimes) {
    const auto name = test::unique_pipe_name("load-200");
    const int per_client = sanitized ? 25 : 200;
    auto server = start_echo(name, 8);
    std::atomic<long> done{0}, failed{0};
    std::vector<std::thread> threads;
    const auto started = std::chrono::steady_clock::now();
    for (int t = 0; t < 200; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_client; ++i) {
                const auto why = exchange_once(name, "client " + std::to_string(t) + " call " + std::to_string(i));
                if (why.empty()) ++done;
                else if (++failed < 5) ADD_FAILURE() << why;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(done, 200L * per_client) << "every exchange byte-exact";
    EXPECT_LT(std::chrono::steady_clock::now() - started, 240s);
    std::printf("200 x %d open/transact/close in %.1f s\n", per_client,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

TEST(NamedPipeCore, ThreeServerProcessesShareOneName) {
    const auto name = test::unique_pipe_name("three-servers");
    std::vector<test::Helper> servers;
    std::set<std::int64_t> pids;
    for (int i = 0; i < 3; ++i) {
        servers.push_back(test::start_helper(test::peer("echo-server", {name, "2"})));
        ASSERT_EQ(servers.back().line(), "ready");
        pids.insert(servers.back().process.id());
    }
    std::atomic<long> done{0}, failed{0};
    std::mutex mutex;
    std::set<std::int64_t> served_by;
    std::vector<std::thread> threads;
    for (int t = 0; t < 48; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < (sanitized ? 10 : 40); ++i) {
                std::int64_t pid = -1;
                const auto why = exchange_once(name, std::to_string(t) + ":" + std::to_string(i), generous, &pid);
                if (!why.empty()) {
                    if (++failed < 5) ADD_FAILURE() << why;
                    continue;
                }
                ++done;
                std::lock_guard lock(mutex);
                served_by.insert(pid);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(served_by, pids) << "every server process served clients";
    for (auto& s : servers) {
        s.in.close();
        EXPECT_EQ(s.process.wait(), 0);
    }
    std::error_code ec;
    MessageChannel::open(name, {}, ec);
    EXPECT_EQ(ec, errc::not_found) << "the name went with its last server";
}

// --- crashes: a process SIGKILLed at each step of connecting ----------------------------------

// Starts the peer so that it stops itself at `step`, waits until it has, and kills it there.
void kill_at(const std::string& step, const std::string& mode, std::vector<std::string> args) {
    args.insert(args.begin(), mode);
    auto helper = test::start_helper(test::peer("env", [&] {
        std::vector<std::string> a{"PIPESLOT_TEST_STOP_AT=" + step};
        a.insert(a.end(), args.begin(), args.end());
        return a;
    }()));
    ASSERT_EQ(helper.line(), "pipeslot-stopped-at " + step) << "the peer never reached " << step;
    std::error_code ec;
    helper.process.kill(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(helper.process.wait(), 128 + SIGKILL);
}

class ClientKilledAt : public ::testing::TestWithParam<const char*> {};

TEST_P(ClientKilledAt, TheInstancesRecover) {
    const auto name = test::unique_pipe_name(std::string("client-killed-") + GetParam());
    ServerOptions two;
    two.max_instances = 2;
    auto server = start_echo(name, 2, two);
    kill_at(GetParam(), "open-hold", {name});
    // The instance the dead client may have had is disconnected by the server and listens again.
    auto first = std::async(std::launch::async, [&] { return exchange_once(name, "a"); });
    auto second = std::async(std::launch::async, [&] { return exchange_once(name, "b"); });
    EXPECT_EQ(first.get(), "");
    EXPECT_EQ(second.get(), "");
    std::error_code ec;
    PipeInstance::create(name, two, ec);
    EXPECT_EQ(ec, errc::too_many_instances) << "the count is exact";
}

INSTANTIATE_TEST_SUITE_P(EveryStep, ClientKilledAt,
                         ::testing::Values("client-connected", "client-sent-open", "client-answered"));

class BrokerKilledAt : public ::testing::TestWithParam<const char*> {};

// The first server process of a name dies while becoming its broker: the next one takes the name.
TEST_P(BrokerKilledAt, TheNextServerTakesTheName) {
    const auto name = test::unique_pipe_name(std::string("broker-killed-") + GetParam());
    kill_at(GetParam(), "serve-and-hang", {name});
    const auto started = std::chrono::steady_clock::now();
    auto server = start_echo(name, 2);
    EXPECT_EQ(exchange_once(name, "after"), "");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, BrokerKilledAt, ::testing::Values("create-joined", "broker-locked"));

class MemberKilledAt : public ::testing::TestWithParam<const char*> {};

// A second server process of the name dies while joining, adding its instance,
// or taking a client: the broker drops what it had, and the count stays exact.
TEST_P(MemberKilledAt, TheNameRecovers) {
    const std::string step = GetParam();
    const auto name = test::unique_pipe_name("member-killed-" + step);
    ServerOptions two;
    two.max_instances = 2;
    auto server = start_echo(name, 1, two);
    // This process's instance is taken, so that a new client goes to the other process's.
    ClientOptions options;
    options.wait = generous;
    std::optional<MessageChannel> holder = test::open_channel(name, options);
    std::future<std::string> client;
    if (step == "member-got-client") {
        auto helper = test::start_helper(test::peer("env", {"PIPESLOT_TEST_STOP_AT=" + step, "serve-and-hang", name}));
        // The helper says "ready" once its instance is added, then stops when a client is handed to it.
        ASSERT_EQ(helper.line(), "ready");
        client = std::async(std::launch::async, [&] { return exchange_once(name, "rescued"); });
        ASSERT_EQ(helper.line(), "pipeslot-stopped-at " + step);
        std::error_code ec;
        helper.process.kill(ec);
        EXPECT_EQ(helper.process.wait(), 128 + SIGKILL);
    } else {
        kill_at(step, "serve-and-hang", {name});
    }
    if (client.valid()) {
        holder.reset();  // this process's instance is free again: the rescued client gets it
        EXPECT_EQ(client.get(), "") << "the client whose instance died was served by another";
    }
    // The dead process's instance is gone: one more can be made, and not two.
    auto second = test::create_instance(name, two);
    std::error_code ec;
    PipeInstance::create(name, two, ec);
    EXPECT_EQ(ec, errc::too_many_instances) << "the count is exact";
}

INSTANTIATE_TEST_SUITE_P(EveryStep, MemberKilledAt,
                         ::testing::Values("create-joined", "member-connected", "member-adding", "member-got-client"));

// The broker's process dies while another process serves instances of the name.
TEST(NamedPipeCore, AnotherServerProcessTakesOverFromADeadBroker) {
    const auto name = test::unique_pipe_name("takeover");
    auto broker = test::start_helper(test::peer("echo-server", {name, "1"}));
    ASSERT_EQ(broker.line(), "ready");
    auto here = start_echo(name, 2);
    std::error_code ec;
    broker.process.kill(ec);
    EXPECT_EQ(broker.process.wait(), 128 + SIGKILL);
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        std::int64_t pid = -1;
        EXPECT_EQ(exchange_once(name, "still here " + std::to_string(i), generous, &pid), "");
        EXPECT_EQ(pid, ::getpid());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    expect_all_free(name, 2);
}

// A new broker hears from every other server process before it adds an instance:
// creates racing with a change of broker never exceed the maximum.
TEST(NamedPipeCore, TheCountStaysExactWhileTheBrokerChanges) {
    for (int round = 0; round < 5; ++round) {
        const auto name = test::unique_pipe_name("exact-takeover-" + std::to_string(round));
        ServerOptions three;
        three.max_instances = 3;
        auto broker = test::start_helper(test::peer("echo-server", {name, "1", "max=3"}));
        ASSERT_EQ(broker.line(), "ready");
        auto member = test::start_helper(test::peer("echo-server", {name, "1", "max=3"}));
        ASSERT_EQ(member.line(), "ready");
        std::error_code ec;
        broker.process.kill(ec);
        broker.process.wait();
        std::vector<PipeInstance> mine;
        int refused = 0;
        for (int i = 0; i < 3; ++i) {
            auto instance = PipeInstance::create(name, three, ec);
            if (ec == errc::too_many_instances) ++refused;
            else if (!ec) mine.push_back(std::move(instance));
            else ADD_FAILURE() << ec.message();
        }
        EXPECT_EQ(mine.size(), 2u) << "round " << round << ": the other process's instance counts";
        EXPECT_EQ(refused, 1);
        member.in.close();
        EXPECT_EQ(member.process.wait(), 0);
    }
}

// --- faults ---------------------------------------------------------------------------------

int exit_of(Command command) { return Process::spawn(std::move(command)).wait(); }
constexpr int exit_resource_exhausted = 10 + static_cast<int>(errc::resource_exhausted);

std::vector<std::string> files_of(const std::string& name) {
    std::string runtime;
    EXPECT_FALSE(posix::runtime_directory(posix::Scope::private_to_user, runtime));
    const auto key = posix::name_key(PipeName::parse(name));
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(runtime))
        if (e.path().filename().string().rfind(key, 0) == 0) found.push_back(e.path().filename());
    return found;
}

// Runs the peer's MODE on NAME under each descriptor limit from `low` to `high`;
// every run must succeed or fail with resource_exhausted (127: too few to even start).
// Calls after(limit) after each; returns the exit codes seen.
// The ASan+UBSan build's own checks need descriptors at any moment (UBSan's
// vptr check tests memory through a pipe), so a child out of them fails there.
#define SKIP_IF_SANITIZERS_NEED_DESCRIPTORS()                                                                \
    if (address_sanitized)                                                                                  \
    GTEST_SKIP() << "under ASan+UBSan the sanitizers' own checks need descriptors (UBSan opens a pipe to "  \
                    "test memory); the native and ThreadSanitizer suites run this"

template <class After>
std::set<int> under_descriptor_limits(const std::string& mode, const std::string& name, int low, int high, After after) {
    std::set<int> results;
    for (int limit = low; limit <= high; ++limit) {
        auto c = test::peer("rlimit", {"nofile", std::to_string(limit), mode, name});
        c.std_err = Stdio::null();
        const int status = exit_of(std::move(c));
        results.insert(status);
        EXPECT_TRUE(status == 0 || status == exit_resource_exhausted || status == 127) << "limit " << limit << ": " << status;
        after(limit);
    }
    EXPECT_TRUE(results.count(exit_resource_exhausted)) << "some limit was too low";
    EXPECT_TRUE(results.count(0)) << "and some was enough";
    return results;
}

TEST(NamedPipeCore, OutOfDescriptorsACreateFailsCleanlyAndLeavesNothing) {
    SKIP_IF_SANITIZERS_NEED_DESCRIPTORS();
    const auto name = test::unique_pipe_name("nofile-create");
    under_descriptor_limits("create-result", name, 4, 24, [&](int limit) {
        EXPECT_EQ(files_of(name), std::vector<std::string>{}) << "limit " << limit;
    });
}

TEST(NamedPipeCore, OutOfDescriptorsAClientIsToldSoNotThatThePipeIsMissing) {
    SKIP_IF_SANITIZERS_NEED_DESCRIPTORS();
    const auto name = test::unique_pipe_name("nofile-open");
    auto server = start_echo(name, 2);
    under_descriptor_limits("open-result", name, 4, 16, [](int) {});
    EXPECT_EQ(exchange_once(name, "unharmed"), "");
}

TEST(NamedPipeCore, ABrokerOutOfDescriptorsRefusesClearly) {
    SKIP_IF_SANITIZERS_NEED_DESCRIPTORS();
    const auto name = test::unique_pipe_name("nofile-broker");
    auto broker = test::start_helper(test::peer("rlimit", {"nofile", "40", "echo-server", name, "1"}));
    ASSERT_EQ(broker.line(), "ready");
    std::vector<std::future<std::error_code>> clients;
    std::vector<MessageChannel> held(80);
    std::mutex mutex;
    for (int i = 0; i < 80; ++i) {
        clients.push_back(std::async(std::launch::async, [&, i] {
            ClientOptions wait;
            wait.wait = 3s;
            std::error_code ec;
            auto c = MessageChannel::open(name, wait, ec);
            std::lock_guard lock(mutex);
            held[i] = std::move(c);
            return ec;
        }));
    }
    std::map<std::string, int> outcomes;
    for (auto& c : clients) {
        const auto ec = c.get();
        EXPECT_TRUE(!ec || ec == errc::pipe_busy || ec == errc::resource_exhausted) << ec.message();
        ++outcomes[ec ? ec.message() : "connected"];
    }
    for (const auto& [what, count] : outcomes) std::printf("%3d: %s\n", count, what.c_str());
    EXPECT_GE(outcomes["connected"], 1);
    EXPECT_GE(outcomes[make_error_code(errc::resource_exhausted).message()], 1);
    held.clear();
    // Once the descriptors of the clients gone are closed, which the broker
    // does in its own time (a refusal meanwhile is right: it is still out of them).
    std::string afterwards;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        afterwards = exchange_once(name, "afterwards");
        if (afterwards != "open: " + make_error_code(errc::resource_exhausted).message() ||
            std::chrono::steady_clock::now() >= give_up)
            break;
        std::this_thread::sleep_for(10ms);  // a retry, not a wait for an event: none tells when they are closed
    }
    EXPECT_EQ(afterwards, "") << "the broker serves on";
    broker.in.close();
    EXPECT_EQ(broker.process.wait(), 0);
}

TEST(NamedPipeCore, AFileSizeLimitDoesNotStopAServer) {
    const auto name = test::unique_pipe_name("fsize");
    auto server = test::start_helper(test::peer("rlimit", {"fsize", "0", "echo-server", name, "1"}));
    ASSERT_EQ(server.line(), "ready");
    EXPECT_EQ(exchange_once(name, "fine"), "");
    server.in.close();
    EXPECT_EQ(server.process.wait(), 0);
}

TEST(NamedPipeCore, ACrashedLastServerLeavesNothingThatMisleads) {
    const auto name = test::unique_pipe_name("crashed-last");
    auto dead = test::start_helper(test::peer("serve-and-hang", {name}));
    ASSERT_EQ(dead.line(), "ready");
    std::error_code ec;
    dead.process.kill(ec);
    dead.process.wait();
    EXPECT_FALSE(files_of(name).empty()) << "a SIGKILLed broker leaves its socket and lock files";
    const auto started = std::chrono::steady_clock::now();
    MessageChannel::open(name, {}, ec);
    EXPECT_EQ(ec, errc::not_found) << "no live server: not found, at once";
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
    {
        auto server = start_echo(name, 1);  // takes the name over
        EXPECT_EQ(exchange_once(name, "new"), "");
    }
    EXPECT_EQ(files_of(name), std::vector<std::string>{}) << "the last server removes the name's files";
}

// Server processes of one name that stop at the same moment: each finds the
// others still there, yet the last to leave removes the name's files (found
// by the soak: two or three runs in ten left all three files).
TEST(NamedPipeCore, ServerProcessesStoppingAtOnceLeaveNoFile) {
    for (int round = 0; round < 4; ++round) {
        const auto name = test::unique_pipe_name("stop-at-once");
        std::vector<test::Helper> servers;
        for (int i = 0; i < 3; ++i) {
            servers.push_back(test::start_helper(test::peer("echo-server", {name, "2"})));
            ASSERT_EQ(servers.back().line(), "ready");
        }
        for (auto& s : servers) s.in.close();
        for (auto& s : servers) EXPECT_EQ(s.process.wait(), 0);
        EXPECT_EQ(files_of(name), std::vector<std::string>{}) << "round " << round;
    }
}

// --- hostile local peers ----------------------------------------------------------------------

int connect_raw(const std::string& name) {
    std::string runtime;
    EXPECT_FALSE(posix::runtime_directory(posix::Scope::private_to_user, runtime));
    const int dir = ::open(runtime.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const auto path = posix::socket_address(dir, runtime, posix::name_key(PipeName::parse(name)) + ".sock").path;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    const int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(dir);
    EXPECT_EQ(r, 0) << std::strerror(errno);
    return fd;
}

bool closed_by_peer(int fd, std::chrono::milliseconds within) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return false;
    char c;
    const auto n = ::recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);  // a reset when what it sent was left unread
}

TEST(NamedPipeCore, IdleAndGarbageConnectionsNeverBlockAnInstance) {
    const auto name = test::unique_pipe_name("hostile");
    ServerOptions one;
    one.max_instances = 1;
    auto server = start_echo(name, 1, one);
    std::vector<int> idle, garbage;
    for (int i = 0; i < 200; ++i) idle.push_back(connect_raw(name));  // connect, never speak
    using namespace std::string_literals;
    const std::string junk[] = {
        "\x01\x00\x00\x00\x05\x00\x00\x00hello"s,                                   // a message before opening
        "\x05\x00\x00\x00\x38\x00\x00\x00"s + std::string(56, '\x07'),              // a control frame of nonsense
        "GET / HTTP/1.1\r\n\r\n"s,                                                    // not ours at all
        "\x03\x00\x00\x00\x08\x00\x00\x00\x01\x03\x00\x00\x00\x00\x00\x00"s,          // an open of version 1
        "\x03\x00\x00\x00\x81\x01\x00\x00"s,                                         // an open longer than allowed (385 > 384)
    };
    for (const auto& j : junk) {
        const int fd = connect_raw(name);
        ASSERT_EQ(::send(fd, j.data(), j.size(), MSG_NOSIGNAL), static_cast<ssize_t>(j.size()));
        garbage.push_back(fd);
    }
    // A half frame, then nothing.
    const int half = connect_raw(name);
    ASSERT_EQ(::send(half, "\x03\x00", 2, MSG_NOSIGNAL), 2);
    idle.push_back(half);
    EXPECT_EQ(exchange_once(name, "served at once", Timeout::none()), "") << "the instance is untouched";
    for (int fd : garbage) EXPECT_TRUE(closed_by_peer(fd, 500ms)) << "malformed: closed at once";
    // Connections that never complete the handshake are closed after
    // PIPESLOT_HANDSHAKE_TIMEOUT_MS (the suite sets 1000; the default is 5000).
    for (int fd : idle) EXPECT_TRUE(closed_by_peer(fd, 10s)) << "idle: closed in bounded time";
    for (int fd : idle) ::close(fd);
    for (int fd : garbage) ::close(fd);
    EXPECT_EQ(exchange_once(name, "and after", Timeout::none()), "");
}

TEST(NamedPipeCore, ManyConnectionsBeyondTheHandshakeLimitStillLetAClientIn) {
    // Both ends are in this process: 1,100 connections and the broker's 1,024 need room.
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 4096 && limit.rlim_max >= 4096) {
        limit.rlim_cur = 4096;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < 4096) GTEST_SKIP() << "needs 4,096 descriptors; the hard limit is " << limit.rlim_max;
    const auto name = test::unique_pipe_name("flood");
    auto server = start_echo(name, 1);
    std::vector<int> idle;
    for (int i = 0; i < 1100; ++i) idle.push_back(connect_raw(name));  // past the 1,024 the broker keeps
    EXPECT_EQ(exchange_once(name, "still", 5s), "");
    for (int fd : idle) ::close(fd);
}

}  // namespace
}  // namespace pipeslot
