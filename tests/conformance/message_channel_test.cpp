// Conformance: named pipes (MessageChannel, PipeInstance, call). Written once
// against the public API; runs on every backend.
#include "../support/support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <future>
#include <set>
#include <thread>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::bytes_of;
using test::generous;
using test::text_of;

using test::Connected;
using test::connect_pair;

// The only instance taken by a client; the server's default wait is 150 ms.
Connected busy_with_a_150ms_default_wait(const std::string& purpose) {
    ServerOptions options;
    options.max_instances = 1;
    options.default_wait = std::chrono::milliseconds(150);
    return connect_pair(purpose, options);
}

void send_text(MessageChannel& channel, const std::string& text) {
    std::error_code ec;
    EXPECT_EQ(channel.send(test::as_bytes(text), generous, ec), text.size());
    EXPECT_FALSE(ec) << ec.message();
}

// One receive with a buffer of `size`; the text and the error it gave.
std::pair<std::string, std::error_code> receive_text(MessageChannel& channel, std::size_t size,
                                                     Timeout timeout = generous) {
    std::vector<std::byte> buffer(size);
    std::error_code ec;
    const auto n = channel.receive(buffer, timeout, ec);
    return {text_of(std::span(buffer).first(n)), ec};
}

std::error_code open_error(const std::string& name, ClientOptions options = {}) {
    std::error_code ec;
    test::ipc().open_channel(name, options, ec);
    return ec;
}

// --- connecting ---------------------------------------------------------------

TEST(MessageChannelConformance, ClientAndServerExchangeMessagesBothWays) {
    auto c = connect_pair("both-ways");
    send_text(c.client, "ping");
    EXPECT_EQ(receive_text(c.server, 64), std::make_pair(std::string("ping"), std::error_code()));
    send_text(c.server, "pong");
    EXPECT_EQ(receive_text(c.client, 64), std::make_pair(std::string("pong"), std::error_code()));
}

TEST(MessageChannelConformance, ClientMayConnectAndWriteBeforeTheServerAccepts) {
    const auto name = test::unique_pipe_name("early-client");
    auto server = test::create_instance(name);
    auto client = test::open_channel(name);  // no accept() yet
    send_text(client, "early");
    std::error_code ec;
    server.accept(Timeout::none(), ec);  // the client is there already: ERROR_PIPE_CONNECTED
    EXPECT_EQ(ec, errc::already_connected) << ec.message();
    server.accept(Timeout::none(), ec);  // and stays so
    EXPECT_EQ(ec, errc::already_connected) << ec.message();
    EXPECT_EQ(receive_text(server, 64).first, "early");
}

TEST(MessageChannelConformance, AcceptThatWaitsForItsClientSucceeds) {
    const auto name = test::unique_pipe_name("accept-waits");
    auto server = test::create_instance(name);
    auto acceptor = std::async(std::launch::async, [&] {
        std::error_code ec;
        server.accept(generous, ec);
        return ec;
    });
    // Whether the client comes before or during accept() is a race here; both are connections.
    auto client = test::open_channel(name);
    const auto ec = acceptor.get();
    EXPECT_TRUE(!ec || ec == errc::already_connected) << ec.message();
    send_text(client, "in");
    EXPECT_EQ(receive_text(server, 64).first, "in");
}

TEST(MessageChannelConformance, AClientThatCameAndWentBeforeAcceptIsNoData) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    const auto name = test::unique_pipe_name("came-and-went");
    auto server = test::create_instance(name);
    {
        auto client = test::open_channel(name);
        send_text(client, "last words");
    }
    std::error_code ec;
    server.accept(generous, ec);
    EXPECT_EQ(ec, errc::no_data) << ec.message();  // ERROR_NO_DATA: the client has closed its handle
    EXPECT_EQ(receive_text(server, 64).first, "last words");
    EXPECT_EQ(receive_text(server, 64).second, errc::broken_pipe);
    server.disconnect(ec);
    EXPECT_FALSE(ec) << ec.message();
}

TEST(MessageChannelConformance, OpeningANameWithoutInstancesIsNotFound) {
    EXPECT_EQ(open_error(test::unique_pipe_name("nobody")), errc::not_found);
    ClientOptions waiting;
    waiting.wait = 200ms;
    EXPECT_EQ(open_error(test::unique_pipe_name("nobody-waiting"), waiting), errc::not_found)
        << "waiting for a free instance does not wait for a name to appear";
}

TEST(MessageChannelConformance, ANameIsGoneWhenItsLastInstanceCloses) {
    const auto name = test::unique_pipe_name("gone");
    {
        auto first = test::create_instance(name);
        auto second = test::create_instance(name);
        first.close();
        auto client = test::open_channel(name);  // the second still serves
    }
    EXPECT_EQ(open_error(name), errc::not_found);
}

TEST(MessageChannelConformance, InvalidNamesAreRejectedBeforeAnythingIsCreated) {
    std::error_code ec;
    for (const char* bad : {"", "pipe", R"(\\.\pipe\)", R"(\\.\mailslot\x)", R"(//./pipe/x)", R"(\\.\pipe\a\b)"}) {
        test::ipc().create_instance(bad, {}, ec);
        EXPECT_EQ(ec, errc::invalid_name) << bad;
        EXPECT_EQ(open_error(bad), errc::invalid_name) << bad;
    }
    test::ipc().create_instance(R"(\\elsewhere\pipe\x)", {}, ec);
    EXPECT_EQ(ec, errc::invalid_name) << "a server creates only local names";
}

TEST(MessageChannelConformance, NamesAreCaseInsensitive) {
    const auto name = test::unique_pipe_name("MiXeD-Case-\xc3\x84\xc3\x96");
    auto server = test::create_instance(name);
    std::string other = name;
    for (auto& ch : other) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    other.replace(other.find("\xc3\x84\xc3\x96"), 4, "\xc3\xa4\xc3\xb6");  // ÄÖ -> äö
    std::error_code ec;
    auto client = test::ipc().open_channel(other, {}, ec);
    EXPECT_FALSE(ec) << ec.message();
}

void expect_name_works(const std::string& name) {
    std::error_code ec;
    auto server = test::ipc().create_instance(name, {}, ec);
    ASSERT_FALSE(ec) << name << ": " << ec.message();
    auto client = test::ipc().open_channel(name, {}, ec);
    ASSERT_FALSE(ec) << name << ": " << ec.message();
    send_text(client, "through");
    server.accept(generous, ec);
    EXPECT_EQ(receive_text(server, 16).first, "through");
}

TEST(MessageChannelConformance, AName256CharactersLongWorks) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine limits a pipe path to 259 characters, prefix included";
    const std::string stem = test::unique_pipe_name("long");
    expect_name_works(stem + std::string(256 - (stem.size() - 9), 'n'));
}

TEST(MessageChannelConformance, HostileNamesWork) {
    const std::string prefix = R"(\\.\pipe\)";
    const std::string stem = test::unique_pipe_name("h").substr(prefix.size());
    for (const std::string& leaf : {stem + "..", stem + "/../../etc", stem + "/", stem + " spaced out ",
                                    stem + "\xe6\x97\xa5\xe6\x9c\xac", stem + std::string(240 - stem.size(), '.')}) {
        expect_name_works(prefix + leaf);
    }
}

// --- instances ----------------------------------------------------------------

TEST(MessageChannelConformance, AllInstancesTakenIsPipeBusy) {
    ServerOptions options;
    options.max_instances = 1;
    auto c = connect_pair("busy", options);
    EXPECT_EQ(open_error(c.name), errc::pipe_busy);
}

TEST(MessageChannelConformance, InstanceLimitIsEnforced) {
    const auto name = test::unique_pipe_name("limit");
    ServerOptions options;
    options.max_instances = 2;
    auto a = test::create_instance(name, options);
    auto b = test::create_instance(name, options);
    std::error_code ec;
    test::ipc().create_instance(name, options, ec);
    EXPECT_EQ(ec, errc::too_many_instances);
    b.close();
    auto again = test::ipc().create_instance(name, options, ec);
    EXPECT_FALSE(ec) << "closing an instance frees its place: " << ec.message();
}

TEST(MessageChannelConformance, UnlimitedMeansMoreThan255Instances) {
    const auto name = test::unique_pipe_name("unlimited");
    std::vector<PipeInstance> instances;
    for (int i = 0; i < 300; ++i) {
        std::error_code ec;
        instances.push_back(test::ipc().create_instance(name, {}, ec));
        ASSERT_FALSE(ec) << "instance " << i << ": " << ec.message();
    }
}

TEST(MessageChannelConformance, EachInstanceServesOneClient) {
    const auto name = test::unique_pipe_name("three");
    std::vector<PipeInstance> instances;
    for (int i = 0; i < 3; ++i) instances.push_back(test::create_instance(name));
    std::vector<MessageChannel> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(test::open_channel(name));
        send_text(clients.back(), "client " + std::to_string(i));
    }
    EXPECT_EQ(open_error(name), errc::pipe_busy) << "three instances, three clients";
    std::set<std::string> seen;
    for (auto& instance : instances) {
        std::error_code ec;
        instance.accept(generous, ec);
        seen.insert(receive_text(instance, 64).first);
    }
    EXPECT_EQ(seen, (std::set<std::string>{"client 0", "client 1", "client 2"}));
}

// CreateNamedPipe's documentation: FILE_FLAG_FIRST_PIPE_INSTANCE on a name
// that exists fails with ERROR_ACCESS_DENIED.
TEST(MessageChannelConformance, FirstInstanceOnlyFailsWhenTheNameExists) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE";
    const auto name = test::unique_pipe_name("first");
    ServerOptions first;
    first.first_instance = true;
    auto a = test::create_instance(name, first);
    std::error_code ec;
    test::ipc().create_instance(name, first, ec);
    EXPECT_EQ(ec, errc::access_denied);
}

TEST(MessageChannelConformance, InstancesOfOneNameMustAgreeOnTypeAndDirection) {
    if (test::native_under_wine()) GTEST_SKIP() << "Wine does not check that the instances of a name agree";
    const auto name = test::unique_pipe_name("agree");
    auto a = test::create_instance(name);
    std::error_code ec;
    ServerOptions byte_pipe;
    byte_pipe.type = PipeType::byte;
    byte_pipe.read_mode = ReadMode::byte;
    test::ipc().create_instance(name, byte_pipe, ec);
    EXPECT_EQ(ec, errc::access_denied);
    ServerOptions inbound;
    inbound.access = PipeAccess::inbound;
    test::ipc().create_instance(name, inbound, ec);
    EXPECT_EQ(ec, errc::access_denied);
}

TEST(MessageChannelConformance, WaitingSucceedsWhenAnInstanceFreesUp) {
    ServerOptions options;
    options.max_instances = 1;
    auto c = connect_pair("wait-ok", options);
    auto second = std::async(std::launch::async, [&] {
        ClientOptions waiting;
        waiting.wait = generous;
        std::error_code ec;
        auto client = test::ipc().open_channel(c.name, waiting, ec);
        if (!ec) client.send(test::as_bytes(std::string("second")), generous, ec);
        return ec;
    });
    // Free the only instance: the first client goes, the server takes the next.
    c.client.close();
    std::error_code ec;
    c.server.disconnect(ec);
    EXPECT_FALSE(ec) << ec.message();
    c.server.accept(generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_FALSE(second.get());
    EXPECT_EQ(receive_text(c.server, 64).first, "second");
}

// A client waiting for a free instance gets one created while it waits.
TEST(MessageChannelConformance, AWaitingClientGetsANewInstance) {
    const auto name = test::unique_pipe_name("wait-for-new");
    auto first = test::create_instance(name);
    auto taken = test::open_channel(name);
    auto waiting = std::async(std::launch::async, [&] {
        ClientOptions wait;
        wait.wait = generous;
        std::error_code ec;
        auto channel = test::ipc().open_channel(name, wait, ec);
        if (!ec) channel.send(test::as_bytes(std::string("to the new one")), generous, ec);
        return std::make_pair(std::move(channel), ec);
    });
    auto second = test::create_instance(name);  // whether the client is waiting yet or not, it gets this one
    auto [channel, ec] = waiting.get();
    ASSERT_FALSE(ec) << ec.message();
    second.accept(generous, ec);
    EXPECT_TRUE(!ec || ec == errc::already_connected) << ec.message();
    EXPECT_EQ(receive_text(second, 64).first, "to the new one");
    ClientOptions none;
    EXPECT_EQ(open_error(name, none), errc::pipe_busy) << "both instances have their client";
}

TEST(MessageChannelConformance, WaitingFailsWhenNoInstanceFreesUp) {
    ServerOptions options;
    options.max_instances = 1;
    auto c = connect_pair("wait-fail", options);
    ClientOptions waiting;
    waiting.wait = 150ms;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(open_error(c.name, waiting), errc::pipe_busy);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 140ms);
}

TEST(MessageChannelConformance, WaitingCanUseTheServersDefault) {
    auto c = busy_with_a_150ms_default_wait("wait-default");
    ClientOptions waiting;
    waiting.use_server_default_wait = true;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(open_error(c.name, waiting), errc::pipe_busy);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 140ms);
}

// WaitNamedPipe, from Wine's kernel32 pipe.c (test_CreateNamedPipe,
// test_wait_pipe): ERROR_FILE_NOT_FOUND at once without an instance, even
// with a long wait; success while an instance listens, before any
// ConnectNamedPipe, without taking it; ERROR_SEM_TIMEOUT when none frees up;
// a new instance ends the wait.
TEST(MessageChannelConformance, WaitingForAFreeInstanceTakesNone) {
    const auto name = test::unique_pipe_name("wait-only");
    ClientOptions long_wait;
    long_wait.wait = generous;
    std::error_code ec;
    const auto start = std::chrono::steady_clock::now();
    test::ipc().wait_for_instance(name, long_wait, ec);
    EXPECT_EQ(ec, errc::not_found);
    EXPECT_LT(std::chrono::steady_clock::now() - start, generous / 2) << "at once";

    auto server = test::create_instance(name, {.max_instances = 2});
    test::ipc().wait_for_instance(name, long_wait, ec);
    EXPECT_FALSE(ec) << ec.message() << " " << ec.category().name() << " " << ec.value();
    test::ipc().wait_for_instance(name, {}, ec);
    EXPECT_FALSE(ec) << "free: no wait needed; " << ec.message();
    auto client = test::open_channel(name);  // the instance was not taken by the waits
    server.accept(generous, ec);
    EXPECT_EQ(ec, errc::already_connected);

    ClientOptions short_wait;
    short_wait.wait = 150ms;
    const auto busy_since = std::chrono::steady_clock::now();
    test::ipc().wait_for_instance(name, short_wait, ec);
    EXPECT_EQ(ec, errc::timed_out) << "ERROR_SEM_TIMEOUT";
    EXPECT_GE(std::chrono::steady_clock::now() - busy_since, 140ms);
    test::ipc().wait_for_instance(name, {}, ec);
    EXPECT_EQ(ec, errc::timed_out) << "no wait, nothing free";

    auto waiter = std::async(std::launch::async, [&] {
        std::error_code e;
        test::ipc().wait_for_instance(name, long_wait, e);
        return e;
    });
    // Nothing is free: it waits (on a slow machine it may not have asked yet; it then finds one at once).
    EXPECT_EQ(waiter.wait_for(100ms), std::future_status::timeout);
    auto second = test::create_instance(name, {.max_instances = 2});
    EXPECT_FALSE(waiter.get()) << "a new instance ends the wait";
    auto next = test::open_channel(name);
    EXPECT_TRUE(next.is_open()) << "and is still free for an open";
}

TEST(MessageChannelConformance, CallCanWaitTheServersDefault) {
    auto c = busy_with_a_150ms_default_wait("call-default");
    ClientOptions server_default;
    server_default.use_server_default_wait = true;
    std::vector<std::byte> reply(16);
    std::error_code ec;
    const auto start = std::chrono::steady_clock::now();
    test::ipc().call(c.name, test::as_bytes(std::string("q")), reply, server_default, generous, ec);
    EXPECT_EQ(ec, errc::pipe_busy);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 140ms) << "it waited the server's default";
    c.client.close();  // free the instance: the next call gets it
    c.server.disconnect(ec);
    std::thread answer([&] {
        std::error_code e;
        c.server.accept(generous, e);
        const auto q = c.server.receive_message(generous, e);
        c.server.send(test::as_bytes("re:" + text_of(q)), generous, e);
    });
    ClientOptions until_free;
    until_free.wait = generous;
    test::ipc().wait_for_instance(c.name, until_free, ec);  // accept() has made it listen: no race with the default
    const auto n = test::ipc().call(c.name, test::as_bytes(std::string("q")), reply, server_default, generous, ec);
    answer.join();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(text_of(std::span(reply).first(n)), "re:q");
}

TEST(MessageChannelConformance, WaitingForAFreeInstanceCanUseTheServersDefault) {
    auto c = busy_with_a_150ms_default_wait("wait-only-default");
    ClientOptions waiting;
    waiting.use_server_default_wait = true;
    std::error_code ec;
    const auto start = std::chrono::steady_clock::now();
    test::ipc().wait_for_instance(c.name, waiting, ec);
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 140ms);
    test::ipc().wait_for_instance(R"(\\.\pipe\a\b)", {}, ec);
    EXPECT_EQ(ec, errc::invalid_name);
    ClientOptions negative;
    negative.wait = Timeout(-1ms);
    test::ipc().wait_for_instance(c.name, negative, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
}

// --- messages -----------------------------------------------------------------

TEST(MessageChannelConformance, MessageBoundariesHoldForEverySize) {
    auto c = connect_pair("sizes");
    const std::vector<std::size_t> sizes = {0, 1, 4095, 4096, 65536, 1 << 20};
    std::thread sender([&] {
        for (auto size : sizes) {
            std::error_code ec;
            EXPECT_EQ(c.server.send(test::pattern_bytes(size), generous, ec), size);
            EXPECT_FALSE(ec) << size << ": " << ec.message();
        }
    });
    for (auto size : sizes) {
        std::vector<std::byte> buffer((1 << 20) + 100);
        std::error_code ec;
        const auto n = c.client.receive(buffer, generous, ec);
        EXPECT_FALSE(ec) << size << ": " << ec.message();
        ASSERT_EQ(n, size);
        EXPECT_TRUE(std::equal(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n),
                               test::pattern_bytes(size).begin()));
    }
    sender.join();
}

TEST(MessageChannelConformance, TooSmallABufferGivesMoreDataAndTheRestFollows) {
    auto c = connect_pair("more-data");
    send_text(c.server, "0123456789");
    send_text(c.server, "next");
    EXPECT_EQ(receive_text(c.client, 4), std::make_pair(std::string("0123"), make_error_code(errc::more_data)));
    EXPECT_EQ(receive_text(c.client, 4), std::make_pair(std::string("4567"), make_error_code(errc::more_data)));
    EXPECT_EQ(receive_text(c.client, 4), std::make_pair(std::string("89"), std::error_code()));
    EXPECT_EQ(receive_text(c.client, 64), std::make_pair(std::string("next"), std::error_code()));
}

TEST(MessageChannelConformance, ReceiveMessageReturnsAWholeMessageOfAnySize) {
    auto c = connect_pair("whole");
    const auto big = test::pattern_bytes(300000);
    std::thread sender([&] { c.server.send(big, generous); });
    std::error_code ec;
    EXPECT_EQ(c.client.receive_message(generous, ec), big);
    EXPECT_FALSE(ec) << ec.message();
    sender.join();
}

TEST(MessageChannelConformance, ZeroLengthMessagesAreDelivered) {
    auto c = connect_pair("empty");
    send_text(c.client, "");
    send_text(c.client, "x");
    send_text(c.client, "");
    EXPECT_EQ(receive_text(c.server, 8), std::make_pair(std::string(), std::error_code()));
    EXPECT_EQ(receive_text(c.server, 8), std::make_pair(std::string("x"), std::error_code()));
    EXPECT_EQ(receive_text(c.server, 8), std::make_pair(std::string(), std::error_code()));
}

// A zero-byte ReadFile (Wine's kernel32 pipe.c, test_readfileex_pending and
// the zero-length cases; a probe under Wine for the rest): it waits until
// there is data and takes none. In message read mode Windows 8 and later
// report ERROR_MORE_DATA for a message waiting (older ones, and Wine, TRUE).
TEST(MessageChannelConformance, AZeroByteReceiveWaitsForDataAndLeavesIt) {
    auto c = connect_pair("zero-byte");
    std::vector<std::byte> none;
    std::error_code ec;
    EXPECT_EQ(c.client.receive(none, 100ms, ec), 0u);
    EXPECT_EQ(ec, errc::timed_out) << "nothing there: it waits";
    send_text(c.server, "abc");
    EXPECT_EQ(c.client.receive(none, generous, ec), 0u);
    if (!test::native_under_wine()) {
        EXPECT_EQ(ec, errc::more_data) << "Windows 8 and later: ERROR_MORE_DATA";  // Wine: TRUE, 0 bytes
    }
    EXPECT_EQ(receive_text(c.client, 16), std::make_pair(std::string("abc"), std::error_code()));

    c.client.set_read_mode(ReadMode::byte, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.client.receive(none, 100ms, ec), 0u);
    EXPECT_EQ(ec, errc::timed_out) << "byte read mode waits too";
    send_text(c.server, "def");
    EXPECT_EQ(c.client.receive(none, generous, ec), 0u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(receive_text(c.client, 16).first, "def");
}

// TransactNamedPipe with no room for the reply: an empty reply is a success;
// another is ERROR_MORE_DATA with nothing copied, and stays to be read whole.
TEST(MessageChannelConformance, TransactWithAnEmptyReplyBuffer) {
    auto c = connect_pair("transact-empty");
    std::vector<std::byte> none;
    for (const std::string reply : {"", "hello"}) {
        std::thread answer([&] {
            std::error_code e;
            c.server.receive_message(generous, e);
            c.server.send(test::as_bytes(reply), generous, e);
        });
        std::error_code ec;
        EXPECT_EQ(c.client.transact(test::as_bytes(std::string("q")), none, generous, ec), 0u);
        answer.join();
        if (reply.empty()) {
            EXPECT_FALSE(ec) << ec.message();
        } else {
            EXPECT_EQ(ec, errc::more_data);
            EXPECT_EQ(receive_text(c.client, 16), std::make_pair(reply, std::error_code()));
        }
    }
}

TEST(MessageChannelConformance, ByteReadModeSpansMessages) {
    auto c = connect_pair("byte-mode");
    std::error_code ec;
    c.client.set_read_mode(ReadMode::byte, ec);
    ASSERT_FALSE(ec) << ec.message();
    send_text(c.server, "abc");
    send_text(c.server, "");
    send_text(c.server, "def");
    std::string got;
    while (got.size() < 6) got += receive_text(c.client, 64).first;
    EXPECT_EQ(got, "abcdef");
    c.client.set_read_mode(ReadMode::message, ec);
    send_text(c.server, "one");
    send_text(c.server, "two");
    EXPECT_EQ(receive_text(c.client, 64).first, "one") << "message mode again";
}

TEST(MessageChannelConformance, BytePipesAreStreams) {
    ServerOptions options;
    options.type = PipeType::byte;
    options.read_mode = ReadMode::byte;
    auto c = connect_pair("byte-pipe", options);
    std::error_code ec;
    EXPECT_EQ(c.client.info(ec).type, PipeType::byte);
    EXPECT_EQ(c.client.info(ec).read_mode, ReadMode::byte) << "a byte pipe's client reads bytes";
    c.client.set_read_mode(ReadMode::message, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    auto spare = test::create_instance(c.name, options);  // so the next open gets as far as the read mode
    ClientOptions message_reader;
    message_reader.read_mode = ReadMode::message;
    EXPECT_EQ(open_error(c.name, message_reader), errc::invalid_argument);
    send_text(c.client, "stream ");
    send_text(c.client, "of bytes");
    std::string got;
    while (got.size() < 15) got += receive_text(c.server, 64).first;
    EXPECT_EQ(got, "stream of bytes");
}

// --- batches ---------------------------------------------------------------------

using Batch = std::vector<std::vector<std::byte>>;

std::vector<std::span<const std::byte>> spans_of(const Batch& batch) {
    return {batch.begin(), batch.end()};
}

// Each message different, so that one out of place shows.
Batch numbered(std::size_t count, std::size_t size) {
    Batch batch(count, test::pattern_bytes(size));
    for (std::size_t i = 0; i < count; ++i) {
        if (size >= 2) {
            batch[i][0] = static_cast<std::byte>(i);
            batch[i][1] = static_cast<std::byte>(i >> 8);
        }
    }
    return batch;
}

TEST(MessageChannelConformance, ABatchArrivesAsWholeMessagesInOrder) {
    auto c = connect_pair("batch");
    // Empty ones, small ones, more than one gathering call takes, and one
    // larger than any pipe's buffer.
    Batch batch;
    for (std::size_t i = 0; i < 1500; ++i) {
        auto m = test::pattern_bytes(i % 7 == 0 ? 0 : (i * 131) % 3000 + 2);
        if (!m.empty()) m[0] = static_cast<std::byte>(i), m[1] = static_cast<std::byte>(i >> 8);
        batch.push_back(std::move(m));
    }
    batch.push_back(test::pattern_bytes(300000));
    auto sender = std::async(std::launch::async, [&] {
        std::error_code ec;
        const auto sent = c.client.send_messages(spans_of(batch), generous, ec);
        return std::pair(sent, ec);
    });
    for (std::size_t i = 0; i < batch.size(); ++i) {
        std::error_code ec;
        const auto got = c.server.receive_message(generous, ec);
        ASSERT_FALSE(ec) << i << ": " << ec.message();
        ASSERT_EQ(got, batch[i]) << "message " << i;
    }
    const auto [sent, ec] = sender.get();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(sent, batch.size());
    send_text(c.client, "after");
    EXPECT_EQ(receive_text(c.server, 8).first, "after");
}

TEST(MessageChannelConformance, ABatchOnABytePipeIsItsBytesInOrder) {
    ServerOptions options;
    options.type = PipeType::byte;
    options.read_mode = ReadMode::byte;
    auto c = connect_pair("batch-bytes", options);
    const std::vector<std::string> parts = {"one ", "", "two ", "three"};
    std::vector<std::span<const std::byte>> spans;
    for (const auto& p : parts) spans.push_back(test::as_bytes(p));
    std::error_code ec;
    EXPECT_EQ(c.client.send_messages(spans, generous, ec), parts.size()) << "an empty one counts as sent";
    EXPECT_FALSE(ec) << ec.message();
    std::string got;
    while (got.size() < 13) got += receive_text(c.server, 64).first;
    EXPECT_EQ(got, "one two three");
}

TEST(MessageChannelConformance, ABatchThatTimesOutSaysHowManyWentWhole) {
    ServerOptions small;
    small.in_buffer_size = small.out_buffer_size = 4096;
    auto c = connect_pair("batch-timeout", small);
    const auto batch = numbered(128, 64 * 1024);  // 8 MiB: more than any pipe holds
    std::error_code ec;
    const auto sent = c.client.send_messages(spans_of(batch), 200ms, ec);
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_LT(sent, batch.size());
    for (std::size_t i = 0; i < sent; ++i) {
        const auto got = c.server.receive_message(generous, ec);
        ASSERT_FALSE(ec) << i << ": " << ec.message();
        ASSERT_EQ(got, batch[i]) << "message " << i;
    }
}

TEST(MessageChannelConformance, ABadBatchSendsNothing) {
    auto c = connect_pair("batch-bad");
    std::error_code ec;
    EXPECT_EQ(c.client.send_messages({}, generous, ec), 0u);
    EXPECT_FALSE(ec) << "an empty batch is nothing to do";
    const auto batch = numbered(3, 16);
    c.client.send_messages(spans_of(batch), Timeout(-1ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    // A message too large, checked before anything goes: its size alone is
    // looked at, so a span that claims it is enough.
    auto spans = spans_of(batch);
    spans.emplace_back(batch[0].data(), max_message_size + 1);
    EXPECT_EQ(c.client.send_messages(spans, generous, ec), 0u);
    EXPECT_EQ(ec, errc::message_too_large);
    MessageChannel closed;
    closed.send_messages(spans_of(batch), generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "a closed channel";
    send_text(c.client, "nothing before this");
    EXPECT_EQ(receive_text(c.server, 64).first, "nothing before this");
}

TEST(MessageChannelConformance, PeekCountsWithoutConsuming) {
    auto c = connect_pair("peek");
    std::error_code ec;
    auto empty = c.client.peek({}, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(empty.total_available, 0u);
    EXPECT_EQ(empty.left_in_message, 0u);

    send_text(c.server, "hello");
    send_text(c.server, "world!!");
    // Peek does not wait: ask until both messages are visible.
    PeekResult r;
    std::vector<std::byte> buffer(3);
    const auto deadline = std::chrono::steady_clock::now() + generous;
    do r = c.client.peek(buffer, ec);
    while (r.total_available < 12 && std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(r.copied, 3u);
    EXPECT_EQ(text_of(std::span(buffer).first(3)), "hel");
    EXPECT_EQ(r.total_available, 12u);
    EXPECT_EQ(r.left_in_message, 2u) << "what is left after the bytes peek copied";

    EXPECT_EQ(receive_text(c.client, 2).first, "he");
    r = c.client.peek({}, ec);
    EXPECT_EQ(r.left_in_message, 3u);
    EXPECT_EQ(r.total_available, 10u);
    EXPECT_EQ(receive_text(c.client, 64).first, "llo");
    EXPECT_EQ(receive_text(c.client, 64).first, "world!!");
}

// --- transact and call ----------------------------------------------------------

std::thread echo_once(PipeInstance& server) {
    return std::thread([&server] {
        std::error_code ec;
        const auto request = server.receive_message(generous, ec);
        std::string reply = "echo:" + text_of(request);
        server.send(test::as_bytes(reply), generous, ec);
    });
}

TEST(MessageChannelConformance, TransactSendsOneMessageAndReceivesTheReply) {
    auto c = connect_pair("transact");
    auto server = echo_once(c.server);
    std::vector<std::byte> reply(64);
    std::error_code ec;
    const auto n = c.client.transact(test::as_bytes(std::string("question")), reply, generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(text_of(std::span(reply).first(n)), "echo:question");
    server.join();
}

TEST(MessageChannelConformance, TransactNeedsMessageModeAndNoUnreadData) {
    auto c = connect_pair("transact-errors");
    std::vector<std::byte> reply(64);
    std::error_code ec;
    send_text(c.server, "unread");
    while (c.client.peek({}, ec).total_available == 0) std::this_thread::yield();
    c.client.transact(test::as_bytes(std::string("q")), reply, generous, ec);
    EXPECT_EQ(ec, errc::pipe_busy);
    EXPECT_EQ(receive_text(c.client, 64).first, "unread") << "nothing was lost";
    c.client.set_read_mode(ReadMode::byte, ec);
    c.client.transact(test::as_bytes(std::string("q")), reply, generous, ec);
    EXPECT_EQ(ec, errc::bad_pipe) << "TransactNamedPipe in byte read mode: ERROR_BAD_PIPE";
}

TEST(MessageChannelConformance, CallConnectsTransactsAndCloses) {
    const auto name = test::unique_pipe_name("call");
    auto server = test::create_instance(name);
    std::thread answer([&] {
        std::error_code ec;
        server.accept(generous, ec);
        const auto request = server.receive_message(generous, ec);
        server.send(test::as_bytes("echo:" + text_of(request)), generous, ec);
        // The caller closes after the reply.
        std::vector<std::byte> rest(8);
        server.receive(rest, generous, ec);
        EXPECT_EQ(ec, errc::broken_pipe);
    });
    std::vector<std::byte> reply(64);
    std::error_code ec;
    const auto n = test::ipc().call(name, test::as_bytes(std::string("called")), reply, generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(text_of(std::span(reply).first(n)), "echo:called");
    answer.join();
    test::ipc().call(test::unique_pipe_name("call-nobody"), test::as_bytes(std::string("x")), reply, generous, ec);
    EXPECT_EQ(ec, errc::not_found);
}

// --- ends and errors --------------------------------------------------------------

TEST(MessageChannelConformance, DisconnectDiscardsUnreadDataAndTheInstanceServesTheNextClient) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    auto c = connect_pair("disconnect");
    send_text(c.server, "never read");
    std::error_code ec;
    c.server.disconnect(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(receive_text(c.client, 64).second, errc::not_connected);
    c.client.send(test::as_bytes(std::string("late")), generous, ec);
    EXPECT_EQ(ec, errc::not_connected) << ec.message();
    receive_text(c.server, 64);
    // The instance is free again once it accepts.
    auto next_client = std::async(std::launch::async, [&] {
        ClientOptions waiting;
        waiting.wait = generous;
        return test::open_channel(c.name, waiting);
    });
    c.server.accept(generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    auto next = next_client.get();
    EXPECT_TRUE(next.is_open());
    send_text(next, "next client");
    EXPECT_EQ(receive_text(c.server, 64).first, "next client");
}

TEST(MessageChannelConformance, DataSeenByPeekIsDiscardedByADisconnectToo) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    auto c = connect_pair("disconnect-peeked");
    send_text(c.server, "seen, not read");
    std::error_code ec;
    while (c.client.peek({}, ec).total_available == 0 && !ec) std::this_thread::yield();
    c.server.disconnect(ec);
    EXPECT_EQ(receive_text(c.client, 64).second, errc::not_connected);
}

// Windows tells the two apart: no client yet (ERROR_PIPE_LISTENING), and a
// client disconnected (ERROR_PIPE_NOT_CONNECTED, on both ends).
TEST(MessageChannelConformance, AServerEndWithoutAClientSaysWhetherItEverHadOne) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    const auto name = test::unique_pipe_name("not-connected");
    auto server = test::create_instance(name, {.max_instances = 1});
    EXPECT_EQ(receive_text(server, 8).second, errc::pipe_listening);
    std::error_code ec;
    server.send(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::pipe_listening);

    auto client = test::open_channel(name);
    server.disconnect(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(receive_text(server, 8).second, errc::not_connected);
    server.send(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::not_connected);
    EXPECT_EQ(receive_text(client, 8).second, errc::not_connected);
    client.send(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::not_connected);
    server.disconnect(ec);  // twice
    EXPECT_EQ(ec, errc::not_connected);
    EXPECT_EQ(ec, condition::no_client);
    // Disconnected is not listening: a new client finds the only instance busy until accept().
    EXPECT_EQ(open_error(name), errc::pipe_busy);
    auto acceptor = std::async(std::launch::async, [&] {
        std::error_code e;
        server.accept(generous, e);
        return e;
    });
    ClientOptions wait;
    wait.wait = generous;
    auto next = test::open_channel(name, wait);
    EXPECT_FALSE(acceptor.get()) << "an accept() that waited for its client";
}

// Wine's kernel32 pipe.c (test_CreateNamedPipe, test_DisconnectNamedPipe) and
// ntdll pipe.c (test_pipe_state): PeekNamedPipe and TransactNamedPipe on a
// server end without a client are ERROR_BAD_PIPE, listening or disconnected;
// on the disconnected client, ERROR_PIPE_NOT_CONNECTED.
TEST(MessageChannelConformance, PeekAndTransactWithoutAClientAreBadPipe) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    const auto name = test::unique_pipe_name("bad-pipe");
    auto server = test::create_instance(name, {.max_instances = 1});
    std::vector<std::byte> reply(8);
    std::error_code ec;
    server.peek({}, ec);
    EXPECT_EQ(ec, errc::bad_pipe) << "listening";
    server.transact(test::as_bytes(std::string("q")), reply, generous, ec);
    EXPECT_EQ(ec, errc::bad_pipe) << "listening";
    auto client = test::open_channel(name);
    server.peek({}, ec);
    EXPECT_FALSE(ec) << ec.message();
    server.disconnect(ec);
    server.peek({}, ec);
    EXPECT_EQ(ec, errc::bad_pipe) << "disconnected";
    EXPECT_EQ(ec, condition::no_client);
    server.transact(test::as_bytes(std::string("q")), reply, generous, ec);
    EXPECT_EQ(ec, errc::bad_pipe) << "disconnected";
    client.peek({}, ec);
    EXPECT_EQ(ec, errc::not_connected) << "the client of a disconnected instance";
    client.transact(test::as_bytes(std::string("q")), reply, generous, ec);
    EXPECT_EQ(ec, errc::not_connected) << "the client of a disconnected instance";
}

// As Windows orders them: the instance that began listening first (at its
// creation, or at accept() after a disconnect) takes the next client.
TEST(MessageChannelConformance, FreeInstancesAreTakenInTheOrderTheyBeganListening) {
    const auto name = test::unique_pipe_name("listen-order");
    std::vector<PipeInstance> servers;
    for (int i = 0; i < 2; ++i) servers.push_back(test::create_instance(name));  // A, B
    const auto which = [&](MessageChannel& client) {
        send_text(client, "who");
        // Locally it is there at once; a remote client's takes the network's time.
        for (const auto until = std::chrono::steady_clock::now() + generous; std::chrono::steady_clock::now() < until;) {
            for (std::size_t i = 0; i < servers.size(); ++i) {
                std::error_code ec;
                const auto peeked = servers[i].peek({}, ec);
                if (!ec && peeked.total_available > 0) {
                    EXPECT_EQ(receive_text(servers[i], 8).first, "who");
                    return static_cast<int>(i);
                }
            }
            if (!test::using_remote_clients()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return -1;
    };
    auto first = test::open_channel(name);
    EXPECT_EQ(which(first), 0) << "A began listening first";
    servers.push_back(test::create_instance(name));  // C
    std::error_code ec;
    servers[0].disconnect(ec);
    ASSERT_FALSE(ec) << ec.message();
    auto relisten = std::async(std::launch::async, [&] {
        std::error_code e;
        servers[0].accept(generous, e);
        return e;
    });
    // A listens again only once accept() has run; wait until it does (a client is then taken by B first anyway).
    std::vector<MessageChannel> clients;
    for (int expected : {1, 2}) {
        clients.push_back(test::open_channel(name));
        EXPECT_EQ(which(clients.back()), expected);
    }
    ClientOptions wait;
    wait.wait = generous;
    clients.push_back(test::open_channel(name, wait));
    EXPECT_FALSE(relisten.get());
    EXPECT_EQ(which(clients.back()), 0) << "A, listening again last, comes last";
}

// Wine's kernel32 pipe.c (test_CloseHandle): after the other end closes, a
// read gets what was sent and then ERROR_BROKEN_PIPE; a write gets
// ERROR_NO_DATA ("the pipe is being closed"), from either end.
TEST(MessageChannelConformance, AfterThePeerClosesWhatWasSentIsReadThenBrokenPipe) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    auto c = connect_pair("close");
    send_text(c.client, "one");
    send_text(c.client, "two");
    c.client.close();
    EXPECT_EQ(receive_text(c.server, 64).first, "one");
    EXPECT_EQ(receive_text(c.server, 64).first, "two");
    EXPECT_EQ(receive_text(c.server, 64).second, errc::broken_pipe);
    std::error_code ec;
    c.server.send(test::as_bytes(std::string("anyone?")), generous, ec);
    EXPECT_EQ(ec, errc::pipe_closing);
    c.server.peek({}, ec);
    EXPECT_EQ(ec, errc::broken_pipe) << "PeekNamedPipe, the other end gone: ERROR_BROKEN_PIPE";

    auto d = connect_pair("close-server");
    send_text(d.server, "bye");
    d.server.close();
    EXPECT_EQ(receive_text(d.client, 64).first, "bye");
    EXPECT_EQ(receive_text(d.client, 64).second, errc::broken_pipe);
    d.client.send(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::pipe_closing);
    EXPECT_EQ(ec, condition::peer_gone);
}

TEST(MessageChannelConformance, ReceiveTimesOut) {
    auto c = connect_pair("timeout");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(receive_text(c.client, 8, 100ms).second, errc::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 95ms);
    send_text(c.server, "after");
    EXPECT_EQ(receive_text(c.client, 8).first, "after");
}

TEST(MessageChannelConformance, BlockingCallsAreCancelledFromAnotherThread) {
    auto c = connect_pair("cancel");
    auto reader = std::async(std::launch::async, [&] { return receive_text(c.client, 8, Timeout::forever()).second; });
    // cancel() reaches only a call under way; repeat until the reader has it.
    while (reader.wait_for(10ms) != std::future_status::ready) c.client.cancel();
    EXPECT_EQ(reader.get(), errc::cancelled);
    send_text(c.server, "still works");
    EXPECT_EQ(receive_text(c.client, 64).first, "still works");

    auto idle = test::create_instance(test::unique_pipe_name("cancel-accept"));
    auto acceptor = std::async(std::launch::async, [&] {
        std::error_code ec;
        idle.accept(Timeout::forever(), ec);
        return ec;
    });
    while (acceptor.wait_for(10ms) != std::future_status::ready) idle.cancel();
    EXPECT_EQ(acceptor.get(), errc::cancelled);
}

TEST(MessageChannelConformance, ASendsTimeoutHoldsWhileTheReaderDrainsSlowly) {
    PIPESLOT_SKIP_UNDER_FAKE("partly sent messages (it takes a message whole once there is room for any)");
    auto c = connect_pair("slow-drain");
    std::atomic<bool> done{false};
    std::thread slow_reader([&] {  // a kilobyte every few milliseconds: always some progress, never enough
        std::vector<std::byte> buffer(1024);
        std::error_code ec;
        while (!done) {
            c.server.receive(buffer, 5ms, ec);
            if (ec && ec != errc::more_data && ec != errc::timed_out) return;
            std::this_thread::sleep_for(5ms);
        }
    });
    const auto start = std::chrono::steady_clock::now();
    std::error_code ec;
    c.client.send(test::pattern_bytes(8 << 20), 200ms, ec);  // 8 MiB would take the reader ~40 s
    const auto took = std::chrono::steady_clock::now() - start;
    done = true;
    slow_reader.join();
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_LT(took, 10s) << "a timeout of 200 ms";
}

TEST(MessageChannelConformance, ASendBlockedOnAFullPipeIsCancelled) {
    auto c = connect_pair("cancel-send");
    const auto message = test::pattern_bytes(64 * 1024);
    auto writer = std::async(std::launch::async, [&] {
        std::error_code ec;
        for (int i = 0; i < 1024 && !ec; ++i) c.client.send(message, Timeout::forever(), ec);  // 64 MiB at most
        return ec;
    });
    while (writer.wait_for(10ms) != std::future_status::ready) c.client.cancel();
    EXPECT_EQ(writer.get(), errc::cancelled);
}

TEST(MessageChannelConformance, OneThreadReadsWhileAnotherWrites) {
    auto c = connect_pair("duplex");
    constexpr int count = 500;
    std::thread echo([&] {
        for (int i = 0; i < count; ++i) {
            std::error_code ec;
            auto m = c.server.receive_message(generous, ec);
            if (ec) return;
            c.server.send(m, generous, ec);
        }
    });
    std::thread writer([&] {
        for (int i = 0; i < count; ++i) send_text(c.client, "m" + std::to_string(i));
    });
    for (int i = 0; i < count; ++i) EXPECT_EQ(receive_text(c.client, 64).first, "m" + std::to_string(i));
    writer.join();
    echo.join();
}

TEST(MessageChannelConformance, AccessModesAreEnforcedOnBothEnds) {
    ServerOptions inbound;
    inbound.access = PipeAccess::inbound;
    const auto name = test::unique_pipe_name("inbound");
    auto server = test::create_instance(name, inbound);
    ClientOptions reader;
    reader.access = ClientAccess::read;
    EXPECT_EQ(open_error(name, reader), errc::access_denied);
    ClientOptions writer;
    writer.access = ClientAccess::write;
    auto client = test::open_channel(name, writer);
    std::error_code ec;
    server.accept(generous, ec);
    send_text(client, "in");
    EXPECT_EQ(receive_text(server, 8).first, "in");
    server.send(test::as_bytes(std::string("out")), generous, ec);
    EXPECT_EQ(ec, errc::access_denied) << "the server of an inbound pipe cannot write";
    EXPECT_EQ(receive_text(client, 8).second, errc::access_denied) << "a write-only client cannot read";

    auto duplex = connect_pair("read-only-client", {}, reader);
    duplex.client.send(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::access_denied) << "a read-only client cannot write";
}

// A client opened with neither read nor write access (a probe of CreateFile
// with access 0 under Wine; Wine's ntdll pipe.c, test_create): it connects to
// an instance of any direction, taking it, and may ask state but not move data.
TEST(MessageChannelConformance, AClientWithNoAccessTakesAnInstanceToAskState) {
    for (const auto direction : {PipeAccess::duplex, PipeAccess::inbound, PipeAccess::outbound}) {
        SCOPED_TRACE(static_cast<int>(direction));
        const auto name = test::unique_pipe_name("no-access");
        auto server = test::create_instance(name, {.max_instances = 1, .access = direction});
        ClientOptions none;
        none.access = ClientAccess::none;
        auto client = test::open_channel(name, none);
        std::error_code ec;
        server.accept(generous, ec);
        EXPECT_EQ(ec, errc::already_connected) << "it took the instance";
        EXPECT_EQ(open_error(name), errc::pipe_busy) << "taken: busy comes before the access check, as on Windows";
        EXPECT_EQ(client.info(ec).current_instances, 1u);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_GT(client.server_process_id(ec), 0);
        std::vector<std::byte> buffer(8);
        client.peek(buffer, ec);
        EXPECT_EQ(ec, errc::access_denied);
        client.receive(buffer, Timeout::none(), ec);
        EXPECT_EQ(ec, errc::access_denied);
        client.send(test::as_bytes(std::string("x")), generous, ec);
        EXPECT_EQ(ec, errc::access_denied);
        client.close();
        if (direction != PipeAccess::outbound) {
            EXPECT_EQ(receive_text(server, 8).second, errc::broken_pipe) << "the client has gone";
        }
    }
}

TEST(MessageChannelConformance, InfoDescribesBothEnds) {
    ServerOptions options;
    options.max_instances = 7;
    options.in_buffer_size = 8192;
    options.out_buffer_size = 16384;
    auto c = connect_pair("info", options);
    std::error_code ec;
    const auto server = c.server.info(ec);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(server.is_server);
    EXPECT_EQ(server.type, PipeType::message);
    EXPECT_EQ(server.read_mode, ReadMode::message);
    EXPECT_EQ(server.max_instances, 7u);
    const auto client = c.client.info(ec);
    EXPECT_FALSE(client.is_server);
    EXPECT_EQ(client.type, PipeType::message);
    EXPECT_EQ(client.read_mode, ReadMode::message);
    EXPECT_EQ(client.max_instances, 7u);
    EXPECT_GE(server.in_buffer_size, 1u);
    EXPECT_GE(client.out_buffer_size, 1u);
}

// GetNamedPipeHandleState's lpCurInstances (Wine's kernel32 pipe.c,
// test_NamedPipeHandleState; ntdll pipe.c, test_pipe_local_info): the name's
// instances now, from either end; a client whose server has gone: none.
TEST(MessageChannelConformance, InfoCountsTheNamesInstancesNow) {
    auto c = connect_pair("instances", {.max_instances = 5});
    std::error_code ec;
    EXPECT_EQ(c.server.info(ec).current_instances, 1u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.client.info(ec).current_instances, 1u);
    EXPECT_FALSE(ec) << ec.message();
    {
        auto second = test::create_instance(c.name, {.max_instances = 5});
        auto third = test::create_instance(c.name, {.max_instances = 5});
        EXPECT_EQ(c.client.info(ec).current_instances, 3u);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(second.info(ec).current_instances, 3u);
        EXPECT_FALSE(ec) << ec.message();
    }
    EXPECT_EQ(c.server.info(ec).current_instances, 1u) << "closed instances are gone";
    EXPECT_FALSE(ec) << ec.message();
    c.server.close();
    EXPECT_EQ(c.client.info(ec).current_instances, 0u) << "the server has gone";
    EXPECT_FALSE(ec) << ec.message();
}

TEST(MessageChannelConformance, TheClientKnowsItsServersProcessAndUser) {
    auto c = connect_pair("server-credentials");
    std::error_code ec;
    const auto pid = c.client.server_process_id(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(pid, c.server.server_process_id(ec)) << "both ends name the server's process";
    EXPECT_GT(pid, 0);
    EXPECT_EQ(c.client.server_user(ec), current_user());
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.server.server_user(ec), current_user());
}

TEST(MessageChannelConformance, AClientMayAskForTheServersUser) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a user name is the server host's; a remote client reaches the gateway user's pipes (docs/gateway.md)");
    const auto name = test::unique_pipe_name("server-user");
    // Two instances: on Windows the check is made once connected, so a refused open has used one.
    auto first = test::create_instance(name);
    auto second = test::create_instance(name);
    ClientOptions theirs;
    theirs.server_user = "pipeslot-no-such-user";
    EXPECT_EQ(open_error(name, theirs), errc::not_found) << "no pipe of that name is that user's";
    ClientOptions mine;
    mine.server_user = current_user();
    auto client = test::open_channel(name, mine);
    EXPECT_TRUE(client.is_open()) << "this user's own server";
}

TEST(MessageChannelConformance, TheServerKnowsItsClientsProcessAndUser) {
    auto c = connect_pair("credentials");
    send_text(c.client, "hello");  // Windows impersonates a client only once it has read from it
    receive_text(c.server, 16);
    std::error_code ec;
    const auto pid = c.server.client_process_id(ec);
    EXPECT_FALSE(ec) << ec.message();
    Process none;
    auto self = Process::spawn(test::child("exit", {"0"}));  // a pid that is not ours, to compare
    EXPECT_NE(pid, self.id());
    self.wait();
    EXPECT_GT(pid, 0);
    const auto user = c.server.client_user(ec);
    if (ec && test::native_under_wine()) GTEST_SKIP() << "Wine cannot impersonate a pipe client: " << ec.message();
    EXPECT_FALSE(ec) << ec.message();
    // Through a TLS gateway the client is who its certificate says (docs/gateway.md).
    EXPECT_EQ(user, test::remote_client_user().empty() ? current_user() : test::remote_client_user());
}

// GetNamedPipeClientComputerName fails with ERROR_PIPE_LOCAL on a local
// pipe: an instance without a client, one with a client on this computer,
// and a client's own end. A client that came over the network has the
// computer it came from (through the gateway on loopback: 127.0.0.1).
TEST(MessageChannelConformance, OnlyARemoteClientHasAComputerName) {
    const auto name = test::unique_pipe_name("computer");
    auto listening = test::create_instance(name);
    std::error_code ec;
    (void)listening.client_computer_name(ec);
    if (ec == errc::not_supported && test::native_under_wine())
        GTEST_SKIP() << "Wine has no GetNamedPipeClientComputerName (its stub aborts the process)";
    EXPECT_EQ(ec, errc::pipe_local) << ec.message();
    auto c = connect_pair("computer-connected");
    const auto computer = c.server.client_computer_name(ec);
    if (test::using_remote_clients()) {
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(computer, "127.0.0.1");
    } else {
        EXPECT_EQ(ec, errc::pipe_local) << ec.message();
        EXPECT_TRUE(computer.empty());
    }
}

// Wine's kernel32 pipe.c (test_namedpipe_process_id): either end can ask for
// both processes; after a disconnect the server end has no client process
// (ERROR_NOT_FOUND) but still its own, and the client knows neither
// (ERROR_PIPE_NOT_CONNECTED). A peer that merely closed leaves both known.
TEST(MessageChannelConformance, EitherEndKnowsBothProcessesUntilADisconnect) {
    PIPESLOT_SKIP_FOR_REMOTE_CLIENTS("a close or disconnect reaches the other host after the call returns (docs/gateway.md)");
    auto c = connect_pair("process-ids");
    std::error_code ec;
    const auto server_pid = c.server.server_process_id(ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.client.server_process_id(ec), server_pid);
    const auto client_pid = c.client.client_process_id(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_GT(client_pid, 0);
    EXPECT_EQ(c.server.client_process_id(ec), client_pid) << "both ends name the client's process";

    auto d = connect_pair("process-ids-closed");
    d.client.close();
    EXPECT_GT(d.server.client_process_id(ec), 0) << "closed is not disconnected: " << ec.message();
    EXPECT_FALSE(ec);

    c.server.disconnect(ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.server.server_process_id(ec), server_pid);
    EXPECT_FALSE(ec) << ec.message();
    if (test::native_under_wine()) GTEST_SKIP() << "Wine still reports a disconnected pipe's processes";
    c.server.client_process_id(ec);
    EXPECT_EQ(ec, errc::not_found) << "ERROR_NOT_FOUND";
    c.client.client_process_id(ec);
    EXPECT_EQ(ec, errc::not_connected);
    c.client.server_process_id(ec);
    EXPECT_EQ(ec, errc::not_connected);
}

TEST(MessageChannelConformance, InvalidArgumentsAreRejected) {
    auto c = connect_pair("invalid");
    std::error_code ec;
    std::vector<std::byte> none;
    std::vector<std::byte> buffer(8);
    c.client.receive(buffer, Timeout(-1ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    c.client.send(buffer, Timeout(-1ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    c.server.accept(Timeout(-1ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    c.client.transact(buffer, none, Timeout(-1ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    ClientOptions bad_wait;
    bad_wait.wait = Timeout(-5ms);
    EXPECT_EQ(open_error(c.name, bad_wait), errc::invalid_argument);

    for (unsigned bad : {0u, 256u, 1000u}) {
        ServerOptions options;
        options.max_instances = bad;
        test::ipc().create_instance(test::unique_pipe_name("bad-max"), options, ec);
        EXPECT_EQ(ec, errc::invalid_argument) << bad;
    }
    ServerOptions message_read_on_byte_pipe;
    message_read_on_byte_pipe.type = PipeType::byte;
    test::ipc().create_instance(test::unique_pipe_name("bad-mode"), message_read_on_byte_pipe, ec);
    EXPECT_EQ(ec, errc::invalid_argument);

    MessageChannel closed;
    closed.send(buffer, generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "a closed channel";
    closed.receive(buffer, generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    PipeInstance closed_instance;
    closed_instance.accept(generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    // The channel that got the bad calls still works.
    send_text(c.client, "fine");
    EXPECT_EQ(receive_text(c.server, 8).first, "fine");
}

// --- other processes ---------------------------------------------------------------

TEST(MessageChannelConformance, AClientInAnotherProcess) {
    PIPESLOT_SKIP_UNDER_FAKE("other processes");
    const auto name = test::unique_pipe_name("process");
    auto server = test::create_instance(name);
    auto client = Process::spawn(test::peer("echo-client", {name, "20"}));
    std::error_code ec;
    server.accept(generous, ec);  // the client may come before accept() or during it
    ASSERT_TRUE(!ec || ec == errc::already_connected) << ec.message();
    EXPECT_EQ(server.client_process_id(ec), client.id());
    for (int i = 0; i < 20; ++i) {
        const auto request = server.receive_message(generous, ec);
        ASSERT_FALSE(ec) << ec.message();
        server.send(test::as_bytes("echo:" + text_of(request)), generous, ec);
    }
    EXPECT_EQ(client.wait(generous, ec), 0);
}

TEST(MessageChannelConformance, AServerThatDiedLeavesNothingBehind) {
    PIPESLOT_SKIP_UNDER_FAKE("other processes");
    const auto name = test::unique_pipe_name("crashed");
    auto in = Pipe::create();
    auto out = Pipe::create();
    auto command = test::peer("serve-and-hang", {name});
    command.std_in = Stdio::from(std::move(in.read_end));
    command.std_out = Stdio::from(std::move(out.write_end));
    auto server = Process::spawn(std::move(command));
    std::vector<std::byte> ready(6);
    std::size_t have = 0;
    while (have < ready.size()) have += out.read_end.read(std::span(ready).subspan(have), generous);
    std::error_code ec;
    server.kill(ec);
    server.wait(generous, ec);
    EXPECT_EQ(open_error(name), errc::not_found) << "a dead server's instance cannot be opened";
    ServerOptions first;
    first.first_instance = true;
    auto replacement = test::ipc().create_instance(name, first, ec);
    EXPECT_FALSE(ec) << "its name is free again: " << ec.message();
}

TEST(MessageChannelConformance, APeerKilledMidMessageIsABrokenPipe) {
    PIPESLOT_SKIP_UNDER_FAKE("other processes");
    const auto name = test::unique_pipe_name("killed");
    auto server = test::create_instance(name);
    auto out = Pipe::create();
    auto command = test::peer("send-huge", {name, std::to_string(64 << 20)});
    command.std_out = Stdio::from(std::move(out.write_end));
    auto sender = Process::spawn(std::move(command));
    std::error_code ec;
    server.accept(generous, ec);
    std::vector<std::byte> line(10);
    out.read_end.read(line, generous, ec);  // "connected": it is writing now
    // Let it get part of the message out before it dies.
    std::vector<std::byte> part(1000);
    server.receive(part, generous, ec);
    EXPECT_EQ(ec, errc::more_data);
    sender.kill(ec);
    sender.wait(generous, ec);
    std::size_t got = 0;
    for (;;) {
        got += server.receive(part, generous, ec);
        if (ec != errc::more_data) break;
    }
    EXPECT_EQ(ec, errc::broken_pipe);
    EXPECT_LT(got, std::size_t{64} << 20);
}

}  // namespace
}  // namespace pipeslot
