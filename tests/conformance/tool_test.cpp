// The pipeslot-pipe tool, run as a user would run it.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace pipeslot {
namespace {

using test::generous;


test::Finished run_tool(std::vector<std::string> args) {
    Command c;
    c.program = test::tool_program("pipeslot-pipe");
    c.args = std::move(args);
    c.std_out = Stdio::null();
    return test::run_capturing(std::move(c), test::Capture::std_err);
}

class PipeTool : public ::testing::Test {
protected:
    void SetUp() override {
        if (!std::filesystem::exists(std::filesystem::u8path(test::tool_program("pipeslot-pipe"))))
            GTEST_SKIP() << "the tools are not built (-Dtools=false)";
    }
    const std::string child = test::child_program();
};

TEST_F(PipeTool, RunsTwoProgramsAsAPipelineByteExact) {
    const auto r = run_tool({child, "gen", "1048576", "=", child, "check", "1048576"});
    EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(PipeTool, ExitsWithTheLastProgramsStatus) {
    EXPECT_EQ(run_tool({child, "exit", "0", "=", child, "exit", "7"}).status, 7);
    EXPECT_EQ(run_tool({child, "exit", "9", "=", child, "exit", "0"}).status, 0);
}

TEST_F(PipeTool, BadArgumentsGiveAUsageError) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {}, {child}, {child, "="}, {"=", child}, {child, "=", "=", child}}) {
        const auto r = run_tool(args);
        EXPECT_EQ(r.status, 2);
        EXPECT_NE(r.output.find("usage: pipeslot-pipe"), std::string::npos) << r.output;
    }
}

TEST_F(PipeTool, AMissingProgramIsReported) {
    const auto r = run_tool({child, "gen", "1", "=", "pipeslot-no-such-program-anywhere"});
    EXPECT_EQ(r.status, 127);
    EXPECT_NE(r.output.find("cannot start"), std::string::npos) << r.output;
}

TEST(ServerAndClientTools, AClientTalksToTheServer) {
    if (!std::filesystem::exists(std::filesystem::u8path(test::tool_program("pipeslot-server"))))
        GTEST_SKIP() << "the tools are not built (-Dtools=false)";
    const auto name = test::unique_pipe_name("tools");
    Command server;
    server.program = test::tool_program("pipeslot-server");
    server.args = {name, "--instances", "2", "--clients", "1"};
    server.std_out = Stdio::null();
    auto server_process = Process::spawn(std::move(server));
    Command client;
    client.program = test::tool_program("pipeslot-client");
    client.args = {name, "--wait", "30000", "make me loud", "again"};
    const auto r = test::run_capturing(std::move(client));
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("MAKE ME LOUD"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("AGAIN"), std::string::npos) << r.output;
    std::error_code ec;
    EXPECT_EQ(server_process.wait(generous, ec), 0) << "the server stops after its one client";
}

TEST(ServerAndClientTools, BadArgumentsGiveAUsageError) {
    if (!std::filesystem::exists(std::filesystem::u8path(test::tool_program("pipeslot-server"))))
        GTEST_SKIP() << "the tools are not built (-Dtools=false)";
    for (const char* tool : {"pipeslot-server", "pipeslot-client"}) {
        Command c;
        c.program = test::tool_program(tool);
        c.std_out = Stdio::null();
        const auto r = test::run_capturing(std::move(c), test::Capture::std_err);
        EXPECT_EQ(r.status, 2) << tool;
        EXPECT_NE(r.output.find("usage:"), std::string::npos) << r.output;
    }
    Command missing;
    missing.program = test::tool_program("pipeslot-client");
    missing.args = {test::unique_pipe_name("no-server"), "--wait", "0", "x"};
    const auto r = test::run_capturing(std::move(missing), test::Capture::std_err);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("cannot connect"), std::string::npos) << r.output;
}

TEST(DiscoveryTools, LocateFindsWhatAnnounceAnnounces) {
    if (!std::filesystem::exists(std::filesystem::u8path(test::tool_program("pipeslot-locate"))))
        GTEST_SKIP() << "the tools are not built (-Dtools=false)";
    const auto pipe = test::unique_pipe_name("tool-announced");
    const auto listen = test::unique_mailslot_name("tool-announce");
    const auto to = test::native_under_wine() ? listen : std::string(listen).replace(2, 1, "*");
    Command announce;
    announce.program = test::tool_program("pipeslot-announce");
    announce.args = {pipe, "--slot", to, "--interval", "50"};
    auto announcer = test::start_helper(std::move(announce));
    EXPECT_NE(announcer.line().find("announcing"), std::string::npos);
    // Each locate listens for a second; a loaded machine may starve the announcer for one,
    // so it gets a bounded number of tries (it normally finds the pipe in the first).
    test::Finished r;
    for (int attempt = 0; attempt < 10 && r.status != 0; ++attempt) {
        Command locate;
        locate.program = test::tool_program("pipeslot-locate");
        locate.args = {"--slot", listen, "--timeout", "1000"};
        r = test::run_capturing(std::move(locate));  // its errors reach the log
    }
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find(pipe), std::string::npos) << r.output;
    announcer.in.close();  // it announces until its input ends
    std::error_code ec;
    EXPECT_EQ(announcer.process.wait(generous, ec), 0);

    Command nothing;
    nothing.program = test::tool_program("pipeslot-locate");
    nothing.args = {"--slot", test::unique_mailslot_name("silence"), "--timeout", "100"};
    EXPECT_EQ(test::run_capturing(std::move(nothing)).status, 3) << "nothing found";
    Command bad;
    bad.program = test::tool_program("pipeslot-announce");
    bad.std_err = Stdio::null();
    EXPECT_EQ(test::run_capturing(std::move(bad)).status, 2);
}

}  // namespace
}  // namespace pipeslot
