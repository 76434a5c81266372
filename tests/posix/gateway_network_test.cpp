// Networked pipes between real hosts: three network namespaces joined by a
// bridge in a fourth (as namespace_test.cpp), on 198.51.100.0/24, a
// documentation range. Host 1 (198.51.100.1) runs a pipe server and its
// gateway (TLS 1.3 with the test PKI, tests/support/pki.hpp); hosts 2 and 3
// (.2, .3) run clients. Every process runs inside one of the namespaces (ip
// netns exec), so no byte goes near the machine's own interfaces, and every
// name is an address literal (no lookup). Needs root; every wait is bounded,
// and the namespaces and their processes go however a test ends.
#include "../support/host_commands.hpp"
#include "../support/pki.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::generous;

// The clients' dead-peer bound (PIPESLOT_GATEWAY_DEAD_PEER_MS), and what a
// vanished host's detection may take beyond it on a loaded machine.
constexpr auto dead_peer = 3000ms;
constexpr auto detection_slack = 5000ms;

// steady_clock is CLOCK_MONOTONIC, the same in every process and network namespace.
std::int64_t ms_of(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Three hosts on one bridge, 198.51.100.1-3, each with its own pipeslot
// directories; the namespaces, everything running in them and the
// directories are removed on destruction.
class HostNetwork {
public:
    explicit HostNetwork(std::string& why) : prefix_("psg" + std::to_string(::getpid()) + "-") {
        if (::geteuid() != 0) {
            why = "needs root to create network namespaces";
            return;
        }
        remove_stale_namespaces();
        if (test::run_command({"ip", "netns", "add", prefix_ + "br"}) != 0) {
            why = "cannot create network namespaces here (ip netns add failed)";
            return;
        }
        names_.push_back(prefix_ + "br");
        ok_ = test::run_command({"ip", "-n", bridge(), "link", "add", "br0", "type", "bridge"}) == 0 &&
              test::run_command({"ip", "-n", bridge(), "link", "set", "br0", "up"}) == 0;
        for (int i = 1; ok_ && i <= 3; ++i) {
            const auto ns = host(i);
            const auto port = "vb" + std::to_string(i);
            ok_ = test::run_command({"ip", "netns", "add", ns}) == 0;
            if (!ok_) break;
            names_.push_back(ns);
            ok_ = test::run_command({"ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", bridge()}) == 0 &&
                  test::run_command({"ip", "-n", bridge(), "link", "set", port, "master", "br0", "up"}) == 0 &&
                  test::run_command({"ip", "-n", ns, "addr", "add", address(i) + "/24", "dev", "eth0"}) == 0 &&
                  test::run_command({"ip", "-n", ns, "link", "set", "eth0", "up"}) == 0 &&
                  test::run_command({"ip", "-n", ns, "link", "set", "lo", "up"}) == 0;
            std::error_code ec;
            fs::create_directories(dir(i) / "runtime", ec);
            fs::create_directories(dir(i) / "shared", ec);
            fs::permissions(dir(i) / "runtime", fs::perms::owner_all, ec);
            fs::permissions(dir(i) / "shared", fs::perms::all | fs::perms::sticky_bit, ec);
        }
        if (!ok_) why = "setting up the namespaces failed";
    }
    ~HostNetwork() {
        for (const auto& ns : names_) test::remove_namespace(ns);
        std::error_code ignored;
        fs::remove_all(base(), ignored);
    }
    HostNetwork(const HostNetwork&) = delete;
    HostNetwork& operator=(const HostNetwork&) = delete;

    bool ok() const { return ok_; }
    static std::string address(int i) { return "198.51.100." + std::to_string(i); }
    std::string host(int i) const { return prefix_ + std::to_string(i); }
    std::string bridge() const { return prefix_ + "br"; }
    fs::path base() const { return fs::temp_directory_path() / ("pipeslot-gwnet-" + std::to_string(::getpid())); }

    // The peer helper on host i: that host's own directories, its own
    // network, and no gateway setting but `environment` (KEY=VALUE).
    Command peer_on(int i, const std::vector<std::string>& environment, const std::vector<std::string>& args) const {
        Command c;
        c.program = "ip";
        c.args = {"netns", "exec", host(i), "env"};
        for (const char* inherited : {"PIPESLOT_GATEWAY_PORT", "PIPESLOT_GATEWAY_CA_FILE", "PIPESLOT_GATEWAY_CERTIFICATE_FILE",
                                      "PIPESLOT_GATEWAY_KEY_FILE", "PIPESLOT_GATEWAY_PSK_IDENTITY", "PIPESLOT_GATEWAY_PSK_FILE",
                                      "PIPESLOT_GATEWAY_PLAINTEXT", "PIPESLOT_GATEWAY_DEAD_PEER_MS",
                                      "PIPESLOT_GATEWAY_CONNECT_TIMEOUT_MS"}) {
            c.args.push_back("-u");
            c.args.push_back(inherited);
        }
        c.args.insert(c.args.end(), {"PIPESLOT_MAILSLOT_INTERFACES=eth0", "PIPESLOT_RUNTIME_DIR=" + (dir(i) / "runtime").string(),
                                     "PIPESLOT_SHARED_DIR=" + (dir(i) / "shared").string()});
        c.args.insert(c.args.end(), environment.begin(), environment.end());
        c.args.push_back(test::peer_program());
        c.args.insert(c.args.end(), args.begin(), args.end());
        return c;
    }

    // Host i's only link (eth0) up or down: a cable pulled, or put back.
    bool set_link(int i, bool up) const { return test::run_command({"ip", "-n", host(i), "link", "set", "eth0", up ? "up" : "down"}) == 0; }
    // Host i's interface deleted (with its veth peer on the bridge): gone, not down.
    bool delete_link(int i) const { return test::run_command({"ip", "-n", host(i), "link", "del", "eth0"}) == 0; }
    // Host i's namespace deleted (ip netns del). Linux keeps a namespace while
    // a process is in it, so those are killed too: then it really goes, and
    // its veth pair with it.
    bool delete_host(int i) {
        const auto ns = host(i);
        const auto pids = test::pids_in_namespace(ns);
        const bool deleted = test::run_command({"ip", "netns", "del", ns}) == 0;
        for (const pid_t pid : pids) ::kill(pid, SIGKILL);
        if (deleted) std::erase(names_, ns);
        return deleted;
    }
    // The bridge's port for host i still exists (its namespace is not yet gone).
    bool bridge_port_exists(int i) const {
        return test::run_command({"ip", "-n", bridge(), "link", "show", "vb" + std::to_string(i)}) == 0;
    }

private:
    fs::path dir(int i) const { return base() / std::to_string(i); }
    // Namespaces of this test's pattern left by runs that died (their process is gone).
    static void remove_stale_namespaces() {
        std::string list;
        if (test::run_command({"ip", "netns", "list"}, &list) != 0) return;
        std::istringstream in(list);
        for (std::string line; std::getline(in, line);) {
            const auto name = line.substr(0, line.find(' '));
            if (name.rfind("psg", 0) != 0 || name.find('-') == std::string::npos) continue;
            const auto digits = name.substr(3, name.find('-') - 3);
            if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
            const auto pid = std::stol(digits);
            if (pid != ::getpid() && !fs::exists("/proc/" + digits)) test::run_command({"ip", "netns", "del", name});
        }
    }

    std::string prefix_;
    std::vector<std::string> names_;  // made, and not yet deleted
    bool ok_ = false;
};

// One answer of a remote-client helper: "CODE MS AT TEXT".
struct Answer {
    bool came = false;
    int code = -1;
    std::int64_t ms = 0;  // how long the command took
    std::int64_t at = 0;  // when it ended (steady_clock, in ms)
    std::int64_t ms_after(Clock::time_point t) const { return at - ms_of(t); }
    std::string text;
    std::error_code ec() const {
        if (!came) return std::make_error_code(std::errc::timed_out);
        if (code == 0) return {};
        return code >= 1000 ? std::error_code(code - 1000, std::system_category())
                            : std::error_code(code, pipeslot::category());
    }
};
std::ostream& operator<<(std::ostream& out, const Answer& a) {
    if (!a.came) return out << "(no answer)";
    return out << "[" << a.ec().message() << " after " << a.ms << " ms: '" << a.text.substr(0, 200) << "']";
}

// A peer helper in a namespace: killed (if still running) and waited for on destruction.
class Peer {
public:
    explicit Peer(Command command) : helper_(test::start_helper(std::move(command))) {}
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    ~Peer() { stop(); }

    // The next line it prints, or empty once `bound` has passed.
    std::string line(std::chrono::milliseconds bound = generous) {
        auto text = helper_.line(bound);
        seen_ += "\n  " + text;
        return text;
    }
    // Reads lines until one contains `part` (and returns it), or the bound passes (empty).
    std::string wait_for_line(const std::string& part, std::chrono::milliseconds bound = generous) {
        const auto until = Clock::now() + bound;
        while (Clock::now() < until) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            if (auto text = line(std::max(left, 1ms)); text.find(part) != std::string::npos) return text;
        }
        return {};
    }
    const std::string& seen() const { return seen_; }

    // remote-client: a command, and the answer to it.
    void tell(const std::string& command) {
        const auto text = command + "\n";
        std::error_code ec;
        helper_.in.write(test::as_bytes(text), generous, ec);
        EXPECT_FALSE(ec) << "telling '" << command << "': " << ec.message();
    }
    Answer answer(std::chrono::milliseconds bound = generous) {
        const auto text = line(bound);
        Answer a;
        std::istringstream in(text);
        if (!(in >> a.code >> a.ms >> a.at)) return a;
        a.came = true;
        std::size_t at = 0;
        for (int word = 0; word < 3 && at != std::string::npos; ++word) at = text.find(' ', at + (word > 0));
        if (at != std::string::npos) a.text = text.substr(at + 1);
        return a;
    }
    Answer ask(const std::string& command, std::chrono::milliseconds bound = generous) {
        tell(command);
        return answer(bound);
    }

    // Its exit status once it ends by itself (-1 if it has not within the bound).
    int exit_status(std::chrono::milliseconds bound = generous) {
        std::error_code ec;
        const int status = helper_.process.wait(bound, ec);
        return ec ? -1 : status;
    }

    void stop() {
        if (!helper_.process.valid()) return;
        helper_.in.close();
        std::error_code ec;
        if (helper_.process.wait(2s, ec); ec) {
            helper_.process.kill(ec);
            helper_.process.wait(generous, ec);
        }
        helper_.process = Process();
    }

private:
    test::Helper helper_;
    std::string seen_;
};

// When host 1's gateway-server printed a "log: AT ..." or "served: AT ..." line.
std::int64_t logged_at(const std::string& line) {
    const auto at = line.find(' ');
    return at == std::string::npos ? 0 : std::strtoll(line.c_str() + at + 1, nullptr, 10);
}

std::string remote(const std::string& local_name) {
    return "\\\\" + HostNetwork::address(1) + "\\pipe\\" + local_name.substr(local_name.rfind('\\') + 1);
}

// How a client proves itself and whom it trusts (PIPESLOT_GATEWAY_* variables).
struct ClientCredentials {
    std::string ca, certificate, key, psk_identity, psk_file;
    bool plaintext_loopback = false;
};
ClientCredentials trusted_client() {
    const auto& pki = test::test_pki();
    return {pki.client.ca, pki.client.certificate, pki.client.key, {}, {}};
}

// A test's hosts: the network, host 1's server and gateway, and clients.
class GatewayNetworkTest : public ::testing::Test {
protected:
    void SetUp() override {
        network_ = std::make_unique<HostNetwork>(why_);
        if (!network_->ok()) GTEST_SKIP() << why_;
        ASSERT_FALSE(test::test_pki().directory.empty()) << "cannot make test certificates (is openssl installed?)";
        name_ = test::unique_pipe_name("gwnet");
    }
    void TearDown() override {
        clients_.clear();
        server_.reset();
        network_.reset();
    }

    // Host 1: a pipe server (`instances`, at most that many) and a gateway
    // on 198.51.100.1 with the trusted certificate and client CA, plus `extra`
    // gateway-server settings. Its port, 0 on failure.
    std::uint16_t start_server(unsigned instances, std::vector<std::string> extra = {},
                               const std::string& allow = "198.51.100.0/24") {
        const auto& pki = test::test_pki();
        std::vector<std::string> args = {"gateway-server", name_, std::to_string(instances), "listen=" + HostNetwork::address(1),
                                         "port=0", "allow=" + allow, "certificate=" + pki.gateway.certificate,
                                         "key=" + pki.gateway.key, "client-ca=" + pki.gateway.ca};
        args.insert(args.end(), extra.begin(), extra.end());
        server_ = std::make_unique<Peer>(network_->peer_on(1, {}, args));
        const auto ready = server_->line();
        if (ready.rfind("ready ", 0) != 0) {
            ADD_FAILURE() << "host 1's gateway-server did not start:" << server_->seen();
            return 0;
        }
        port_ = static_cast<std::uint16_t>(std::stoul(ready.substr(6)));
        return port_;
    }

    // A remote-client helper on host i.
    Peer& client_on(int i, const ClientCredentials& c = trusted_client(), std::vector<std::string> environment = {}) {
        environment.insert(environment.end(), {"PIPESLOT_GATEWAY_PORT=" + std::to_string(port_),
                                               "PIPESLOT_GATEWAY_DEAD_PEER_MS=" + std::to_string(dead_peer.count()),
                                               "PIPESLOT_GATEWAY_CONNECT_TIMEOUT_MS=5000"});
        const auto add = [&](const char* key, const std::string& value) {
            if (!value.empty()) environment.push_back(std::string(key) + "=" + value);
        };
        add("PIPESLOT_GATEWAY_CA_FILE", c.ca);
        add("PIPESLOT_GATEWAY_CERTIFICATE_FILE", c.certificate);
        add("PIPESLOT_GATEWAY_KEY_FILE", c.key);
        add("PIPESLOT_GATEWAY_PSK_IDENTITY", c.psk_identity);
        add("PIPESLOT_GATEWAY_PSK_FILE", c.psk_file);
        if (c.plaintext_loopback) environment.push_back("PIPESLOT_GATEWAY_PLAINTEXT=loopback");
        clients_.push_back(std::make_unique<Peer>(network_->peer_on(i, environment, {"remote-client"})));
        return *clients_.back();
    }

    // A client on host i that has opened the pipe and made one exchange.
    Peer& connected_client_on(int i, const std::string& wait = "none") {
        auto& c = client_on(i);
        const auto opened = c.ask("open " + remote(name_) + " " + wait);
        EXPECT_EQ(opened.ec(), std::error_code()) << "host " << i << ": " << opened;
        const auto echo = c.ask("transact hello from " + std::to_string(i));
        EXPECT_EQ(echo.text, "echo:hello from " + std::to_string(i)) << echo;
        return c;
    }

    std::string why_, name_;
    std::uint16_t port_ = 0;
    std::unique_ptr<HostNetwork> network_;
    std::unique_ptr<Peer> server_;
    std::vector<std::unique_ptr<Peer>> clients_;
};

using GatewayNetwork = GatewayNetworkTest;

// --- 1. message mode across hosts ------------------------------------------------------

TEST_F(GatewayNetwork, MessagesKeepTheirBoundariesAndMoreDataAcrossHosts) {
    ASSERT_NE(start_server(4), 0);
    for (const int host : {2, 3}) {
        SCOPED_TRACE("client on host " + std::to_string(host));
        auto& c = client_on(host);
        ASSERT_EQ(c.ask("open " + remote(name_) + " none").ec(), std::error_code());
        // Three messages out before any is read: three replies, each whole and alone.
        for (const std::string m : {"a", "bb", "ccc"}) EXPECT_EQ(c.ask("send " + m).text, std::to_string(m.size()));
        for (const std::string m : {"a", "bb", "ccc"}) {
            const auto got = c.ask("receive 100 10000");
            EXPECT_EQ(got.ec(), std::error_code()) << got;
            EXPECT_EQ(got.text, "echo:" + m);
        }
        // A reply larger than the buffer: its first part and more_data, then the rest.
        const std::string long_message(100, 'x');
        EXPECT_EQ(c.ask("send " + long_message).text, "100");
        const auto first = c.ask("receive 16 10000");
        EXPECT_EQ(first.ec(), errc::more_data) << first;
        EXPECT_EQ(first.text, ("echo:" + long_message).substr(0, 16));
        const auto rest = c.ask("receive 200 10000");
        EXPECT_EQ(rest.ec(), std::error_code()) << rest;
        EXPECT_EQ(rest.text, ("echo:" + long_message).substr(16));
        // One message of several megabytes, over many TLS records, still one message.
        const auto big = c.ask("big 3000000");
        EXPECT_EQ(big.ec(), std::error_code()) << big;
        EXPECT_EQ(big.text, "match");
        // The server sees who the client is: the subject of its certificate.
        const auto who = c.ask("transact whoami");
        EXPECT_EQ(who.ec(), std::error_code()) << who;
        EXPECT_NE(who.text.find("CN=client-alice"), std::string::npos) << who;
    }
}

TEST_F(GatewayNetwork, TransactAndCallAcrossHosts) {
    ASSERT_NE(start_server(2), 0);
    auto& c = client_on(2);
    ASSERT_EQ(c.ask("open " + remote(name_) + " none").ec(), std::error_code());
    const auto transacted = c.ask("transact over the bridge");
    EXPECT_EQ(transacted.ec(), std::error_code()) << transacted;
    EXPECT_EQ(transacted.text, "echo:over the bridge");
    // The channel holds one instance; each call opens the other, and frees it again.
    for (int i = 0; i < 3; ++i) {
        const auto called = c.ask("call " + remote(name_) + " 10000 IpcSystem call " + std::to_string(i));
        EXPECT_EQ(called.ec(), std::error_code()) << called;
        EXPECT_EQ(called.text, "echo:IpcSystem call " + std::to_string(i));
        const auto simple = c.ask("call-simple " + remote(name_) + " 10000 CallNamedPipe " + std::to_string(i));
        EXPECT_EQ(simple.ec(), std::error_code()) << simple;
        EXPECT_EQ(simple.text, "echo:CallNamedPipe " + std::to_string(i));
    }
    // A call to a name host 1 does not have: not_found, from across the network.
    const auto missing = c.ask("call-simple \\\\198.51.100.1\\pipe\\no-such-pipe-here 5000 anyone");
    EXPECT_EQ(missing.ec(), errc::not_found) << missing;
}

// --- 2. busy, and waiting ----------------------------------------------------------------

TEST_F(GatewayNetwork, AOneInstancePipeIsBusyForTheOtherHostUntilItsClientCloses) {
    ASSERT_NE(start_server(1), 0);
    auto& holder = connected_client_on(2);
    auto& other = client_on(3);
    const auto busy = other.ask("open " + remote(name_) + " none");
    EXPECT_EQ(busy.ec(), errc::pipe_busy) << busy;
    const auto waited = other.ask("wait " + remote(name_) + " 500");
    EXPECT_EQ(waited.ec(), errc::timed_out) << waited;

    other.tell("open " + remote(name_) + " 30000");
    const auto early = other.answer(1500ms);
    EXPECT_FALSE(early.came) << "host 3 got in while host 2 holds the only instance: " << early;
    const auto closed = holder.ask("close");
    EXPECT_EQ(closed.ec(), std::error_code()) << closed;
    const auto got_in = other.answer(generous);
    const auto after_close = got_in.at - closed.at;
    ASSERT_EQ(got_in.ec(), std::error_code()) << got_in;
    EXPECT_LT(after_close, 5000) << "the free instance took " << after_close << " ms to reach host 3";
    std::printf("host 3's waiting open got the instance %lld ms after host 2 closed\n", static_cast<long long>(after_close));
    const auto echo = other.ask("transact now mine");
    EXPECT_EQ(echo.text, "echo:now mine") << echo;
}

// --- 3. TLS --------------------------------------------------------------------------------

TEST_F(GatewayNetwork, TlsRefusesStrangersAndWrongKeysAndTakesTheRightOnes) {
    const auto& pki = test::test_pki();
    ASSERT_NE(start_server(1, {"psk=alice-psk:" + pki.psk_file}), 0);
    const auto wrong_psk = (network_->base() / "wrong-psk.hex").string();
    std::ofstream(wrong_psk) << std::string(64, '5') << "\n";

    const auto open_as = [&](const std::string& who, const ClientCredentials& credentials) {
        SCOPED_TRACE(who);
        auto& c = client_on(2, credentials);
        auto opened = c.ask("open " + remote(name_) + " 5000");
        if (!opened.ec()) opened = c.ask("transact whoami");
        c.stop();  // its connection ends: the next client finds the one instance free
        return opened;
    };
    // A client certificate from another CA: the gateway refuses it.
    const auto stranger = open_as("stranger's certificate", {pki.client.ca, pki.stranger_client.certificate,
                                                              pki.stranger_client.key, {}, {}});
    EXPECT_EQ(stranger.ec(), errc::access_denied) << stranger;
    const auto gateway_refused = [&] {  // the gateway's side of each refusal: one line in its log
        EXPECT_NE(server_->wait_for_line("refused 198.51.100.2:", 5s).find("the TLS handshake failed"), std::string::npos)
            << server_->seen();
    };
    gateway_refused();
    // The gateway's certificate is not signed by the CA the client trusts: the client refuses it.
    const auto untrusted = open_as("trusting only the stranger CA", {pki.stranger_client.ca, pki.client.certificate,
                                                                      pki.client.key, {}, {}});
    EXPECT_EQ(untrusted.ec(), errc::access_denied) << untrusted;
    gateway_refused();
    // A pre-shared key of the right identity with the wrong bytes, and then the right one.
    const auto wrong = open_as("wrong PSK", {{}, {}, {}, "alice-psk", wrong_psk});
    EXPECT_EQ(wrong.ec(), errc::access_denied) << wrong;
    gateway_refused();
    const auto right = open_as("right PSK", {{}, {}, {}, "alice-psk", pki.psk_file});
    EXPECT_EQ(right.ec(), std::error_code()) << right;
    EXPECT_EQ(right.text, "psk:alice-psk");
    // And the trusted certificate, for comparison.
    const auto trusted = open_as("trusted certificate", trusted_client());
    EXPECT_EQ(trusted.ec(), std::error_code()) << trusted;
    EXPECT_NE(trusted.text.find("CN=client-alice"), std::string::npos) << trusted;
}

TEST_F(GatewayNetwork, PlaintextFromAnotherHostIsRefusedEvenWithPlaintextOnLoopback) {
    ASSERT_NE(start_server(1, {"plaintext-loopback=1"}), 0);
    // pipeslot's own client will not send a request in the clear off loopback.
    auto& c = client_on(2, ClientCredentials{{}, {}, {}, {}, {}, true});
    const auto opened = c.ask("open " + remote(name_) + " none");
    EXPECT_EQ(opened.ec(), errc::access_denied) << opened;
    // A client that does: the gateway answers access_denied, in the clear, and says why.
    const auto leaf = name_.substr(name_.rfind('\\') + 1);
    Peer raw(network_->peer_on(2, {}, {"raw-open", HostNetwork::address(1), std::to_string(port_), leaf}));
    EXPECT_EQ(raw.exit_status(), 10 + static_cast<int>(errc::access_denied));
    EXPECT_NE(server_->wait_for_line("refused 198.51.100.2:", 5s).find("plaintext, and TLS is required off loopback"),
              std::string::npos)
        << server_->seen();
}

// --- 4. the allow-list ---------------------------------------------------------------------

TEST_F(GatewayNetwork, AnAllowListOfOneHostRefusesTheOther) {
    ASSERT_NE(start_server(2, {}, "198.51.100.2/32"), 0);
    auto& refused = client_on(3);
    const auto denied = refused.ask("open " + remote(name_) + " none");
    EXPECT_EQ(denied.ec(), errc::access_denied) << denied;
    EXPECT_NE(server_->wait_for_line("refused 198.51.100.3:", 5s).find("not on the allow-list"), std::string::npos)
        << server_->seen();
    auto& allowed = connected_client_on(2);
    const auto echo = allowed.ask("transact allowed");
    EXPECT_EQ(echo.text, "echo:allowed") << echo;
}

// --- 5. a host that goes away --------------------------------------------------------------

// A client that waits in receive() when the server's host goes: broken_pipe
// within the client's dead-peer time (docs/gateway.md, "Errors a remote
// client gets"; docs/errors.md: ETIMEDOUT / EHOSTUNREACH on the TCP socket),
// with some slack for a loaded machine.
void expect_broken_within_bound(const Answer& a, std::int64_t detected_ms, const char* what) {
    EXPECT_EQ(a.ec(), errc::broken_pipe) << what << ": " << a;
    EXPECT_EQ(a.ec(), condition::peer_gone) << what << ": " << a;
    EXPECT_LT(detected_ms, (dead_peer + detection_slack).count()) << what;
    std::printf("%s: %s after %lld ms\n", what, a.ec().message().c_str(), static_cast<long long>(detected_ms));
}

TEST_F(GatewayNetwork, ServerHostLinkDownEndsAWaitingReceiveAndABlockedSend) {
    ASSERT_NE(start_server(2), 0);
    auto& receiver = connected_client_on(2);
    auto& sender = connected_client_on(3);
    receiver.tell("receive 4096 60000");
    // Messages of 1 MiB that nobody reads the echoes of: the sends soon wait for room.
    sender.tell("send-loop 1048576");
    ASSERT_EQ(sender.line(), "sending");
    std::this_thread::sleep_for(1500ms);
    const auto early = receiver.answer(1ms);
    ASSERT_FALSE(early.came) << early;

    const auto cut = Clock::now();
    ASSERT_TRUE(network_->set_link(1, false));
    const auto received = receiver.answer(dead_peer + detection_slack + 10s);
    const auto receive_ms = received.ms_after(cut);
    expect_broken_within_bound(received, receive_ms, "host 1's link down, host 2 waiting in receive");
    const auto sent = sender.answer(dead_peer + detection_slack + 10s);
    const auto send_ms = sent.ms_after(cut);
    // A send under way when the peer goes: broken_pipe if part of it had gone, else pipe_closing.
    EXPECT_EQ(sent.ec(), condition::peer_gone) << sent;
    EXPECT_TRUE(sent.ec() == errc::broken_pipe || sent.ec() == errc::pipe_closing) << sent;
    EXPECT_LT(send_ms, (dead_peer + detection_slack).count());
    std::printf("host 1's link down, host 3 blocked in send: %s after %lld ms (%s messages went whole)\n",
                sent.ec().message().c_str(), static_cast<long long>(send_ms), sent.text.c_str());
}

TEST_F(GatewayNetwork, ServerHostDeletedEndsAWaitingReceive) {
    ASSERT_NE(start_server(1), 0);
    auto& receiver = connected_client_on(2);
    receiver.tell("receive 4096 60000");
    ASSERT_FALSE(receiver.answer(500ms).came);

    // The namespace goes only with its processes (Linux keeps it while one
    // is in it): they are killed, and what their sockets' end sends (a FIN or
    // a reset) reaches host 2 before the interface goes, so this is quick.
    const auto gone = Clock::now();
    ASSERT_TRUE(network_->delete_host(1));
    const auto received = receiver.answer(dead_peer + detection_slack + 10s);
    expect_broken_within_bound(received, received.ms_after(gone), "host 1's namespace deleted, host 2 waiting in receive");
    // It is really gone: its veth pair with it.
    const auto until = Clock::now() + 10s;
    while (network_->bridge_port_exists(1) && Clock::now() < until) std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(network_->bridge_port_exists(1)) << "host 1's namespace is still there";
}

TEST_F(GatewayNetwork, ServerHostVanishingWithoutAWordEndsAWaitingReceive) {
    ASSERT_NE(start_server(1), 0);
    auto& receiver = connected_client_on(2);
    receiver.tell("receive 4096 60000");
    ASSERT_FALSE(receiver.answer(500ms).came);

    // As a host that loses its power: its interface goes first, so nothing
    // its processes' end sends (a FIN, a reset) gets out; then the rest of it.
    const auto gone = Clock::now();
    ASSERT_TRUE(network_->delete_link(1));
    ASSERT_TRUE(network_->delete_host(1));
    const auto received = receiver.answer(dead_peer + detection_slack + 10s);
    expect_broken_within_bound(received, received.ms_after(gone), "host 1 vanished silently, host 2 waiting in receive");
}

TEST_F(GatewayNetwork, AClientHostThatVanishesHasItsInstanceFreedForAnother) {
    ASSERT_NE(start_server(1, {"dead-peer-ms=" + std::to_string(dead_peer.count())}), 0);
    connected_client_on(2);
    auto& next = client_on(3);
    const auto busy = next.ask("open " + remote(name_) + " none");
    ASSERT_EQ(busy.ec(), errc::pipe_busy) << busy;

    const auto cut = Clock::now();
    ASSERT_TRUE(network_->set_link(2, false));
    next.tell("open " + remote(name_) + " 30000");
    const auto got_in = next.answer(generous);
    const auto got_in_ms = got_in.ms_after(cut);
    ASSERT_EQ(got_in.ec(), std::error_code()) << got_in;
    EXPECT_LT(got_in_ms, (dead_peer + detection_slack).count());
    // The gateway says why the first connection ended, and when.
    const auto ended = server_->wait_for_line("ended 198.51.100.2:", 1s);
    ASSERT_FALSE(ended.empty()) << server_->seen();
    EXPECT_NE(ended.find("the network connection failed"), std::string::npos) << ended;
    const auto gateway_ms = logged_at(ended) - ms_of(cut);
    EXPECT_LT(gateway_ms, (dead_peer + detection_slack).count());
    std::printf("host 2's link down: the gateway ended its connection after %lld ms; host 3's waiting open got the "
                "instance after %lld ms\n",
                static_cast<long long>(gateway_ms), static_cast<long long>(got_in_ms));
    const auto echo = next.ask("transact after the other host went");
    EXPECT_EQ(echo.text, "echo:after the other host went") << echo;
}

}  // namespace
}  // namespace pipeslot
