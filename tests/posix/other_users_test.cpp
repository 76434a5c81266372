// Other local users (as root, a child switched to user nobody): they reach a
// pipe only when its creator opened it to them and they ask for that user's
// pipe by name, and nothing they can create, link, lock or rename in the
// shared directory hangs, redirects or denies the owner. See docs/security.md.
#include "../support/support.hpp"
#include "posix/runtime_dir.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace pipeslot {
namespace {

namespace fs = std::filesystem;
using test::generous;

constexpr uid_t nobody = 65534;
constexpr int exit_not_found = 10 + static_cast<int>(errc::not_found);

bool reachable_by_others(const fs::path& program) {
    for (fs::path p = program; p != p.root_path(); p = p.parent_path()) {
        struct stat st;
        if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    }
    return true;
}

// The peer helper where user nobody can run it: where it was built, or a copy
// in a directory of its own under /tmp when the build directory is closed to
// others (a checkout under /root, say), so that these tests never skip as root.
std::string peer_for_nobody() {
    struct Copy {
        std::string program, dir;
        ~Copy() {
            std::error_code ignored;
            if (!dir.empty()) fs::remove_all(dir, ignored);
        }
    };
    static const Copy copy = [] {
        const fs::path built = test::peer_program();
        if (reachable_by_others(built)) return Copy{built.string(), {}};
        char dir[] = "/tmp/pipeslot-test-peer-XXXXXX";
        if (!::mkdtemp(dir) || ::chmod(dir, 0755) != 0) return Copy{built.string(), {}};
        const fs::path target = fs::path(dir) / built.filename();
        std::error_code ec;
        fs::copy_file(built, target, ec);
        ::chmod(target.c_str(), 0755);
        return Copy{target.string(), dir};
    }();
    return copy.program;
}

// Runs the peer helper as user `nobody` (root only).
bool can_run_as_nobody(std::string& why) {
    if (::geteuid() != 0) {
        why = "needs root to switch a child to another user";
        return false;
    }
    if (!reachable_by_others(peer_for_nobody())) {
        why = "user nobody cannot reach " + peer_for_nobody();
        return false;
    }
    return true;
}

#define SKIP_UNLESS_ROOT()                         \
    do {                                           \
        std::string why;                           \
        if (!can_run_as_nobody(why)) GTEST_SKIP() << why; \
    } while (0)

Command peer(const std::string& mode, std::vector<std::string> args) {
    auto c = test::peer(mode, std::move(args));
    c.program = peer_for_nobody();
    return c;
}

int run(Command c) {
    c.std_out = Stdio::null();
    c.std_err = Stdio::null();
    return Process::spawn(std::move(c)).wait();
}

int as_nobody(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> all;
    for (const auto& e : env) all.insert(all.end(), {"env", e});
    all.push_back("as-nobody");
    all.insert(all.end(), args.begin(), args.end());
    const std::string first = all.front();
    all.erase(all.begin());
    return run(peer(first, all));
}

struct EchoServer {
    std::mutex mutex;
    std::vector<std::string> client_users;
    PipeServer server;  // last: it stops first, before what its threads touch goes
};

std::unique_ptr<EchoServer> serve(const std::string& name, bool others) {
    auto s = std::make_unique<EchoServer>();
    ServerOptions options;
    options.allow_other_users = others;
    std::error_code ec;
    auto* raw = s.get();
    s->server = PipeServer::start(name, options, 1, PipeServer::ConnectionHandler([raw](PipeInstance& client) {
        for (;;) {
            std::error_code io;
            const auto request = client.receive_message(generous, io);
            if (io) return;
            {
                std::lock_guard lock(raw->mutex);
                raw->client_users.push_back(client.client_user(io));
            }
            auto reply = test::bytes_of("echo:");
            reply.insert(reply.end(), request.begin(), request.end());
            client.send(reply, generous, io);
        }
    }), ec);
    EXPECT_FALSE(ec) << ec.message();
    return s;
}

TEST(OtherUsers, APrivatePipeDoesNotExistForThem) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_pipe_name("private");
    auto server = serve(name, false);
    EXPECT_EQ(as_nobody({"open-result", name}), exit_not_found);
    EXPECT_EQ(as_nobody({"open-result", name, "0"}), exit_not_found) << "even when they name its user";
}

TEST(OtherUsers, AnOpenPipeIsReachedOnlyWhenTheyAskForItsUser) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_pipe_name("for-everyone");
    auto server = serve(name, true);
    EXPECT_EQ(as_nobody({"open-result", name}), exit_not_found) << "their own pipes only, unless they ask";
    EXPECT_EQ(as_nobody({"echo-client", name, "3", "0"}), 0) << "root's pipe, by uid";
    EXPECT_EQ(as_nobody({"echo-client", name, "1", "root"}), 0) << "and by user name";
    {
        std::lock_guard lock(server->mutex);
        ASSERT_FALSE(server->client_users.empty());
        EXPECT_EQ(server->client_users.front(), std::to_string(nobody)) << "the server knows who it serves";
    }
    // The owner's own clients find it as always, and learn whose server it is.
    ClientOptions wait;
    wait.wait = generous;
    auto mine = test::open_channel(name, wait);
    std::error_code ec;
    EXPECT_EQ(mine.server_user(ec), "0");
    EXPECT_EQ(mine.server_process_id(ec), ::getpid());
}

TEST(OtherUsers, TheyCannotMoveReplaceOrPlantAnythingBesideTheDoor) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_pipe_name("door");
    auto server = serve(name, true);
    std::string shared;
    ASSERT_FALSE(posix::runtime_directory(posix::Scope::shared, shared));
    const auto door_dir = shared + "/u-0";
    const auto door = posix::name_key(PipeName::parse(name)) + ".sock";
    ASSERT_TRUE(fs::is_socket(door_dir + "/" + door));
    EXPECT_EQ(as_nobody({"attack-door", door_dir, door}), 0) << "no rename, unlink, symlink, mkdir or chmod worked";
    EXPECT_EQ(as_nobody({"echo-client", name, "2", "0"}), 0) << "the server serves on";
    // Nor anything in the owner's private directory, which they cannot enter.
    std::string runtime;
    ASSERT_FALSE(posix::runtime_directory(posix::Scope::private_to_user, runtime));
    EXPECT_EQ(as_nobody({"attack-door", runtime, posix::name_key(PipeName::parse(name)) + ".members"}), 0);
    EXPECT_TRUE(fs::exists(runtime + "/" + posix::name_key(PipeName::parse(name)) + ".members"));
    EXPECT_TRUE(fs::is_socket(runtime + "/" + door));
}

TEST(OtherUsers, TheirPipeOfTheSameNameIsNeverTakenForOurs) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_pipe_name("same-name");
    auto theirs = test::start_helper(peer("as-nobody", {"echo-server", name, "1", "others"}));
    ASSERT_EQ(theirs.line(), "ready");
    std::error_code ec;
    MessageChannel::open(name, {}, ec);
    EXPECT_EQ(ec, errc::not_found) << "our own server is not running: nobody's is not ours";
    ClientOptions theirs_by_name;
    theirs_by_name.server_user = std::to_string(nobody);
    theirs_by_name.wait = generous;
    auto channel = MessageChannel::open(name, theirs_by_name, ec);
    ASSERT_FALSE(ec) << "asked for by user, it is found: " << ec.message();
    EXPECT_EQ(channel.server_user(ec), std::to_string(nobody));
    channel.close();
    theirs.in.close();
    EXPECT_EQ(theirs.process.wait(), 0);
}

// Another user made u-0 first (in a shared directory of this test's own): the
// owner's pipe lives in a directory of its own instead, and clients find it.
TEST(OtherUsers, ASquattedUserDirectoryDoesNotDenyTheOwner) {
    SKIP_UNLESS_ROOT();
    char temp[] = "/tmp/pipeslot-shared-test-XXXXXX";
    ASSERT_TRUE(::mkdtemp(temp));
    const std::string shared = temp;
    ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
    const auto squat = shared + "/u-0";
    ASSERT_EQ(::mkdir(squat.c_str(), 0777), 0);
    ASSERT_EQ(::chown(squat.c_str(), nobody, nobody), 0);
    ASSERT_EQ(::chmod(squat.c_str(), 0777), 0);
    const auto name = test::unique_pipe_name("squatted");
    const std::string env = "PIPESLOT_SHARED_DIR=" + shared;
    auto owner = test::start_helper(peer("env", {env, "echo-server", name, "1", "others"}));
    ASSERT_EQ(owner.line(), "ready") << "the owner's create is not denied";
    EXPECT_EQ(as_nobody({"echo-client", name, "2", "0"}, {env}), 0) << "and clients find its pipe";
    EXPECT_TRUE(fs::is_empty(squat)) << "nothing of the owner's went into the squatter's directory";
    owner.in.close();
    EXPECT_EQ(owner.process.wait(), 0);
    std::error_code ignored;
    fs::remove_all(shared, ignored);
}


// --- mailslots: their files sit in the shared directory, at names anyone can predict.

std::string shared_dir() {
    std::string dir;
    EXPECT_FALSE(posix::runtime_directory(posix::Scope::shared, dir));
    return dir;
}

std::string mailslot_file(const std::string& name, const std::string& suffix) {
    return shared_dir() + "/" + posix::name_key(MailslotName::parse(name)) + suffix;
}

std::string contents_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct stat stat_of(const std::string& path) {
    struct stat st{};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
}

// A root file, hard-linked where a reader's lock or info file goes (as a user
// can where fs.protected_hardlinks is 0): root's create must not touch it.
TEST(OtherUsers, ALinkPlantedAtAMailslotsFilesIsNeverWrittenOrFollowed) {
    SKIP_UNLESS_ROOT();
    char temp[] = "/tmp/pipeslot-secret-XXXXXX";
    const int fd = ::mkstemp(temp);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "secret", 6), 6);
    ::fchmod(fd, 0600);
    ::close(fd);
    const std::string secret = temp;
    for (const std::string suffix : {".lock", ".info"}) {
        for (const bool symbolic : {false, true}) {
            const auto name = test::unique_mailslot_name("planted");
            const auto planted = mailslot_file(name, suffix);
            ASSERT_EQ(symbolic ? ::symlink(secret.c_str(), planted.c_str()) : ::link(secret.c_str(), planted.c_str()), 0);
            std::error_code ec;
            auto slot = Mailslot::create(name, {}, ec);
            EXPECT_EQ(ec, errc::name_in_use) << suffix << (symbolic ? " symlink" : " hard link");
            EXPECT_EQ(contents_of(secret), "secret") << "never truncated or written";
            EXPECT_EQ(stat_of(secret).st_mode & 07777, 0600u) << "never re-moded";
            struct stat left;
            EXPECT_EQ(::lstat(planted.c_str(), &left), 0) << "and left where it was";
            ::unlink(planted.c_str());
        }
    }
    ::unlink(secret.c_str());
}

// Another user made the lock file first: the name is theirs, and nothing of
// theirs is opened for writing, re-moded or removed.
TEST(OtherUsers, AnotherUsersFileAtAMailslotsNameIsLeftAlone) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_mailslot_name("squatted");
    const auto lock = mailslot_file(name, ".lock");
    const int fd = ::open(lock.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "theirs", 6), 6);
    ASSERT_EQ(::fchown(fd, nobody, nobody), 0);
    ::close(fd);
    std::error_code ec;
    auto slot = Mailslot::create(name, {}, ec);
    EXPECT_EQ(ec, errc::name_in_use);
    EXPECT_EQ(contents_of(lock), "theirs");
    EXPECT_EQ(stat_of(lock).st_uid, nobody);
    EXPECT_EQ(stat_of(lock).st_mode & 07777, 0644u);
    ::unlink(lock.c_str());
    slot = Mailslot::create(name, {}, ec);
    EXPECT_FALSE(ec) << "once it is gone the name is free: " << ec.message();
}

// What another user can see of a reader: its socket, to write to; its lock
// file is private, so nobody can hold it; its info file is read only.
TEST(OtherUsers, AMailslotsLockIsPrivateAndItsInfoReadOnly) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_mailslot_name("modes");
    const mode_t saved = ::umask(0);  // the modes are the library's own, whatever the umask
    auto slot = Mailslot::create(name, {});
    ::umask(saved);
    EXPECT_EQ(stat_of(mailslot_file(name, ".lock")).st_mode & 07777, 0600u);
    EXPECT_EQ(stat_of(mailslot_file(name, ".info")).st_mode & 07777, 0644u);
    EXPECT_EQ(as_nobody({"mailslot-send", name, "hello"}), 0) << "any user may write to it, as on Windows";
    EXPECT_EQ(as_nobody({"mailslot-create-result", name}), 10 + static_cast<int>(errc::name_in_use));
}

// The maximum a writer checks comes from the reader's own info file only.
TEST(OtherUsers, AMailslotsMaximumComesFromItsReaderAlone) {
    SKIP_UNLESS_ROOT();
    const auto name = test::unique_mailslot_name("max");
    MailslotOptions options;
    options.max_message_size = 5;
    auto slot = Mailslot::create(name, options);
    std::error_code ec;
    auto writer = Broadcaster::open(name);
    writer.send(test::bytes_of("7 bytes"), ec);
    EXPECT_EQ(ec, errc::message_too_large) << "the reader's own maximum";

    const auto info = mailslot_file(name, ".info");  // another user's, put in its place
    ASSERT_EQ(::unlink(info.c_str()), 0);
    std::ofstream(info) << "max=1000\n";
    ASSERT_EQ(::chown(info.c_str(), nobody, nobody), 0);
    auto misled = Broadcaster::open(name);
    misled.send(test::bytes_of("7 bytes"), ec);
    EXPECT_FALSE(ec) << "not refused here: a maximum from anyone else is not known";
    slot.set_read_timeout(Timeout::none(), ec);
    std::vector<std::byte> buffer(100);
    slot.receive(buffer, ec);
    EXPECT_EQ(ec, errc::timed_out) << "and the reader still keeps its maximum: nothing longer arrives";
    EXPECT_EQ(slot.info(ec).dropped_datagrams, 1u);
}

std::uint16_t mailslot_port() { return static_cast<std::uint16_t>(std::atoi(std::getenv("PIPESLOT_MAILSLOT_PORT"))); }

// Readers listen on the mailslot port with SO_REUSEPORT, which Linux grants
// to one user: no other user binds it beside them, on any address, to read
// what is sent to them.
TEST(OtherUsers, NoOtherUserSharesTheMailslotPort) {
    SKIP_UNLESS_ROOT();
    auto slot = Mailslot::create(test::unique_mailslot_name("port"), {});
    EXPECT_EQ(as_nobody({"udp-bind-result", std::to_string(mailslot_port())}), 0);
}

// One who holds the port first: a reader's create says so (network_error),
// and without the network the reader works.
TEST(OtherUsers, AMailslotPortHeldByAnotherUserIsReported) {
    SKIP_UNLESS_ROOT();
    const std::string port = std::to_string(mailslot_port() + 1);
    auto holder = test::start_helper(peer("as-nobody", {"udp-hold", port}));
    ASSERT_EQ(holder.line(), "ready");
    const auto name = test::unique_mailslot_name("port-held");
    const std::string env = "PIPESLOT_MAILSLOT_PORT=" + port;
    EXPECT_EQ(run(peer("env", {env, "mailslot-create-result", name})), 10 + static_cast<int>(errc::network_error));
    EXPECT_EQ(run(peer("env", {env, "env", "PIPESLOT_MAILSLOT_NETWORK=off", "mailslot-create-result", name})), 0);
    holder.in.close();
    EXPECT_EQ(holder.process.wait(), 0);
}

}  // namespace
}  // namespace pipeslot
