// Conformance: child processes with standard streams bound to pipe ends, and
// pipelines. Children run the pipeslot-test-child helper built for the same
// target, so this runs natively and under Wine alike.
#include "../support/support.hpp"

#include <gmock/gmock.h>
#include <cstring>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::child;
using test::generous;
using test::run_capturing;
using ::testing::ElementsAreArray;

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(line);
    }
    return out;
}

std::string hex(const std::string& s) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

TEST(ProcessConformance, ExitCodeIsReported) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto process = Process::spawn(child("exit", {"42"}));
    EXPECT_TRUE(process.valid());
    EXPECT_GT(process.id(), 0);
    std::error_code ec;
    EXPECT_EQ(process.wait(generous, ec), 42);
    EXPECT_FALSE(ec);
    EXPECT_EQ(process.wait(generous, ec), 42) << "waiting again gives the same code";
}

TEST(ProcessConformance, ChildStdoutIsReadThroughAPipe) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    const auto [code, text] = run_capturing(child("gen", {"100000"}));
    EXPECT_EQ(code, 0);
    const auto expected = test::pattern_bytes(100000);
    ASSERT_EQ(text.size(), expected.size());
    EXPECT_EQ(0, std::memcmp(text.data(), expected.data(), expected.size()));
}

TEST(ProcessConformance, ChildStdinIsFedThroughAPipe) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto in = Pipe::create();
    auto c = child("check", {"300000"});
    c.std_in = Stdio::from(std::move(in.read_end));
    auto process = Process::spawn(std::move(c));
    const auto data = test::pattern_bytes(300000);
    EXPECT_EQ(in.write_end.write(data, generous), data.size());
    in.write_end.close();
    EXPECT_EQ(process.wait(), 0);
}

TEST(ProcessConformance, ChildStderrIsCapturedSeparately) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto err = Pipe::create();
    auto c = child("stderr", {"complaint"});
    c.std_err = Stdio::from(std::move(err.write_end));
    c.std_out = Stdio::null();
    auto process = Process::spawn(std::move(c));
    EXPECT_EQ(test::read_all(err.read_end), "complaint");
    EXPECT_EQ(process.wait(), 0);
}

TEST(ProcessConformance, NullStdinIsAnEmptyStream) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto c = child("cat");
    c.std_in = Stdio::null();
    const auto [code, text] = run_capturing(std::move(c));
    EXPECT_EQ(code, 0);
    EXPECT_EQ(text, "");
}

TEST(ProcessConformance, PipelineCarriesOneMebibyteThereAndBackByteExact) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto in = Pipe::create();
    auto out = Pipe::create();
    std::vector<Command> stages;
    stages.push_back(child("cat"));
    stages.push_back(child("cat"));
    stages.front().std_in = Stdio::from(std::move(in.read_end));
    stages.back().std_out = Stdio::from(std::move(out.write_end));
    std::error_code ec;
    auto processes = spawn_pipeline(std::move(stages), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(processes.size(), 2u);

    const auto data = test::pattern_bytes(1 << 20);
    std::thread feeder([&] {
        EXPECT_EQ(in.write_end.write(data, generous), data.size());
        in.write_end.close();
    });
    const auto got = test::read_all(out.read_end);
    feeder.join();
    ASSERT_EQ(got.size(), data.size());
    EXPECT_EQ(0, std::memcmp(got.data(), data.data(), data.size()));
    for (auto& p : processes) EXPECT_EQ(p.wait(generous, ec), 0);
}

TEST(ProcessConformance, PipelineReportsEachStageStatus) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    std::vector<Command> stages;
    stages.push_back(child("gen", {"1048576"}));
    stages.push_back(child("check", {"1048576"}));
    std::error_code ec;
    auto processes = spawn_pipeline(std::move(stages), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(processes[0].wait(generous, ec), 0);
    EXPECT_EQ(processes[1].wait(generous, ec), 0) << "the second stage saw exactly the pattern";
}

TEST(ProcessConformance, HostileArgumentsArriveUnchanged) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    const std::vector<std::string> hostile = {
        "", " ", "plain", "two words", "\"", "\"\"", "\\", "\\\\", "a\\", "a\\\\", "trailing\\ ",
        "\\\"", "a\\\"b", "a\\\\\"b", "\"quoted\"", "\\\\server\\share\\", "tab\there", "new\nline",
        "%PATH%", "$HOME", "*?", "<>|&^", "\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
        "\xf0\x9f\x98\x80", "ends with space ", " leading", "a\"b\"c\\",
    };
    const auto [code, text] = run_capturing(child("args", hostile));
    EXPECT_EQ(code, 0);
    std::vector<std::string> expected;
    for (const auto& a : hostile) expected.push_back(hex(a));
    EXPECT_THAT(lines(text), ElementsAreArray(expected));
}

TEST(ProcessConformance, ChildInheritsNoOtherHandle) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    // A pipe end marked inheritable, as careless code might leave one.
    auto leak = Pipe::create();
    std::error_code ec;
    leak.write_end.set_inheritable(true, ec);
    ASSERT_FALSE(ec) << ec.message();

    auto in = Pipe::create();
    auto c = child("wait-stdin");
    c.std_in = Stdio::from(std::move(in.read_end));
    c.std_out = Stdio::null();
    auto process = Process::spawn(std::move(c));

    // While the child runs, the only writer of `leak` is ours: closing it
    // ends the stream at once. Had the child inherited it, this would time out.
    leak.write_end.close();
    std::vector<std::byte> buffer(16);
    leak.read_end.read(buffer, generous, ec);
    EXPECT_EQ(ec, errc::end_of_stream);

    in.write_end.close();
    EXPECT_EQ(process.wait(generous, ec), 0);
}

TEST(ProcessConformance, ChildReportsOnlyItsStandardHandles) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto leak = Pipe::create();
    std::error_code ec;
    leak.read_end.set_inheritable(true, ec);
    leak.write_end.set_inheritable(true, ec);
    const std::vector<std::string> candidates = {std::to_string(leak.read_end.native_handle()),
                                                 std::to_string(leak.write_end.native_handle())};
    const auto [code, text] = run_capturing(child("fds", candidates));
    EXPECT_EQ(code, 0);
#ifdef _WIN32
    EXPECT_THAT(lines(text), ::testing::IsEmpty()) << "inheritable handles leaked into the child";
#else
    EXPECT_THAT(lines(text), ElementsAreArray({"0", "1", "2"}));
#endif
}

TEST(ProcessConformance, WaitTimesOutWhileTheChildRuns) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto in = Pipe::create();
    auto c = child("wait-stdin");
    c.std_in = Stdio::from(std::move(in.read_end));
    auto process = Process::spawn(std::move(c));
    std::error_code ec;
    EXPECT_EQ(process.wait(50ms, ec), -1);
    EXPECT_EQ(ec, errc::timed_out);
    in.write_end.close();
    EXPECT_EQ(process.wait(generous, ec), 0);
    EXPECT_FALSE(ec);
}

TEST(ProcessConformance, KillEndsAChildThatWouldRunForever) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    auto in = Pipe::create();
    auto c = child("wait-stdin");
    c.std_in = Stdio::from(std::move(in.read_end));
    auto process = Process::spawn(std::move(c));
    std::error_code ec;
    process.kill(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(process.wait(generous, ec), 137);
}

TEST(ProcessConformance, WorkingDirectoryIsApplied) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    const auto dir = std::filesystem::temp_directory_path() / ("pipeslot-cwd-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
    std::filesystem::create_directories(dir);
    auto c = child("pwd");
    const auto dir_utf8 = dir.u8string();
    c.working_directory.assign(dir_utf8.begin(), dir_utf8.end());
    const auto [code, text] = run_capturing(std::move(c));
    EXPECT_EQ(code, 0);
    EXPECT_THAT(text, ::testing::HasSubstr(dir.filename().string()));
    std::filesystem::remove(dir);
}

TEST(ProcessConformance, MissingProgramIsNotFound) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    std::error_code ec;
    Command c;
    c.program = "pipeslot-no-such-program-anywhere";
    auto process = Process::spawn(std::move(c), ec);
    EXPECT_EQ(ec, errc::not_found);
    EXPECT_FALSE(process.valid());
    Command absolute;
    absolute.program = test::child_program() + "-missing";
    Process::spawn(std::move(absolute), ec);
    EXPECT_EQ(ec, errc::not_found);
}

TEST(ProcessConformance, InvalidArgumentsAreRejected) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    std::error_code ec;
    Process::spawn(Command{}, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "empty program";
    Process::spawn(child("args", {std::string("nul\0inside", 10)}), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "NUL in an argument";
    auto c = child("cat");
    c.std_in = Stdio::from(PipeReadEnd{});
    Process::spawn(std::move(c), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "a closed pipe end as stdin";

    Process none;
    none.wait(generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "wait on no process";
    none.kill(ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "kill no process";
    auto running = Process::spawn(child("exit", {"0"}));
    running.wait(Timeout(-1ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    EXPECT_EQ(running.wait(), 0);

    spawn_pipeline({}, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "empty pipeline";
    std::vector<Command> miswired;
    miswired.push_back(child("gen", {"1"}));
    miswired.push_back(child("cat"));
    miswired.front().std_out = Stdio::null();
    EXPECT_TRUE(spawn_pipeline(std::move(miswired), ec).empty());
    EXPECT_EQ(ec, errc::invalid_argument) << "a middle stage's stdout is the pipeline's";
}

TEST(ProcessConformance, FailedPipelineLeavesNothingRunning) {
    PIPESLOT_SKIP_UNDER_FAKE("processes: they are the native system\'s");
    std::vector<Command> stages;
    auto in = Pipe::create();
    stages.push_back(child("wait-stdin"));
    stages.front().std_in = Stdio::from(std::move(in.read_end));
    Command missing;
    missing.program = "pipeslot-no-such-program-anywhere";
    stages.push_back(std::move(missing));
    std::error_code ec;
    EXPECT_TRUE(spawn_pipeline(std::move(stages), ec).empty());
    EXPECT_EQ(ec, errc::not_found);
    // The first stage was killed and reaped: nobody holds our pipe's read end.
    in.write_end.write(as_bytes("anyone?"), generous, ec);
    EXPECT_EQ(ec, errc::pipe_closing);
}

}  // namespace
}  // namespace pipeslot
