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

}  // namespace
}  // namespace pipeslot
