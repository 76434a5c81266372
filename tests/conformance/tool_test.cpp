// The pipeslot-pipe tool, run as a user would run it.
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace pipeslot {
namespace {


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

}  // namespace
}  // namespace pipeslot
