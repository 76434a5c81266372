// Windows clients' SMB opens reach pipeslot servers through a real smbd
// (docs/samba.md). The suite starts its own smbd, with a private smb.conf,
// state and socket directories under a temporary directory, inside a network
// namespace of its own (loopback only: no byte leaves it). The client is
// Impacket (tests/support/smb_client.py), an SMB2/3 implementation that is
// not Samba's, run in that namespace and opening \\127.0.0.1\pipe\NAME. The
// servers are this process's, publishing into the private np directory.
// Needs root (smbd, network namespaces); every wait is bounded.
#include "../support/host_commands.hpp"
#include "../support/support.hpp"
#include "../unit/npa_captures.hpp"

#include <gtest/gtest.h>

#include <pipeslot/gateway.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::generous;

constexpr const char* python = "/usr/bin/python3";  // Debian's, where python3-impacket is
constexpr const char* test_password = "pipeslot-smb-test";

// smbd in a network namespace of its own, and its private directories.
class SmbHost {
public:
    SmbHost() {
        if (::geteuid() != 0) {
            skip_ = "needs root: smbd and a network namespace";
            return;
        }
        const char* script = std::getenv("PIPESLOT_TEST_SMB_CLIENT");
        script_ = script ? script : "";
        if (test::run_command({"smbd", "--version"}) != 0 || script_.empty() ||
            test::run_command({python, "-c", "import impacket.smbconnection"}) != 0) {
            why_ = "smbd or python3-impacket is missing: scripts/setup installs them";
            return;
        }
        std::error_code ec;
        for (const char* d : {"private", "lock", "state", "cache", "pid", "binddns", "log", "ncalrpc/np"})
            fs::create_directories(base() / d, ec);
        fs::permissions(np_directory(), fs::perms::owner_all, ec);  // or smbd exits at start
        std::ofstream(conf()) << config();
        {
            ServerOptions probe;
            probe.reject_remote_clients = false;
            probe.publish_smb = true;
            probe.smb_directory = np_directory();
            (void)PipeInstance::create(test::unique_pipe_name("smb-probe"), probe, ec);
            if (ec == errc::not_supported) {
                skip_ = "built with -Dsmb=disabled";
                return;
            }
        }
        if (test::run_command({"ip", "netns", "add", ns()}) != 0 ||
            test::run_command({"ip", "-n", ns(), "link", "set", "lo", "up"}) != 0) {
            why_ = "cannot create a network namespace (ip netns add)";
            return;
        }
        namespace_made_ = true;
        if (!set_password("nobody", test_password)) {
            why_ = "smbpasswd failed";
            return;
        }
        std::string listing;
        test::run_command({"pdbedit", "-s", conf(), "-L", "-v", "-u", "nobody"}, &listing);
        std::istringstream lines(listing);
        for (std::string line; std::getline(lines, line);)
            if (line.rfind("User SID:", 0) == 0) nobody_sid_ = line.substr(line.find("S-1-"));
        Command smbd;
        smbd.program = "ip";
        smbd.args = {"netns", "exec", ns(), "smbd", "-F", "--no-process-group", "-s", conf(), "-d0"};
        smbd.std_in = Stdio::null();
        smbd.std_out = Stdio::null();
        smbd.std_err = Stdio::null();
        smbd_ = Process::spawn(std::move(smbd), ec);
        if (ec) {
            why_ = "cannot start smbd";
            return;
        }
        // Ready once it takes a login: bounded tries, each bounded by the client's own timeout.
        for (int i = 0; i < 60 && !ready_; ++i) {
            ready_ = client({}).status == 0;
            if (!ready_) std::this_thread::sleep_for(250ms);
        }
        if (!ready_) why_ = "smbd did not answer on 127.0.0.1:445 in its namespace";
    }
    ~SmbHost() {
        if (namespace_made_) test::remove_namespace(ns());  // smbd and its children with it
        std::error_code ec;
        if (smbd_.valid()) smbd_.wait(generous, ec);
        fs::remove_all(base(), ec);
    }
    SmbHost(const SmbHost&) = delete;
    SmbHost& operator=(const SmbHost&) = delete;

    const std::string& skip_reason() const { return skip_; }
    const std::string& failure() const { return why_; }
    std::string np_directory() const { return (base() / "ncalrpc" / "np").string(); }
    const std::string& nobody_sid() const { return nobody_sid_; }

    struct Run {
        int status = -1;
        std::vector<std::string> lines;
    };
    // The client's steps (smb_client.py) as an anonymous user, or as `user`.
    Run client(std::vector<std::string> steps, const std::string& user = {}, const std::string& password = {}) const {
        Command c = client_command(std::move(steps), user, password);
        const auto r = test::run_capturing(std::move(c));
        Run run{r.status, {}};
        std::istringstream lines(r.output);
        for (std::string line; std::getline(lines, line);) run.lines.push_back(line);
        return run;
    }
    Command client_command(std::vector<std::string> steps, const std::string& user = {},
                           const std::string& password = {}) const {
        Command c;
        c.program = "ip";
        c.args = {"netns", "exec", ns(), python, script_};
        if (!user.empty()) c.args.insert(c.args.end(), {"--user", user, "--password", password});
        c.args.push_back("127.0.0.1");
        c.args.insert(c.args.end(), steps.begin(), steps.end());
        return c;
    }

private:
    static fs::path base() { return fs::temp_directory_path() / ("pipeslot-smb-" + std::to_string(::getpid())); }
    static std::string ns() { return "pssmb" + std::to_string(::getpid()); }
    static std::string conf() { return (base() / "smb.conf").string(); }
    static std::string config() {
        const auto d = base().string();
        return "[global]\n"
               "interfaces = 127.0.0.1/8\nbind interfaces only = yes\nsmb ports = 445\n"
               "disable netbios = yes\nload printers = no\ndisable spoolss = yes\n"
               "private dir = " + d + "/private\nlock directory = " + d + "/lock\n"
               "state directory = " + d + "/state\ncache directory = " + d + "/cache\n"
               "pid directory = " + d + "/pid\nncalrpc dir = " + d + "/ncalrpc\n"
               "binddns dir = " + d + "/binddns\nlog file = " + d + "/log/%m.log\n"
               "passdb backend = tdbsam:" + d + "/private/passdb.tdb\n"
               "map to guest = Bad User\n"
               // Samba's own pipe servers are not started: every np socket here is a test's.
               "rpc start on demand helpers = no\n"
               "server min protocol = SMB2_02\n";
    }
    static bool set_password(const std::string& user, const std::string& password) {
        Command c;
        c.program = "smbpasswd";
        c.args = {"-c", conf(), "-a", "-s", user};
        c.std_out = Stdio::null();
        c.std_err = Stdio::null();
        auto h = test::start_helper(std::move(c));
        const std::string twice = password + "\n" + password + "\n";
        std::error_code ec;
        h.in.write(std::as_bytes(std::span(twice)), generous, ec);
        h.in.close();
        return !ec && h.process.wait(generous, ec) == 0;
    }

    std::string skip_, why_, script_, nobody_sid_;
    bool namespace_made_ = false, ready_ = false;
    Process smbd_;
};

SmbHost* host = nullptr;

class SmbClients : public ::testing::Test {
protected:
    static void SetUpTestSuite() { host = new SmbHost; }
    static void TearDownTestSuite() {
        delete host;
        host = nullptr;
    }
    void SetUp() override {
        if (!host->skip_reason().empty()) GTEST_SKIP() << host->skip_reason();
        ASSERT_TRUE(host->failure().empty()) << host->failure();
    }
    ServerOptions published(PipeType type = PipeType::message) const {
        ServerOptions o;
        o.type = type;
        o.read_mode = type == PipeType::message ? ReadMode::message : ReadMode::byte;
        o.reject_remote_clients = false;
        o.publish_smb = true;
        o.smb_directory = host->np_directory();
        return o;
    }
    static std::string leaf(const std::string& name) { return name.substr(name.rfind('\\') + 1); }
};

std::string text(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

void send_text(MessageChannel& c, const std::string& s) {
    std::error_code ec;
    c.send(std::as_bytes(std::span(s)), generous, ec);
    EXPECT_FALSE(ec) << ec.message();
}

// A server whose every instance answers each message with "echo:" and the
// message, and records what it received and whom it served.
struct EchoServer {
    std::mutex mutex;
    std::vector<std::string> received, users, computers;
    PipeServer server;

    EchoServer(const std::string& name, const ServerOptions& options, std::size_t instances) {
        std::error_code ec;
        server = PipeServer::start(
            name, options, instances,
            [this](PipeInstance& client) {
                std::error_code io;
                const auto user = client.client_user(io);
                const auto computer = client.client_computer_name(io);
                {
                    std::lock_guard lock(mutex);
                    users.push_back(user);
                    computers.push_back(io ? io.message() : computer);
                }
                for (;;) {
                    const auto m = client.receive_message(generous, io);
                    if (io) return;
                    {
                        std::lock_guard lock(mutex);
                        received.push_back(text(m));
                    }
                    send_text(client, "echo:" + text(m));
                }
            },
            ec);
        EXPECT_FALSE(ec) << ec.message();
    }
};

TEST_F(SmbClients, MessagesKeepTheirBoundariesBothWays) {
    const auto name = test::unique_pipe_name("smb-messages");
    EchoServer echo(name, published(), 2);
    const auto r = host->client({"open:" + leaf(name), "write:one", "write:two", "read:100", "read:100", "close"});
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(r.lines, (std::vector<std::string>{"opened", "wrote 3", "wrote 3", "read echo:one", "read echo:two", "closed"}));
    std::lock_guard lock(echo.mutex);
    EXPECT_EQ(echo.received, (std::vector<std::string>{"one", "two"})) << "each SMB write is one message";
}

TEST_F(SmbClients, APartialReadIsSuccessAndTheRestFollows) {
    // Windows says STATUS_BUFFER_OVERFLOW (ERROR_MORE_DATA) for the first
    // part; smbd turns it into success. The bytes are all there, in order.
    const auto name = test::unique_pipe_name("smb-partial");
    EchoServer echo(name, published(), 1);
    const auto r = host->client({"open:" + leaf(name), "write:hello there", "read:4", "read:100"});
    EXPECT_EQ(r.lines, (std::vector<std::string>{"opened", "wrote 11", "read echo", "read :hello there"}));
}

TEST_F(SmbClients, AMessageOf65535BytesGoesWholeAndALongerOneEndsThePipe) {
    const auto name = test::unique_pipe_name("smb-sizes");
    std::error_code ec;
    auto server = PipeServer::start(
        name, published(), 1,
        [](PipeInstance& client) {
            std::error_code io;
            (void)client.receive_message(generous, io);
            client.send(std::vector<std::byte>(65535, std::byte{'y'}), generous, io);
            (void)client.receive_message(generous, io);
            client.send(std::vector<std::byte>(65536, std::byte{'z'}), generous, io);
            (void)client.receive_message(generous, io);
        },
        ec);
    ASSERT_FALSE(ec);
    const auto r = host->client({"open:" + leaf(name), "write:a", "read-size:70000", "write:b", "read-size:70000"});
    ASSERT_EQ(r.lines.size(), 5u);
    EXPECT_EQ(r.lines[2], "read-size 65535");
    EXPECT_EQ(r.lines[4], "error STATUS_PIPE_DISCONNECTED") << "smbd's framing has no room for it";
}

TEST_F(SmbClients, ABytePipeIsAStream) {
    const auto name = test::unique_pipe_name("smb-bytes");
    std::error_code ec;
    auto server = PipeServer::start(
        name, published(PipeType::byte), 1,
        [](PipeInstance& client) {
            std::string got;
            std::vector<std::byte> buffer(64);
            std::error_code io;
            while (got.size() < 6 && !io) {
                const auto n = client.receive(buffer, generous, io);
                got.append(reinterpret_cast<const char*>(buffer.data()), n);
            }
            send_text(client, "[" + got.substr(0, 3));
            send_text(client, got.substr(3) + "]");
            (void)client.receive(buffer, generous, io);
        },
        ec);
    ASSERT_FALSE(ec);
    const auto r = host->client({"open:" + leaf(name), "write:abc", "write:def", "read-all:8"});
    EXPECT_EQ(r.lines, (std::vector<std::string>{"opened", "wrote 3", "wrote 3", "read [abcdef]"}));
}

TEST_F(SmbClients, TransactIsOneRequestAndItsReply) {
    const auto name = test::unique_pipe_name("smb-transact");
    EchoServer echo(name, published(), 1);
    const auto r = host->client({"open:" + leaf(name), "transact:question", "transact:again"});
    EXPECT_EQ(r.lines, (std::vector<std::string>{"opened", "transact echo:question", "transact echo:again"}));
}

// A connection handler that answers each client's first message only once
// `expected` clients are inside at once ("together:" + the message, or
// "alone:" + it if they never were), then waits for the client's next.
struct AnswerOnceAllAreIn {
    explicit AnswerOnceAllAreIn(int n) : expected(n) {}
    void operator()(PipeInstance& client) {
        std::error_code io;
        const auto m = client.receive_message(generous, io);
        std::unique_lock lock(mutex);
        ++inside;
        all_in.notify_all();
        const bool together = all_in.wait_for(lock, generous, [&] { return inside >= expected; });
        lock.unlock();
        send_text(client, (together ? "together:" : "alone:") + text(m));
        (void)client.receive_message(generous, io);
    }
    const int expected;
    std::mutex mutex;
    std::condition_variable all_in;
    int inside = 0;
};

TEST_F(SmbClients, SeveralClientsAtOnceEachWithAnInstanceAndTheBusyOneRefused) {
    constexpr int clients = 3;
    const auto name = test::unique_pipe_name("smb-several");
    AnswerOnceAllAreIn answer(clients);  // they are served at once
    std::error_code ec;
    ServerOptions options = published();
    options.max_instances = clients;
    auto server = PipeServer::start(name, options, clients, [&](PipeInstance& client) { answer(client); }, ec);
    ASSERT_FALSE(ec);
    std::vector<test::Helper> running;
    for (int i = 0; i < clients; ++i)
        running.push_back(test::start_helper(host->client_command(
            {"open:" + leaf(name), "write:c" + std::to_string(i), "read:100", "wait"})));
    for (int i = 0; i < clients; ++i) {
        EXPECT_EQ(running[i].line(), "opened");
        EXPECT_EQ(running[i].line(), "wrote 2");
        EXPECT_EQ(running[i].line(), "read together:c" + std::to_string(i));
        EXPECT_EQ(running[i].line(), "waiting");
    }
    // Every instance has its client: smbd can only close the next open (Windows: STATUS_PIPE_NOT_AVAILABLE).
    const auto busy = host->client({"open:" + leaf(name)});
    EXPECT_EQ(busy.lines, std::vector<std::string>{"error STATUS_CONNECTION_DISCONNECTED"});
    for (auto& h : running) {
        h.in.close();
        EXPECT_EQ(h.process.wait(generous, ec), 0);
    }
}

TEST_F(SmbClients, TheServerSeesTheUserSambaAuthenticated) {
    ASSERT_FALSE(host->nobody_sid().empty()) << "pdbedit names the test user's SID";
    const auto name = test::unique_pipe_name("smb-user");
    EchoServer echo(name, published(), 1);
    EXPECT_EQ(host->client({"open:" + leaf(name), "transact:x"}, "nobody", test_password).lines,
              (std::vector<std::string>{"opened", "transact echo:x"}));
    EXPECT_EQ(host->client({"open:" + leaf(name), "transact:y"}).lines,
              (std::vector<std::string>{"opened", "transact echo:y"}));
    std::lock_guard lock(echo.mutex);
    EXPECT_EQ(echo.users, (std::vector<std::string>{host->nobody_sid(), "S-1-5-7"}))
        << "the user's SID from Samba's SAM, then ANONYMOUS LOGON";
    EXPECT_EQ(echo.computers, (std::vector<std::string>{"127.0.0.1", "127.0.0.1"})) << "the address smbd saw";
}

TEST_F(SmbClients, AWrongPasswordIsRefusedBySambaAndTheServerSeesNothing) {
    const auto name = test::unique_pipe_name("smb-password");
    EchoServer echo(name, published(), 1);
    const auto r = host->client({"open:" + leaf(name)}, "nobody", "not-the-password");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.lines, std::vector<std::string>{"login error STATUS_LOGON_FAILURE"});
    std::lock_guard lock(echo.mutex);
    EXPECT_TRUE(echo.users.empty());
}

TEST_F(SmbClients, AServerThatStopsEndsItsClientsAndIsGone) {
    const auto name = test::unique_pipe_name("smb-stop");
    auto echo = std::make_unique<EchoServer>(name, published(), 1);
    auto client = test::start_helper(host->client_command(
        {"open:" + leaf(name), "transact:before", "wait", "write:after", "read:100"}));
    EXPECT_EQ(client.line(), "opened");
    EXPECT_EQ(client.line(), "transact echo:before");
    EXPECT_EQ(client.line(), "waiting");
    echo.reset();  // the server stops: its instances close
    EXPECT_FALSE(fs::exists(fs::path(host->np_directory()) / leaf(name))) << "its socket went with it";
    client.in.close();
    // smbd reports both as STATUS_PIPE_DISCONNECTED (Windows: the write ERROR_NO_DATA, the read ERROR_BROKEN_PIPE).
    EXPECT_EQ(client.line(), "error STATUS_PIPE_DISCONNECTED");
    EXPECT_EQ(client.line(), "error STATUS_PIPE_DISCONNECTED");
    std::error_code ec;
    EXPECT_EQ(client.process.wait(generous, ec), 0);
    EXPECT_EQ(host->client({"open:" + leaf(name)}).lines, std::vector<std::string>{"error STATUS_OBJECT_NAME_NOT_FOUND"});
}

TEST_F(SmbClients, APipeNobodyPublishedIsNotFound) {
    const auto name = test::unique_pipe_name("smb-unpublished");
    ServerOptions remote_only;
    remote_only.reject_remote_clients = false;  // reachable through a gateway, but not published
    EchoServer echo(name, remote_only, 1);
    EXPECT_EQ(host->client({"open:" + leaf(name)}).lines, std::vector<std::string>{"error STATUS_OBJECT_NAME_NOT_FOUND"});
    ServerOptions local_only = published();
    local_only.reject_remote_clients = true;
    std::error_code ec;
    (void)PipeInstance::create(name, local_only, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "a pipe that rejects remote clients is never published";
}

TEST_F(SmbClients, AServerPublishingElsewhereIsReachedThroughASymlinkInSmbdsDirectory) {
    // What root does for an unprivileged server: smbd's directory is root's alone.
    const auto name = test::unique_pipe_name("smb-symlink");
    const auto own = fs::temp_directory_path() / ("pipeslot-smb-own-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::create_directory(own, ec);
    fs::permissions(own, fs::perms::owner_all, ec);
    auto options = published();
    options.smb_directory = own.string();
    {
        EchoServer echo(name, options, 1);
        const auto link = fs::path(host->np_directory()) / leaf(name);
        fs::create_symlink(own / leaf(name), link, ec);
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_EQ(host->client({"open:" + leaf(name), "transact:via link"}).lines,
                  (std::vector<std::string>{"opened", "transact echo:via link"}));
        fs::remove(link, ec);
    }
    EXPECT_TRUE(fs::is_empty(own)) << "the server removed the socket it made";
    fs::remove_all(own, ec);
}

TEST_F(SmbClients, SomethingElseAtThePathIsNeitherReplacedNorRemoved) {
    const auto name = test::unique_pipe_name("smb-taken");
    const auto path = fs::path(host->np_directory()) / leaf(name);
    std::ofstream(path) << "not ours";
    std::error_code ec;
    (void)PipeInstance::create(name, published(), ec);
    EXPECT_EQ(ec, errc::name_in_use);
    EXPECT_TRUE(fs::exists(path));
    fs::remove(path, ec);
}

TEST_F(SmbClients, AnotherUsersProcessAtTheSocketGetsNothing) {
    // Only smbd (root) may say who its client is. A process of another user
    // that reaches the socket (made world-writable here on purpose) and
    // sends a well-formed request is closed on without a byte, and no
    // instance sees a client.
    const auto name = test::unique_pipe_name("smb-forged");
    EchoServer echo(name, published(), 1);
    const auto path = (fs::path(host->np_directory()) / leaf(name)).string();
    fs::permissions(path, fs::perms::all);
    fs::permissions(host->np_directory(), fs::perms::owner_all | fs::perms::others_exec);
    const std::string forge =
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])\n"
        "try:\n"
        "  s.sendall(bytes.fromhex(sys.argv[2])); s.sendall(b'\\x05\\x00hello'); print(len(s.recv(100)))\n"
        "except (ConnectionResetError, BrokenPipeError): print(0)\n";  // closed with the request unread (maybe before the second write)
    std::string hex;
    for (unsigned i = 0; i < test::npa_request_anonymous_len; ++i) {
        char two[3];
        std::snprintf(two, sizeof two, "%02x", test::npa_request_anonymous[i]);
        hex += two;
    }
    std::string out;
    const int status =
        test::run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", forge, path, hex}, &out);
    fs::permissions(host->np_directory(), fs::perms::owner_all);
    EXPECT_EQ(status, 0);
    EXPECT_EQ(out, "0\n") << "closed without an answer";
    std::lock_guard lock(echo.mutex);
    EXPECT_TRUE(echo.users.empty());
}

TEST_F(SmbClients, OneServerServesALocalAGatewayAndAnSmbClientAtOnce) {
    const auto name = test::unique_pipe_name("smb-three");
    AnswerOnceAllAreIn answer(3);
    std::error_code ec;
    auto server = PipeServer::start(name, published(), 3, [&](PipeInstance& client) { answer(client); }, ec);
    ASSERT_FALSE(ec);
    GatewayOptions gateway_options;
    gateway_options.address = "127.0.0.1";
    gateway_options.port = 0;
    gateway_options.plaintext_on_loopback = true;
    auto gateway = Gateway::start(gateway_options, ec);
    ASSERT_FALSE(ec) << ec.message();
    GatewayClientOptions plaintext;
    plaintext.plaintext_on_loopback = true;
    ASSERT_FALSE(set_gateway_client_options(plaintext));

    auto smb = test::start_helper(host->client_command({"open:" + leaf(name), "write:smb", "read:100", "wait"}));
    const auto ask = [](MessageChannel channel, std::string what) {
        send_text(channel, what);
        std::error_code io;
        auto answer = text(channel.receive_message(generous, io));
        return answer;
    };
    auto local = std::async(std::launch::async, [&] { return ask(test::open_channel(name), "local"); });
    ClientOptions through;
    through.gateway_port = gateway.port();
    auto remote = std::async(std::launch::async, [&] {
        return ask(test::open_channel("\\\\127.0.0.1\\pipe\\" + leaf(name), through), "gateway");
    });
    EXPECT_EQ(smb.line(), "opened");
    EXPECT_EQ(smb.line(), "wrote 3");
    EXPECT_EQ(smb.line(), "read together:smb");
    ASSERT_EQ(local.wait_for(generous), std::future_status::ready);
    ASSERT_EQ(remote.wait_for(generous), std::future_status::ready);
    EXPECT_EQ(local.get(), "together:local");
    EXPECT_EQ(remote.get(), "together:gateway");
    smb.in.close();
    EXPECT_EQ(smb.process.wait(generous, ec), 0);
    (void)set_gateway_client_options({});
}

}  // namespace
}  // namespace pipeslot
