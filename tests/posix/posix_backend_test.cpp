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

// Without a gateway nothing of a pipe is reachable from another host: a
// server listens on UNIX sockets only. And a client without TLS credentials
// sends nothing off loopback: a remote name is access_denied before any
// connection (docs/gateway.md).
TEST(PosixBackend, NoPipeIsReachableFromTheNetwork) {
    std::error_code ec;
    MessageChannel::open(R"(\\198.51.100.7\pipe\anything)", {}, ec);
    EXPECT_EQ(ec, errc::access_denied);
    GatewayClientOptions plaintext;
    plaintext.plaintext_on_loopback = true;
    ASSERT_FALSE(set_gateway_client_options(plaintext));
    MessageChannel::open(R"(\\198.51.100.7\pipe\anything)", {}, ec);
    EXPECT_EQ(ec, errc::access_denied) << "plaintext goes to loopback only";
    ASSERT_FALSE(set_gateway_client_options({}));
    auto instance = PipeInstance::create(test::unique_pipe_name("no-network"));
    for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
        int domain = 0;
        socklen_t length = sizeof domain;
        const int fd = std::stoi(entry.path().filename().string());
        if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0) {
            EXPECT_EQ(domain, AF_UNIX) << "descriptor " << fd << " is a socket of another family";
        }
    }
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
    const std::regex ours(R"([pm]-[0-9a-f]{32}(\.lock|\.members|\.broker|\.sock)?)");
    for (const auto& entry : fs::directory_iterator(runtime())) {
        EXPECT_TRUE(std::regex_match(entry.path().filename().string(), ours)) << entry.path();
    }
    EXPECT_FALSE(fs::exists("/tmp/escape"));
}

TEST(PosixBackend, ABrokenPipeLeavesNoSignalBehind) {
    struct sigaction current {};
    ::sigaction(SIGPIPE, nullptr, &current);
    ASSERT_EQ(current.sa_handler, SIG_DFL) << "the test must run with SIGPIPE's default action";
    auto pipe = Pipe::create();
    pipe.read_end.close();
    std::error_code ec;
    pipe.write_end.write(test::as_bytes(std::string("x")), generous, ec);
    EXPECT_EQ(ec, errc::pipe_closing);
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

}  // namespace
}  // namespace pipeslot
