// The network gateway (pipeslot/gateway.hpp, backends/posix/gateway.cpp) and
// its tool, against hostile, slow and ordinary clients, in plaintext on
// loopback (TLS: gateway_tls_test.cpp). Every connection goes to 127.0.0.1
// only, to a gateway started here on a port of its own (port 0); every wait
// has a bound.
#include "../support/support.hpp"
#include "common/connect_protocol.hpp"
#include "common/framing.hpp"
#include "common/gateway_protocol.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::generous;

// --- helpers ----------------------------------------------------------------------------

// The gateway's log, kept by a callback that may outlive the test (shared).
class LogLines {
public:
    void add(std::string_view line) {
        std::lock_guard lock(mutex_);
        lines_.emplace_back(line);
        changed_.notify_all();
    }
    // Waits (bounded) for a line containing `part`.
    bool wait_for(const std::string& part, std::chrono::milliseconds bound = generous) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, bound, [&] { return has_locked(part); });
    }
    bool has(const std::string& part) {
        std::lock_guard lock(mutex_);
        return has_locked(part);
    }
    std::string text() {
        std::lock_guard lock(mutex_);
        std::string all;
        for (const auto& l : lines_) all += "\n  " + l;
        return all.empty() ? " (no lines)" : all;
    }

private:
    bool has_locked(const std::string& part) const {
        for (const auto& l : lines_)
            if (l.find(part) != std::string::npos) return true;
        return false;
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> lines_;
};

GatewayOptions options_logging_to(const std::shared_ptr<LogLines>& log) {
    GatewayOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.plaintext_on_loopback = true;  // no TLS credentials: loopback clients only, in plaintext
    o.log = [log](std::string_view line) { log->add(line); };
    return o;
}

// This process's clients reach a gateway on loopback in plaintext while it
// lives (set_gateway_client_options is process-wide), and the default after.
struct PlaintextClients {
    PlaintextClients() {
        GatewayClientOptions o;
        o.plaintext_on_loopback = true;
        EXPECT_FALSE(set_gateway_client_options(o));
    }
    ~PlaintextClients() { (void)set_gateway_client_options({}); }
    PlaintextClients(const PlaintextClients&) = delete;
    PlaintextClients& operator=(const PlaintextClients&) = delete;
};

// Polls a condition the gateway offers no event for (its connection count), bounded.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds bound = generous) {
    const auto until = Clock::now() + bound;
    while (!pred()) {
        if (Clock::now() >= until) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Runs f on a thread of its own, detached: a result that never comes fails
// the test (future.wait_for) instead of hanging it. f must own what it uses.
template <class F>
auto on_own_thread(F f) -> std::shared_future<decltype(f())> {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future().share();
    std::thread(std::move(task)).detach();
    return result;
}

bool ready_within(const std::shared_future<std::error_code>& f, std::chrono::milliseconds bound = generous) {
    return f.wait_for(bound) == std::future_status::ready;
}

// \\.\pipe\NAME as a client on another host names it: \\127.0.0.1\pipe\NAME.
std::string remote_name(const std::string& local) { return "\\\\127.0.0.1\\pipe\\" + local.substr(local.rfind('\\') + 1); }
std::string leaf_of(const std::string& local) { return local.substr(local.rfind('\\') + 1); }

ClientOptions through(std::uint16_t port, Timeout wait = Timeout::none()) {
    ClientOptions o;
    o.gateway_port = port;
    o.wait = wait;
    return o;
}

ServerOptions remote_ok(unsigned max_instances = unlimited_instances) {
    ServerOptions o;
    o.reject_remote_clients = false;
    o.max_instances = max_instances;
    return o;
}

PipeServer start_echo(const std::string& name, std::size_t instances, const ServerOptions& options) {
    std::error_code ec;
    auto server = PipeServer::start(
        name, options, instances,
        PipeServer::RequestHandler([](std::span<const std::byte> request) {
            auto reply = test::bytes_of("echo:");
            reply.insert(reply.end(), request.begin(), request.end());
            return reply;
        }),
        ec);
    EXPECT_FALSE(ec) << ec.message();
    return server;
}

// One transact on an open channel; empty on success, else what went wrong.
std::string echo_exchange(MessageChannel& channel, const std::string& request) {
    std::vector<std::byte> reply(request.size() + 16);
    std::error_code ec;
    const auto n = channel.transact(test::as_bytes(request), reply, generous, ec);
    if (ec) return "transact: " + ec.message();
    const auto got = test::text_of(std::span(reply).first(n));
    return got == "echo:" + request ? std::string() : "wrong reply: " + got;
}

// Open through the gateway, transact, close.
std::string remote_exchange(const std::string& name, std::uint16_t port, const std::string& request,
                            Timeout wait = generous) {
    std::error_code ec;
    auto channel = MessageChannel::open(remote_name(name), through(port, wait), ec);
    if (ec) return "open: " + ec.message();
    return echo_exchange(channel, request);
}

// A plain TCP client of the gateway, on loopback.
class RawClient {
public:
    enum class Read { ok, closed, timed_out, failed };

    explicit RawClient(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) error_ = errno;
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;
    ~RawClient() { close(); }

    bool connected() const { return fd_ >= 0 && error_ == 0; }
    int error() const { return error_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    void shut_write() { ::shutdown(fd_, SHUT_WR); }

    // How the gateway's log names this client: "127.0.0.1:PORT".
    std::string who() const {
        sockaddr_in a{};
        socklen_t size = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &size);
        return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    }

    bool send_all(std::span<const std::byte> bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            bytes = bytes.subspan(static_cast<std::size_t>(n));
        }
        return true;
    }
    bool send_text(const std::string& s) { return send_all(test::as_bytes(s)); }

    // Exactly into.size() bytes, unless the connection ends (a close or a
    // reset: closed) or the bound passes first. `got` says how many came.
    Read read_exactly(std::span<std::byte> into, std::chrono::milliseconds bound, std::size_t* got = nullptr) {
        const auto until = Clock::now() + bound;
        std::size_t have = 0;
        const auto done = [&](Read r) {
            if (got) *got = have;
            return r;
        };
        while (have < into.size()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
            if (left <= 0) return done(Read::timed_out);
            pollfd p{fd_, POLLIN, 0};
            const int ready = ::poll(&p, 1, static_cast<int>(left));
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return done(Read::failed);
            if (ready == 0) continue;
            const ssize_t n = ::recv(fd_, into.data() + have, into.size() - have, MSG_DONTWAIT);
            if (n > 0) have += static_cast<std::size_t>(n);
            else if (n == 0 || errno == ECONNRESET) return done(Read::closed);
            else if (errno != EINTR && errno != EAGAIN) return done(Read::failed);
        }
        return done(Read::ok);
    }

    // The gateway closes this connection (within the bound) without sending anything more.
    ::testing::AssertionResult closed_without_more(std::chrono::milliseconds bound = generous) {
        std::byte b{};
        std::size_t got = 0;
        switch (read_exactly(std::span(&b, 1), bound, &got)) {
        case Read::closed: return ::testing::AssertionSuccess();
        case Read::ok: return ::testing::AssertionFailure() << "it sent more bytes";
        case Read::timed_out: return ::testing::AssertionFailure() << "still open after the bound";
        case Read::failed: break;
        }
        return ::testing::AssertionFailure() << "recv failed: " << std::strerror(errno);
    }

    // Nothing to read and not closed, right now.
    bool quiet_now() const {
        pollfd p{fd_, POLLIN | POLLRDHUP, 0};
        return ::poll(&p, 1, 0) == 0;
    }

private:
    int fd_ = -1;
    int error_ = 0;
};

// The gateway's answer: an open_reply frame, decoded; nullopt (with a test failure) if not one.
std::optional<detail::OpenReply> read_reply(RawClient& c, std::vector<std::byte>* raw = nullptr) {
    std::array<std::byte, detail::frame_header_size> head{};
    const auto r = c.read_exactly(head, generous);
    if (r != RawClient::Read::ok) {
        ADD_FAILURE() << "no reply header (" << (r == RawClient::Read::closed ? "closed" : "timed out or failed") << ")";
        return std::nullopt;
    }
    const auto header = detail::decode_header(head);
    if (!header || header->kind != detail::FrameKind::open_reply || header->length < detail::open_reply_size) {
        ADD_FAILURE() << "not an open_reply header";
        return std::nullopt;
    }
    std::vector<std::byte> payload(header->length);
    if (c.read_exactly(payload, generous) != RawClient::Read::ok) {
        ADD_FAILURE() << "the reply's payload did not come whole";
        return std::nullopt;
    }
    if (raw) {
        raw->assign(head.begin(), head.end());
        raw->insert(raw->end(), payload.begin(), payload.end());
    }
    const auto reply = detail::decode_open_reply(payload);
    EXPECT_TRUE(reply) << "the open_reply payload does not decode";
    return reply;
}

// A refusal: an open_reply with `expected`, then the gateway closes the connection.
void expect_refused(RawClient& c, errc expected, const std::string& what) {
    SCOPED_TRACE(what);
    const auto reply = read_reply(c);
    ASSERT_TRUE(reply);
    EXPECT_EQ(make_error_code(reply->result), make_error_code(expected));
    EXPECT_TRUE(c.closed_without_more());
}

std::vector<std::byte> request_bytes(const std::string& pipe, std::uint8_t version = detail::gateway_version) {
    detail::GatewayOpen open;
    open.version = version;
    open.name = pipe;
    open.request.wait_ms = 0;
    return detail::encode_gateway_open(open);
}

std::vector<std::byte> message_frame(const std::string& text) {
    const auto header = detail::encode_header({detail::FrameKind::message, static_cast<std::uint32_t>(text.size())});
    std::vector<std::byte> out(header.begin(), header.end());
    const auto body = test::as_bytes(text);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// --- hostile raw clients ---------------------------------------------------------------

TEST(Gateway, HostileRequestsAreRefusedWithTheReasonAndAClientStillGetsIn) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.request_timeout = generous;  // none of these is closed for being slow
    auto gateway = Gateway::start(options);
    const auto port = gateway.port();
    ASSERT_NE(port, 0);
    const auto name = test::unique_pipe_name("gw-hostile");
    auto server = start_echo(name, 2, remote_ok());

    {  // an HTTP request: not a pipeslot frame
        RawClient c(port);
        ASSERT_TRUE(c.connected()) << std::strerror(c.error());
        ASSERT_TRUE(c.send_text("GET / HTTP/1.0\r\n\r\n"));
        expect_refused(c, errc::protocol_error, "garbage");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": not a pipeslot gateway request")) << log->text();
    }
    {  // a well-formed header of another kind (a channel message)
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        const auto header = detail::encode_header({detail::FrameKind::message, 5});
        ASSERT_TRUE(c.send_all(header));
        expect_refused(c, errc::protocol_error, "another frame kind");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": not a pipeslot gateway request")) << log->text();
    }
    {  // the local open frame, as a broker takes it
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(detail::encode_open({})));
        expect_refused(c, errc::protocol_error, "a local open frame");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": not a pipeslot gateway request")) << log->text();
    }
    {  // a header whose reserved bytes are set
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        auto bytes = request_bytes(leaf_of(name));
        bytes[2] = std::byte{1};
        ASSERT_TRUE(c.send_all(bytes));
        expect_refused(c, errc::protocol_error, "reserved header bytes");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": not a pipeslot gateway request")) << log->text();
    }
    {  // a gateway_open header with a length past the largest request
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        const auto header = detail::encode_header(
            {detail::FrameKind::gateway_open, static_cast<std::uint32_t>(detail::max_gateway_open_payload + 1)});
        ASSERT_TRUE(c.send_all(header));
        expect_refused(c, errc::protocol_error, "an oversized length");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": not a pipeslot gateway request")) << log->text();
    }
    {  // a valid header, part of its payload, then the client's end closes: no answer
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        const auto bytes = request_bytes(leaf_of(name));
        ASSERT_TRUE(c.send_all(std::span(bytes).first(detail::frame_header_size + 5)));
        c.shut_write();
        EXPECT_TRUE(c.closed_without_more()) << "the gateway closes a request cut short, unanswered";
    }
    {  // the same, closed at once for good
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        const auto bytes = request_bytes(leaf_of(name));
        ASSERT_TRUE(c.send_all(std::span(bytes).first(detail::frame_header_size + 3)));
        c.close();
        EXPECT_TRUE(eventually([&] { return gateway.connections() == 0; })) << "its connection ends";
    }
    {  // the start of a TLS handshake, to a gateway without TLS credentials: closed unanswered
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        const std::array<std::byte, 5> record{std::byte{0x16}, std::byte{0x03}, std::byte{0x01}, std::byte{0x00},
                                              std::byte{0x40}};
        ASSERT_TRUE(c.send_all(record));
        EXPECT_TRUE(c.closed_without_more());
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": TLS, and this gateway has no TLS credentials"))
            << log->text();
    }
    {  // another gateway protocol version
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(request_bytes(leaf_of(name), detail::gateway_version + 1)));
        expect_refused(c, errc::not_supported, "version");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": gateway protocol version " +
                                  std::to_string(detail::gateway_version + 1)))
            << log->text();
    }
    {  // the request's reserved bytes (1-3 of the payload) set
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        auto bytes = request_bytes(leaf_of(name));
        bytes[detail::frame_header_size + 3] = std::byte{0x80};
        ASSERT_TRUE(c.send_all(bytes));
        expect_refused(c, errc::protocol_error, "reserved request bytes");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": a malformed request")) << log->text();
    }
    {  // the embedded open request claims to be a remote one already
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        auto bytes = request_bytes(leaf_of(name));
        detail::OpenRequest remote;
        remote.remote = true;
        const auto local = detail::encode_open(remote);
        std::memcpy(bytes.data() + detail::frame_header_size + 4, local.data() + detail::frame_header_size,
                    detail::open_request_size);
        ASSERT_TRUE(c.send_all(bytes));
        expect_refused(c, errc::protocol_error, "remote flag set");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": a malformed request")) << log->text();
    }
    {  // a NUL in the name
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(request_bytes(std::string("a\0b", 3))));
        expect_refused(c, errc::protocol_error, "NUL in the name");
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": a malformed request")) << log->text();
    }
    // Names that are not pipe names: invalid_name (the gateway does not log these).
    for (const auto& bad : {std::string("a\\b"), std::string("\xff\xfe"), std::string(257, 'x')}) {
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(request_bytes(bad)));
        expect_refused(c, errc::invalid_name, "bad name of " + std::to_string(bad.size()) + " bytes");
    }
    {  // a pipe that does not exist: the local answer
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(request_bytes(leaf_of(test::unique_pipe_name("gw-missing")))));
        expect_refused(c, errc::not_found, "no such pipe");
    }
    {  // and a well-formed request by hand, its first message right behind it: connected, then the channel
        RawClient c(port);
        ASSERT_TRUE(c.connected());
        auto bytes = request_bytes(leaf_of(name));
        const auto first = message_frame("right behind");
        bytes.insert(bytes.end(), first.begin(), first.end());
        ASSERT_TRUE(c.send_all(bytes));
        const auto reply = read_reply(c);
        ASSERT_TRUE(reply);
        EXPECT_FALSE(make_error_code(reply->result)) << make_error_code(reply->result).message();
        EXPECT_EQ(reply->type, PipeType::message);
        EXPECT_EQ(reply->server_pid, static_cast<std::uint32_t>(::getpid()));
        for (const std::string text : {"right behind", "by hand"}) {
            if (text != "right behind") {
                ASSERT_TRUE(c.send_all(message_frame(text)));
            }
            const auto expected = message_frame("echo:" + text);
            std::vector<std::byte> got(expected.size());
            ASSERT_EQ(c.read_exactly(got, generous), RawClient::Read::ok) << text;
            EXPECT_EQ(got, expected) << text;
        }
    }

    EXPECT_EQ(remote_exchange(name, port, "after all that"), "");
    EXPECT_TRUE(eventually([&] { return gateway.connections() == 0; })) << gateway.connections() << " left";
}

TEST(Gateway, AClientThatAsksNothingIsClosedAfterTheRequestTimeout) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.request_timeout = 300ms;
    auto gateway = Gateway::start(options);
    {  // nothing at all
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        const auto started = Clock::now();
        EXPECT_TRUE(c.closed_without_more());
        EXPECT_GE(Clock::now() - started, 250ms) << "not before the timeout";
        EXPECT_TRUE(log->wait_for("closed " + c.who() + ": no request within the request timeout")) << log->text();
    }
    {  // a header and half the payload, then nothing
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        const auto bytes = request_bytes("gw-never-finished");
        ASSERT_TRUE(c.send_all(std::span(bytes).first(bytes.size() / 2)));
        EXPECT_TRUE(c.closed_without_more());
        EXPECT_TRUE(log->wait_for("closed " + c.who() + ": no request within the request timeout")) << log->text();
    }
    {  // a request dribbled a byte at a time: the timeout is for the whole request, not for each byte
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        const auto bytes = request_bytes(std::string(200, 'd'));
        const auto started = Clock::now();
        std::size_t sent = 0;
        bool closed = false;
        while (!closed && sent < bytes.size()) {
            if (!c.send_all(std::span(bytes).subspan(sent++, 1))) break;  // a reset: closed
            std::byte b{};
            closed = c.read_exactly(std::span(&b, 1), 50ms) == RawClient::Read::closed;  // the pace
        }
        EXPECT_LT(sent, bytes.size()) << "the whole request went in, slowly, and was taken";
        EXPECT_LT(Clock::now() - started, 8s);
        EXPECT_TRUE(log->wait_for("closed " + c.who() + ": no request within the request timeout")) << log->text();
    }
    EXPECT_TRUE(eventually([&] { return gateway.connections() == 0; }));
}

// A client that hangs up before its request is whole, or one the gateway's
// stop cuts off, is not one whose request timeout ran out: the log does not say so.
TEST(Gateway, ARequestCutShortIsNotLoggedAsATimeout) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.request_timeout = generous;  // no timeout can run out in this test
    auto gateway = Gateway::start(options);
    const auto bytes = request_bytes("gw-cut-short");
    std::vector<std::string> clients;
    {  // half a request, then its end closes
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(std::span(bytes).first(detail::frame_header_size + 5)));
        c.shut_write();
        EXPECT_TRUE(c.closed_without_more());
        clients.push_back(c.who());
    }
    {  // half a header, then its end closes
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(std::span(bytes).first(3)));
        c.shut_write();
        EXPECT_TRUE(c.closed_without_more());
        clients.push_back(c.who());
    }
    {  // connected, then closed without a byte
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        c.shut_write();
        EXPECT_TRUE(c.closed_without_more());
        clients.push_back(c.who());
    }
    {  // half a request when the gateway stops
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send_all(std::span(bytes).first(detail::frame_header_size + 5)));
        ASSERT_TRUE(eventually([&] { return gateway.connections() == 1; }));
        gateway.stop();
        EXPECT_TRUE(c.closed_without_more());
        clients.push_back(c.who());
    }
    for (const auto& who : clients)
        EXPECT_FALSE(log->has("closed " + who + ": no request within the request timeout"))
            << who << " did not time out (request_timeout " << generous.count() << " s):" << log->text();
}

TEST(Gateway, StartRefusesWhatDoesNotParseOrATakenPort) {
    const auto refused = [](const std::function<void(GatewayOptions&)>& change) {
        GatewayOptions o;
        o.port = 0;
        o.plaintext_on_loopback = true;
        change(o);
        std::error_code ec;
        auto g = Gateway::start(o, ec);
        EXPECT_FALSE(g.is_running());
        return ec;
    };
    EXPECT_EQ(refused([](auto& o) { o.plaintext_on_loopback = false; }), errc::invalid_argument)
        << "neither TLS credentials nor plaintext: nothing could connect";
    EXPECT_EQ(refused([](auto& o) { o.address = "not an address"; }), errc::invalid_argument);
    EXPECT_EQ(refused([](auto& o) { o.address = "127.0.0.0/8"; }), errc::invalid_argument);
    EXPECT_EQ(refused([](auto& o) { o.allowed_clients = {"127.0.0.1/33"}; }), errc::invalid_argument);
    EXPECT_EQ(refused([](auto& o) { o.allowed_clients = {"localhost"}; }), errc::invalid_argument);
    EXPECT_EQ(refused([](auto& o) { o.max_connections = 0; }), errc::invalid_argument);
    EXPECT_EQ(refused([](auto& o) { o.request_timeout = 0ms; }), errc::invalid_argument);
    EXPECT_EQ(refused([](auto& o) { o.dead_peer_timeout = 0ms; }), errc::invalid_argument);

    auto first = Gateway::start([] {
        GatewayOptions o;
        o.port = 0;
        o.plaintext_on_loopback = true;
        return o;
    }());
    const auto port = first.port();
    EXPECT_EQ(refused([port](auto& o) { o.port = port; }), errc::network_error) << "the port is taken";
    first.stop();
    EXPECT_FALSE(first.is_running());
    EXPECT_EQ(first.port(), 0);
    EXPECT_EQ(first.connections(), 0u);
    EXPECT_TRUE(first.wait_idle(Timeout::none()));
    first.stop();  // again: nothing
}

TEST(Gateway, ASlowClientDoesNotStallAnother) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.request_timeout = generous;
    auto gateway = Gateway::start(options);
    const auto name = test::unique_pipe_name("gw-slow");
    auto server = start_echo(name, 2, remote_ok());

    RawClient slow(gateway.port());
    ASSERT_TRUE(slow.connected());
    const auto bytes = request_bytes(leaf_of(name));
    const auto half = bytes.size() / 2;
    ASSERT_TRUE(slow.send_all(std::span(bytes).first(half)));
    ASSERT_TRUE(eventually([&] { return gateway.connections() == 1; })) << "the gateway took the slow one";

    // Another client connects, opens and completes exchanges meanwhile.
    {
        std::error_code ec;
        auto channel = MessageChannel::open(remote_name(name), through(gateway.port(), generous), ec);
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_EQ(gateway.connections(), 2u);
        for (int i = 0; i < 5; ++i) EXPECT_EQ(echo_exchange(channel, "quick " + std::to_string(i)), "");
    }
    EXPECT_TRUE(slow.quiet_now()) << "the slow one is still connected, unanswered";

    // And the slow one, once it finishes its request, is served too.
    ASSERT_TRUE(slow.send_all(std::span(bytes).subspan(half)));
    const auto reply = read_reply(slow);
    ASSERT_TRUE(reply);
    EXPECT_FALSE(make_error_code(reply->result)) << make_error_code(reply->result).message();
    ASSERT_TRUE(slow.send_all(message_frame("at last")));
    const auto expected = message_frame("echo:at last");
    std::vector<std::byte> got(expected.size());
    ASSERT_EQ(slow.read_exactly(got, generous), RawClient::Read::ok);
    EXPECT_EQ(got, expected);
}

TEST(Gateway, AClientSendingOtherFramesOnItsChannelIsCutOffAndItsInstanceFreed) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto gateway = Gateway::start(options_logging_to(log));
    const auto name = test::unique_pipe_name("gw-bad-frames");
    auto server = start_echo(name, 1, remote_ok(1));
    RawClient c(gateway.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send_all(request_bytes(leaf_of(name))));
    const auto reply = read_reply(c);
    ASSERT_TRUE(reply);
    ASSERT_FALSE(make_error_code(reply->result)) << make_error_code(reply->result).message();
    // A control frame where only messages and a disconnect may come.
    ASSERT_TRUE(c.send_all(detail::encode_open({})));
    EXPECT_TRUE(c.closed_without_more());
    EXPECT_TRUE(log->wait_for("ended " + c.who() + " on " + leaf_of(name) + ": the client sent malformed frames"))
        << log->text();
    EXPECT_EQ(remote_exchange(name, gateway.port(), "next", generous), "") << "the instance serves the next client";
}

TEST(Gateway, ALargeMessageCrossesWholeBothWays) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto gateway = Gateway::start(options_logging_to(log));
    const auto name = test::unique_pipe_name("gw-large");
    auto server = start_echo(name, 1, remote_ok());
    std::error_code ec;
    auto channel = MessageChannel::open(remote_name(name), through(gateway.port(), generous), ec);
    ASSERT_FALSE(ec) << ec.message();
    const auto big = test::pattern_bytes(3 * 1024 * 1024 + 17);
    EXPECT_EQ(channel.send(big, generous, ec), big.size());
    ASSERT_FALSE(ec) << ec.message();
    const auto back = channel.receive_message(generous, ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(back.size(), big.size() + 5);
    EXPECT_EQ(test::text_of(std::span(back).first(5)), "echo:");
    EXPECT_TRUE(std::equal(big.begin(), big.end(), back.begin() + 5)) << "byte exact";
}

// --- policy --------------------------------------------------------------------------------

TEST(Gateway, AnAllowListWithoutLoopbackRefusesAndTellsNothingAboutThePipe) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.allowed_clients = {"198.51.100.0/24"};  // a documentation network: never loopback
    auto gateway = Gateway::start(options);
    const auto existing = test::unique_pipe_name("gw-allow-exists");
    const auto missing = test::unique_pipe_name("gw-allow-missing");
    auto server = start_echo(existing, 1, remote_ok());

    std::error_code to_existing, to_missing;
    MessageChannel::open(remote_name(existing), through(gateway.port()), to_existing);
    MessageChannel::open(remote_name(missing), through(gateway.port()), to_missing);
    EXPECT_EQ(to_existing, errc::access_denied) << to_existing.message();
    EXPECT_EQ(to_missing, to_existing) << "the same answer whether the pipe exists or not";
    EXPECT_TRUE(log->wait_for(": not on the allow-list")) << log->text();

    // Byte for byte the same reply, and the same for a client that asks nothing.
    std::vector<std::vector<std::byte>> replies;
    for (const auto& ask : {std::optional(leaf_of(existing)), std::optional(leaf_of(missing)),
                            std::optional<std::string>()}) {
        RawClient c(gateway.port());
        ASSERT_TRUE(c.connected());
        if (ask) {
            ASSERT_TRUE(c.send_all(request_bytes(*ask)));
        }
        std::vector<std::byte> raw;
        const auto reply = read_reply(c, &raw);
        ASSERT_TRUE(reply);
        EXPECT_EQ(make_error_code(reply->result), make_error_code(errc::access_denied));
        EXPECT_TRUE(c.closed_without_more());
        EXPECT_TRUE(log->wait_for("refused " + c.who() + ": not on the allow-list")) << log->text();
        replies.push_back(raw);
    }
    EXPECT_EQ(replies[0], replies[1]);
    EXPECT_EQ(replies[0], replies[2]);
    EXPECT_FALSE(log->has(leaf_of(existing))) << "the log never got as far as the name" << log->text();
}

TEST(Gateway, APipeThatRejectsRemoteClientsRefusesGatewayClients) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto gateway = Gateway::start(options_logging_to(log));
    const auto name = test::unique_pipe_name("gw-reject-remote");
    auto server = start_echo(name, 1, ServerOptions{});  // reject_remote_clients = true, the default
    std::error_code ec;
    MessageChannel::open(remote_name(name), through(gateway.port()), ec);
    EXPECT_EQ(ec, errc::access_denied) << ec.message();
    auto local = MessageChannel::open(name, ClientOptions{}, ec);
    EXPECT_FALSE(ec) << "a local client still gets in: " << ec.message();
}

TEST(Gateway, MaxConnectionsRefusesTheNextUntilOneCloses) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.max_connections = 2;
    auto gateway = Gateway::start(options);
    const auto name = test::unique_pipe_name("gw-max-conn");
    auto server = start_echo(name, 4, remote_ok());
    const auto port = gateway.port();

    std::error_code ec;
    auto first = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << ec.message();
    auto second = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(gateway.connections(), 2u);

    MessageChannel::open(remote_name(name), through(port, generous), ec);
    EXPECT_EQ(ec, errc::resource_exhausted) << ec.message();
    EXPECT_TRUE(log->wait_for(": 2 connections already")) << log->text();
    {
        RawClient raw(port);  // and a plain client is told so before it asks
        ASSERT_TRUE(raw.connected());
        expect_refused(raw, errc::resource_exhausted, "third, raw");
        EXPECT_TRUE(log->wait_for("refused " + raw.who() + ": 2 connections already")) << log->text();
    }
    EXPECT_EQ(echo_exchange(first, "still served"), "");
    EXPECT_EQ(echo_exchange(second, "still served"), "");

    first.close();
    ASSERT_TRUE(eventually([&] { return gateway.connections() == 1; })) << gateway.connections() << " connections";
    auto third = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << "one closed, a new one gets in: " << ec.message();
    EXPECT_EQ(echo_exchange(third, "in at last"), "");
    EXPECT_EQ(echo_exchange(second, "and still"), "");
}

// --- stopping ------------------------------------------------------------------------------

TEST(Gateway, StopEndsTheConnectedClientAndTheWaitingOne) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.request_timeout = generous;
    auto gateway = std::make_shared<Gateway>(Gateway::start(options));
    const auto port = gateway->port();
    const auto name = test::unique_pipe_name("gw-stop");
    auto server = start_echo(name, 1, remote_ok(1));

    std::error_code ec;
    auto connected = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(echo_exchange(connected, "before the stop"), "");

    // Another waits, forever, for the pipe's one instance.
    auto waiting = on_own_thread([remote = remote_name(name), port] {
        std::error_code open_ec;
        MessageChannel::open(remote, through(port, Timeout::forever()), open_ec);
        return open_ec;
    });
    ASSERT_TRUE(eventually([&] { return gateway->connections() == 2; })) << "the waiting client's connection";
    EXPECT_EQ(waiting.wait_for(0ms), std::future_status::timeout) << "it waits: the instance is taken";

    const auto started = Clock::now();
    auto stopped = on_own_thread([gateway] {  // owns the gateway: a stop that hangs fails here, not forever
        gateway->stop();
        return std::error_code();
    });
    ASSERT_TRUE(ready_within(stopped)) << "stop() did not return";
    EXPECT_LT(Clock::now() - started, 10s);
    EXPECT_FALSE(gateway->is_running());

    std::vector<std::byte> buffer(64);
    connected.receive(buffer, generous, ec);
    EXPECT_EQ(ec, condition::peer_gone) << ec.message();
    ASSERT_TRUE(ready_within(waiting)) << "the waiting open still hangs";
    EXPECT_TRUE(waiting.get()) << "the waiting open fails once the gateway is gone";

    std::error_code after;
    MessageChannel::open(remote_name(name), through(port), after);
    EXPECT_TRUE(after) << "no gateway on that port any more";
}

TEST(Gateway, AWaitingClientThatGoesAwayIsForgottenAndABoundedWaitEnds) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto options = options_logging_to(log);
    options.request_timeout = generous;
    auto gateway = Gateway::start(options);
    const auto port = gateway.port();
    const auto name = test::unique_pipe_name("gw-waiter-gone");
    auto server = start_echo(name, 1, remote_ok(1));
    std::error_code ec;
    auto holder = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << ec.message();

    // A bounded wait for the busy instance ends with pipe_busy.
    const auto started = Clock::now();
    MessageChannel::open(remote_name(name), through(port, 200ms), ec);
    EXPECT_EQ(ec, errc::pipe_busy) << ec.message();
    EXPECT_GE(Clock::now() - started, 190ms);

    {  // one asks to wait forever, then goes away
        RawClient waiter(port);
        ASSERT_TRUE(waiter.connected());
        detail::GatewayOpen open;
        open.name = leaf_of(name);
        open.request.wait_ms = detail::wait_forever_ms;
        ASSERT_TRUE(waiter.send_all(detail::encode_gateway_open(open)));
        ASSERT_TRUE(eventually([&] { return gateway.connections() == 2; }));
        EXPECT_TRUE(waiter.quiet_now()) << "it waits";
    }
    EXPECT_TRUE(eventually([&] { return gateway.connections() == 1; })) << "its wait ends with its connection";
    // The instance, once free, goes to the next client, not to the one that left.
    holder.close();
    EXPECT_EQ(remote_exchange(name, port, "mine", generous), "");
}

TEST(Gateway, StopAcceptingRefusesNewOnesAndWaitIdleWaitsForTheCarriedOnes) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto gateway = Gateway::start(options_logging_to(log));
    const auto port = gateway.port();
    const auto name = test::unique_pipe_name("gw-drain");
    auto server = start_echo(name, 2, remote_ok());
    std::error_code ec;
    auto carried = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << ec.message();

    gateway.stop_accepting();
    RawClient late(port);
    EXPECT_FALSE(late.connected()) << "nothing listens any more";
    EXPECT_EQ(echo_exchange(carried, "carried on"), "");
    EXPECT_FALSE(gateway.wait_idle(50ms)) << "one is still carried";
    carried.close();
    EXPECT_TRUE(gateway.wait_idle(generous));
    EXPECT_EQ(gateway.connections(), 0u);
}

// --- instances --------------------------------------------------------------------------------

// No extra hop (docs/gateway.md): a plaintext client of an instance in the
// gateway's own process is served on its own TCP connection. The gateway keeps
// no thread and no relay socket for it, yet counts it (and stop() ends it).
TEST(Gateway, AnInstanceInTheGatewaysProcessServesAPlaintextClientWithNoRelay) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto gateway = Gateway::start(options_logging_to(log));
    const auto name = test::unique_pipe_name("gw-no-hop");
    constexpr std::size_t clients = 8;
    auto server = start_echo(name, clients, remote_ok(clients));
    const auto threads_before = test::settled_thread_count();
    const auto handles_before = test::settled_handle_count();
    std::vector<MessageChannel> channels;
    for (std::size_t i = 0; i < clients; ++i) {
        std::error_code ec;
        channels.push_back(MessageChannel::open(remote_name(name), through(gateway.port(), generous), ec));
        ASSERT_FALSE(ec) << "open " << i << ": " << ec.message();
        ASSERT_EQ(echo_exchange(channels.back(), "hello " + std::to_string(i)), "");
    }
    EXPECT_EQ(gateway.connections(), clients);
    EXPECT_EQ(test::thread_count_back_to(threads_before), threads_before)
        << "a relayed client would hold a gateway thread; now: " << test::thread_names();
    EXPECT_EQ(test::open_handle_count() - handles_before, 2 * clients)
        << "each connection is its two TCP ends, no socket pair to a relay";
    for (auto& channel : channels) EXPECT_EQ(echo_exchange(channel, "again"), "");
    channels.resize(clients / 2);
    ASSERT_TRUE(eventually([&] { return gateway.connections() == clients / 2; })) << gateway.connections();
    gateway.stop();  // the rest end: each server sees its client go, each client its server
    for (auto& channel : channels) {
        std::vector<std::byte> buffer(16);
        std::error_code ec;
        channel.receive(buffer, generous, ec);
        EXPECT_EQ(ec, condition::peer_gone) << ec.message();
    }
    EXPECT_FALSE(log->has("ended")) << log->text();
}

// A handed client that leaves before its server accepts or reads is over for
// the gateway at once, as a relayed one is at its client's close.
TEST(Gateway, AHandedClientThatLeavesIsNoLongerCounted) {
    const PlaintextClients plaintext;
    auto gateway = Gateway::start(options_logging_to(std::make_shared<LogLines>()));
    const auto name = test::unique_pipe_name("gw-handed-leaves");
    auto instance = PipeInstance::create(name, remote_ok(1));  // never accepts
    {
        std::error_code ec;
        auto channel = MessageChannel::open(remote_name(name), through(gateway.port(), generous), ec);
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_EQ(gateway.connections(), 1u);
    }
    EXPECT_TRUE(eventually([&] { return gateway.connections() == 0; })) << gateway.connections();
    EXPECT_TRUE(gateway.wait_idle(generous));
}

TEST(Gateway, ARemoteClientsCloseFreesTheInstance) {
    const PlaintextClients plaintext;
    auto log = std::make_shared<LogLines>();
    auto gateway = Gateway::start(options_logging_to(log));
    const auto name = test::unique_pipe_name("gw-free-instance");
    auto server = start_echo(name, 1, remote_ok(1));
    for (int i = 0; i < 50; ++i) {
        std::error_code ec;
        // The close reaches the server through the gateway a moment later: wait for the instance.
        auto channel = MessageChannel::open(remote_name(name), through(gateway.port(), 10s), ec);
        ASSERT_FALSE(ec) << "open " << i << ": " << ec.message();
        ASSERT_EQ(echo_exchange(channel, "round " + std::to_string(i)), "");
    }
    EXPECT_FALSE(log->has("ended")) << log->text();
}

// --- resources --------------------------------------------------------------------------------

TEST(Gateway, StoppingLeavesNoDescriptorOrThread) {
    const PlaintextClients plaintext;
    const auto handles_before = test::settled_handle_count();
    const auto threads_before = test::settled_thread_count();
    const auto names_before = test::thread_names();
    {
        auto log = std::make_shared<LogLines>();
        auto options = options_logging_to(log);
        options.request_timeout = generous;
        auto gateway = Gateway::start(options);
        const auto port = gateway.port();
        const auto name = test::unique_pipe_name("gw-resources");
        auto server = start_echo(name, 1, remote_ok(1));
        std::error_code ec;
        auto connected = MessageChannel::open(remote_name(name), through(port, generous), ec);
        ASSERT_FALSE(ec) << ec.message();
        ASSERT_EQ(echo_exchange(connected, "hello"), "");
        {  // one that came and went
            ASSERT_EQ(remote_exchange(test::unique_pipe_name("gw-resources-none"), port, "x", Timeout::none()),
                      "open: " + make_error_code(errc::not_found).message());
        }
        RawClient idle(port);  // one that asks nothing
        ASSERT_TRUE(idle.connected());
        RawClient refused(port);  // one refused
        ASSERT_TRUE(refused.send_text("nonsense"));
        expect_refused(refused, errc::protocol_error, "refused");
        std::thread waiting([&] {  // one that waits for the busy instance
            std::error_code open_ec;
            MessageChannel::open(remote_name(name), through(port, Timeout::forever()), open_ec);
            EXPECT_TRUE(open_ec);
        });
        const bool all_in = eventually([&] { return gateway.connections() == 3; });
        EXPECT_TRUE(all_in) << gateway.connections() << " connections";
        gateway.stop();  // the waiting one's open returns: its thread ends
        waiting.join();
        EXPECT_TRUE(idle.closed_without_more());
        std::vector<std::byte> buffer(16);
        connected.receive(buffer, generous, ec);
        EXPECT_EQ(ec, condition::peer_gone) << ec.message();
    }
    EXPECT_EQ(test::handle_count_back_to(handles_before), handles_before) << "no descriptor left behind";
    EXPECT_EQ(test::thread_count_back_to(threads_before), threads_before)
        << "no thread left behind; before: " << names_before << "; after: " << test::thread_names();
}

// --- the tool -------------------------------------------------------------------------------------

const std::string& gateway_tool() {
    static const std::string path = test::tool_program("pipeslot-gateway");
    return path;
}
#define SKIP_WITHOUT_THE_TOOL()                            \
    if (!fs::exists(fs::u8path(gateway_tool())))           \
    GTEST_SKIP() << "the tools are not built (-Dtools=false)"

Command tool_command(std::vector<std::string> args) {
    Command c;
    c.program = gateway_tool();
    c.args = std::move(args);
    return c;
}

test::Finished run_tool(std::vector<std::string> args) {
    return test::run_capturing(tool_command(std::move(args)), test::Capture::std_err);
}

// Its port, read from its first line ("pipeslot-gateway: listening on 127.0.0.1 port N"); 0 if not there.
std::uint16_t listening_port(test::Helper& h) {
    const auto first = h.line();
    const auto at = first.rfind(" port ");
    if (first.rfind("pipeslot-gateway: listening on 127.0.0.1 port ", 0) != 0 || at == std::string::npos) {
        ADD_FAILURE() << "its first line: " << first;
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoul(first.substr(at + 6)));
}

// Ends the tool on the way out if a failed check left it running.
struct EndedOnExit {
    test::Helper& h;
    ~EndedOnExit() {
        std::error_code ec;
        h.process.wait(Timeout::none(), ec);
        if (ec == errc::timed_out) {
            h.process.kill(ec);
            h.process.wait(generous, ec);
        }
    }
};

void send_sigterm(test::Helper& h) { ASSERT_EQ(::kill(static_cast<pid_t>(h.process.id()), SIGTERM), 0); }

// Config files in a directory of this test's own, removed afterwards.
class ConfigFiles {
public:
    ConfigFiles()
        : directory_(fs::temp_directory_path() /
                     ("pipeslot-gateway-test-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
        fs::create_directories(directory_);
    }
    ~ConfigFiles() {
        std::error_code ignored;
        fs::remove_all(directory_, ignored);
    }
    std::string write(const std::string& text) {
        const auto path = directory_ / ("config-" + std::to_string(count_++) + ".conf");
        std::ofstream(path) << text;
        return path.string();
    }
    std::string missing() const { return (directory_ / "no-such.conf").string(); }

private:
    fs::path directory_;
    int count_ = 0;
};

TEST(Gateway, ToolServesAClientAndDrainsOnSigterm) {
    const PlaintextClients plaintext;
    SKIP_WITHOUT_THE_TOOL();
    auto command = tool_command(
        {"--port", "0", "--plaintext-loopback", "--request-timeout-ms", "500", "--drain-seconds", "120"});
    command.std_err = Stdio::null();
    auto h = test::start_helper(std::move(command));
    const EndedOnExit ended{h};
    const auto port = listening_port(h);
    ASSERT_NE(port, 0);
    const auto name = test::unique_pipe_name("gw-tool");
    auto server = start_echo(name, 2, remote_ok());
    std::error_code ec;
    auto client = MessageChannel::open(remote_name(name), through(port, generous), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(echo_exchange(client, "through the tool"), "");

    send_sigterm(h);
    // Once it has taken the signal it listens no more (a connect is refused)...
    const bool refused = eventually([&] {
        RawClient probe(port);
        return !probe.connected() && probe.error() == ECONNREFUSED;
    });
    EXPECT_TRUE(refused) << "it still takes connections after SIGTERM";
    // ...and the client it carries goes on: the tool waits for it.
    EXPECT_EQ(echo_exchange(client, "while draining"), "");
    h.process.wait(Timeout::none(), ec);
    EXPECT_EQ(ec, errc::timed_out) << "it does not exit while its client is connected";
    client.close();
    EXPECT_EQ(h.process.wait(generous, ec), 0) << ec.message();
    const auto last = h.line();
    EXPECT_NE(last.find("pipeslot-gateway: stopped ("), std::string::npos) << last;
    EXPECT_NE(last.find("all ended by their clients"), std::string::npos) << last;
}

TEST(Gateway, ToolHelpAndBadOptions) {
    SKIP_WITHOUT_THE_TOOL();
    const auto help = run_tool({"--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.output.find("usage: pipeslot-gateway"), std::string::npos) << help.output;
    EXPECT_NE(help.output.find("--request-timeout-ms"), std::string::npos) << help.output;

    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--no-such-option", "1"}, {"--port"}, {"--port", "65536"}, {"--port", "x"}, {"bare"},
             {"--max-connections", "0"}}) {
        const auto r = run_tool(args);
        EXPECT_EQ(r.status, 2) << args.front();
        EXPECT_NE(r.output.find("usage: pipeslot-gateway"), std::string::npos) << r.output;
    }
    const auto unknown = run_tool({"--no-such-option", "1"});
    EXPECT_NE(unknown.output.find("unknown option no-such-option"), std::string::npos) << unknown.output;
    // Neither TLS credentials nor --plaintext-loopback: nothing could connect.
    const auto useless = run_tool({"--port", "0"});
    EXPECT_EQ(useless.status, 2);
    EXPECT_NE(useless.output.find("nothing could connect"), std::string::npos) << useless.output;
}

TEST(Gateway, ToolConfigFileServesAndABadLineIsReportedWithItsNumber) {
    const PlaintextClients plaintext;
    SKIP_WITHOUT_THE_TOOL();
    ConfigFiles files;
    const auto good = files.write("# a gateway for the tests\nport = 0\n\nallow = 127.0.0.0/8   # loopback\n"
                                  "plaintext-loopback = true\nrequest-timeout-ms = 500\n");
    auto command = tool_command({"--config", good});
    command.std_err = Stdio::null();
    auto h = test::start_helper(std::move(command));
    const EndedOnExit ended{h};
    const auto port = listening_port(h);
    ASSERT_NE(port, 0);
    const auto name = test::unique_pipe_name("gw-tool-config");
    auto server = start_echo(name, 1, remote_ok());
    EXPECT_EQ(remote_exchange(name, port, "configured"), "");
    send_sigterm(h);
    std::error_code ec;
    EXPECT_EQ(h.process.wait(generous, ec), 0) << ec.message();

    const struct {
        std::string text;
        std::string problem;
    } bad[] = {
        {"port = 0\n# fine so far\nthis line has no equals sign\n", ":3: expected 'name = value'"},
        {"port = 0\nport = 70000\n", ":2: --port takes 0..65535"},
        {"\n\n\n\nno-such-setting = 1\n", ":5: unknown option no-such-setting"},
        {"port = 0\nplaintext-loopback = yes\n", ":2: plaintext-loopback takes true or false"},
    };
    for (const auto& b : bad) {
        const auto path = files.write(b.text);
        const auto r = run_tool({"--config", path});
        EXPECT_EQ(r.status, 2) << b.text;
        EXPECT_NE(r.output.find(path + b.problem), std::string::npos) << r.output;
    }
    const auto missing = run_tool({"--config", files.missing()});
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.output.find("cannot read " + files.missing()), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace pipeslot
