// Mailslots across hosts for real: three network namespaces joined by a
// bridge (in a fourth), addresses from 198.51.100.0/24 (documentation range),
// a reader in each. Needs root; nothing touches the machine's own interfaces.
#include "../support/host_commands.hpp"
#include "../support/support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <unistd.h>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using ::testing::UnorderedElementsAre;

// Three hosts and the bridge between them; all removed on destruction.
class TestNetwork {
public:
    explicit TestNetwork(std::string& why) {
        const std::string prefix = "psl" + std::to_string(::getpid()) + "-";
        bridge_ = prefix + "br";
        if (::geteuid() != 0) {
            why = "needs root to create network namespaces";
            return;
        }
        if (test::run_command({"ip", "netns", "add", bridge_}) != 0) {
            why = "cannot create network namespaces here (ip netns add failed)";
            return;
        }
        ok_ = test::run_command({"ip", "-n", bridge_, "link", "add", "br0", "type", "bridge"}) == 0 &&
              test::run_command({"ip", "-n", bridge_, "link", "set", "br0", "up"}) == 0;
        for (int i = 1; ok_ && i <= 3; ++i) {
            const auto host = prefix + std::to_string(i);
            const auto port = "vb" + std::to_string(i);
            hosts_.push_back(host);
            ok_ = test::run_command({"ip", "netns", "add", host}) == 0 &&
                  test::run_command({"ip", "-n", host, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", bridge_}) == 0 &&
                  test::run_command({"ip", "-n", bridge_, "link", "set", port, "master", "br0", "up"}) == 0 &&
                  test::run_command({"ip", "-n", host, "addr", "add", address(i) + "/24", "dev", "eth0"}) == 0 &&
                  test::run_command({"ip", "-n", host, "link", "set", "eth0", "up"}) == 0 &&
                  test::run_command({"ip", "-n", host, "link", "set", "lo", "up"}) == 0;
            fs::create_directories(dir(i) / "runtime");
            fs::create_directories(dir(i) / "shared");
            fs::permissions(dir(i) / "runtime", fs::perms::owner_all);
            fs::permissions(dir(i) / "shared", fs::perms::all | fs::perms::sticky_bit);
        }
        if (!ok_) why = "setting up the namespaces failed";
    }
    ~TestNetwork() {
        for (const auto& h : hosts_) test::run_command({"ip", "netns", "del", h});
        if (!bridge_.empty()) test::run_command({"ip", "netns", "del", bridge_});
        std::error_code ignored;
        fs::remove_all(base(), ignored);
    }
    bool ok() const { return ok_; }
    static std::string address(int i) { return "198.51.100." + std::to_string(i); }

    // The peer helper on host i, with that host's own directories and only its eth0.
    Command peer_on(int i, std::vector<std::string> args) const {
        Command c;
        c.program = "ip";
        c.args = {"netns", "exec", hosts_[static_cast<std::size_t>(i - 1)], "env",
                  "PIPESLOT_MAILSLOT_INTERFACES=eth0", "PIPESLOT_MAILSLOT_PORT=13838",
                  "PIPESLOT_RUNTIME_DIR=" + (dir(i) / "runtime").string(),
                  "PIPESLOT_SHARED_DIR=" + (dir(i) / "shared").string(), test::peer_program()};
        c.args.insert(c.args.end(), args.begin(), args.end());
        return c;
    }

private:
    fs::path base() const { return fs::temp_directory_path() / ("pipeslot-netns-" + std::to_string(::getpid())); }
    fs::path dir(int i) const { return base() / std::to_string(i); }
    std::string bridge_;
    std::vector<std::string> hosts_;
    bool ok_ = false;
};

std::vector<std::string> lines_until_end(test::Helper& h) {
    std::vector<std::string> got;
    for (std::string line = h.line(); !line.empty(); line = h.line()) {
        got.push_back(line);
        if (line == "end") break;
    }
    return got;
}

TEST(MailslotNetwork, ABroadcastReachesEveryHostAndAHostMessageOnlyItsHost) {
    std::string why;
    TestNetwork net(why);
    if (!net.ok()) GTEST_SKIP() << why;
    const std::string slot = R"(\\.\mailslot\pipeslot\netns-test)";
    std::vector<test::Helper> readers;
    for (int i = 1; i <= 3; ++i) {
        readers.push_back(test::start_helper(net.peer_on(i, {"mailslot-collect", slot, "0", "20000"})));
        ASSERT_EQ(readers.back().line(), "ready") << "host " << i;
    }
    const auto send = [&](const std::string& to, const std::string& text) {
        auto c = net.peer_on(1, {"mailslot-send", to, text});
        EXPECT_EQ(Process::spawn(std::move(c)).wait(), 0) << to;
    };
    send(R"(\\*\mailslot\pipeslot\netns-test)", "to every host");
    send("\\\\" + TestNetwork::address(3) + R"(\mailslot\pipeslot\netns-test)", "to host 3");
    send(R"(\\*\mailslot\pipeslot\netns-test)", "end");
    EXPECT_THAT(lines_until_end(readers[1]), UnorderedElementsAre("to every host", "end"));
    EXPECT_THAT(lines_until_end(readers[2]), UnorderedElementsAre("to every host", "to host 3", "end"));
    for (auto& r : readers) {
        std::error_code ec;
        EXPECT_EQ(r.process.wait(test::generous, ec), 0) << ec.message();
    }
}

}  // namespace
}  // namespace pipeslot
