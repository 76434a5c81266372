// What only the POSIX emulation has: its directories, its files, its signals,
// and other users. The portable behaviour is in conformance/.
#include "../support/support.hpp"
#include "posix/runtime_dir.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using test::generous;

struct TempDir {
    fs::path path;
    TempDir() {
        char name[] = "/tmp/pipeslot-posix-test-XXXXXX";
        path = ::mkdtemp(name);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

std::string runtime() {
    std::string dir;
    EXPECT_FALSE(posix::runtime_directory(posix::Scope::private_to_user, dir));
    return dir;
}

TEST(PosixBackend, PrivateDirectoryMustBeOursAndClosed) {
    TempDir t;
    const auto good = t.path / "good", open = t.path / "open", link = t.path / "link";
    ::mkdir(good.c_str(), 0700);
    ::mkdir(open.c_str(), 0700);
    ::chmod(open.c_str(), 0755);
    fs::create_directory_symlink(good, link);
    EXPECT_FALSE(posix::check_private_directory(good));
    EXPECT_EQ(posix::check_private_directory(open), errc::access_denied) << "others can enter";
    EXPECT_EQ(posix::check_private_directory(link), errc::access_denied) << "a symbolic link";
    if (::geteuid() == 0) {
        const auto theirs = t.path / "theirs";
        ::mkdir(theirs.c_str(), 0700);
        ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
        EXPECT_EQ(posix::check_private_directory(theirs), errc::access_denied) << "another user's";
    }
}

TEST(PosixBackend, SharedDirectoryMustBeSticky) {
    TempDir t;
    const auto sticky = t.path / "sticky", plain = t.path / "plain";
    ::mkdir(sticky.c_str(), 0700);
    ::chmod(sticky.c_str(), 01777);
    ::mkdir(plain.c_str(), 0700);
    ::chmod(plain.c_str(), 0777);
    EXPECT_FALSE(posix::check_shared_directory(sticky));
    EXPECT_EQ(posix::check_shared_directory(plain), errc::access_denied);
}

TEST(PosixBackend, SocketPathsOfThisRunExceedTheSocketLimit) {
    // main() chose a long runtime directory so that the whole suite runs
    // through the long-path route (/proc/self/fd/N/...).
    EXPECT_GT(runtime().size() + 1 + 34 + 1 + 21, sizeof(sockaddr_un::sun_path));
}

TEST(PosixBackend, HostileNamesStayInsideTheRuntimeDirectory) {
    const auto stem = test::unique_pipe_name("x");
    std::vector<PipeInstance> instances;
    for (const char* leaf : {"/../../../../tmp/escape", "..", "/", "a/b/c", "....//....//"}) {
        instances.push_back(PipeInstance::create(stem + leaf));
    }
    const std::regex ours(R"([pm]-[0-9a-f]{32}(\.lock)?)");
    for (const auto& entry : fs::directory_iterator(runtime())) {
        EXPECT_TRUE(std::regex_match(entry.path().filename().string(), ours)) << entry.path();
    }
    EXPECT_FALSE(fs::exists("/tmp/escape"));
}

TEST(PosixBackend, StaleInstancesAreReclaimedAndNothingElse) {
    const auto name = test::unique_pipe_name("stale");
    auto first = PipeInstance::create(name);
    const auto dir = fs::path(runtime()) / posix::name_key(PipeName::parse(name));
    ASSERT_TRUE(fs::is_directory(dir));
    // A crashed server's leftovers: an unlocked lock file and its socket.
    std::ofstream(dir / "bbbbbbbbbbbbbbbb.lock") << "in=1 out=1\n";
    const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    const auto sock_path = "/proc/self/fd/" + std::to_string(dir_fd) + "/bbbbbbbbbbbbbbbb.sock";
    std::strcpy(addr.sun_path, sock_path.c_str());
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(s);
    ::close(dir_fd);
    // Not ours: a regular file named like a socket, and anything else.
    std::ofstream(dir / "aaaaaaaaaaaaaaaa.sock") << "not a socket";
    std::ofstream(dir / "notes.txt") << "keep me";

    auto second = PipeInstance::create(name);
    EXPECT_FALSE(fs::exists(dir / "bbbbbbbbbbbbbbbb.lock"));
    EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "bbbbbbbbbbbbbbbb.sock")));
    EXPECT_TRUE(fs::exists(dir / "aaaaaaaaaaaaaaaa.sock"));
    EXPECT_TRUE(fs::exists(dir / "notes.txt"));
    fs::remove(dir / "aaaaaaaaaaaaaaaa.sock");
    fs::remove(dir / "notes.txt");
}

TEST(PosixBackend, ABrokenPipeLeavesNoSignalBehind) {
    struct sigaction current {};
    ::sigaction(SIGPIPE, nullptr, &current);
    ASSERT_EQ(current.sa_handler, SIG_DFL) << "the test must run with SIGPIPE's default action";
    auto pipe = Pipe::create();
    pipe.read_end.close();
    std::error_code ec;
    pipe.write_end.write(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::broken_pipe);
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

// Runs the peer helper as user `nobody` (root only).
bool can_run_as_nobody(std::string& why) {
    if (::geteuid() != 0) {
        why = "needs root to switch a child to another user";
        return false;
    }
    for (fs::path p = test::peer_program(); p != p.root_path(); p = p.parent_path()) {
        struct stat st;
        if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) {
            why = "user nobody cannot reach " + p.string();
            return false;
        }
    }
    return true;
}

int echo_client_as_nobody(const std::string& name) {
    auto c = test::peer("as-nobody", {"echo-client", name, "3"});
    c.std_out = Stdio::null();
    return Process::spawn(std::move(c)).wait();
}

TEST(PosixBackend, OtherUsersCannotConnectUnlessAllowed) {
    std::string why;
    if (!can_run_as_nobody(why)) GTEST_SKIP() << why;
    const auto name = test::unique_pipe_name("private");
    std::error_code ec;
    auto server = PipeServer::start(name, {}, 1, PipeServer::RequestHandler([](std::span<const std::byte> r) {
        auto reply = test::bytes_of("echo:");
        reply.insert(reply.end(), r.begin(), r.end());
        return reply;
    }), ec);
    ASSERT_FALSE(ec);
    EXPECT_EQ(echo_client_as_nobody(name), 2) << "nobody cannot open a private pipe";

    const auto open_name = test::unique_pipe_name("for-everyone");
    ServerOptions everyone;
    everyone.allow_other_users = true;
    auto open_server = PipeServer::start(open_name, everyone, 1, PipeServer::RequestHandler([](std::span<const std::byte> r) {
        auto reply = test::bytes_of("echo:");
        reply.insert(reply.end(), r.begin(), r.end());
        return reply;
    }), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(echo_client_as_nobody(open_name), 0) << "allow_other_users lets nobody in";
    ClientOptions wait_for_the_instance;  // the server may not have taken it back from nobody's client yet
    wait_for_the_instance.wait = generous;
    auto mine = MessageChannel::open(open_name, wait_for_the_instance, ec);
    EXPECT_FALSE(ec) << "its creator finds it too: " << ec.message();
}

}  // namespace
}  // namespace pipeslot
