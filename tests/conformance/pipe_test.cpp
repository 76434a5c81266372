// Conformance: anonymous pipes. Written once against the public API; runs on
// every backend.
#include "../support/support.hpp"

#include <gmock/gmock.h>
#include <cstring>
#include <gtest/gtest.h>

#include <thread>

namespace pipeslot {
namespace {

using namespace std::chrono_literals;
using test::as_bytes;
using test::generous;

std::string read_some(ByteReader& r, std::size_t max, Timeout t, std::error_code& ec) {
    std::vector<std::byte> buffer(max);
    const auto n = r.read(buffer, t, ec);
    return {reinterpret_cast<const char*>(buffer.data()), n};
}

TEST(PipeConformance, BytesWrittenAreReadInOrder) {
    auto pipe = test::create_pipe();
    EXPECT_EQ(pipe.write_end->write(as_bytes("hello, ")), 7u);
    EXPECT_EQ(pipe.write_end->write(as_bytes("pipe")), 4u);
    std::error_code ec;
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "hello, pipe");
    EXPECT_FALSE(ec);
}

TEST(PipeConformance, ReadReturnsWhatIsThereUpToTheBuffer) {
    auto pipe = test::create_pipe();
    pipe.write_end->write(as_bytes("0123456789"));
    std::error_code ec;
    EXPECT_EQ(read_some(*pipe.read_end, 4, generous, ec), "0123");
    EXPECT_EQ(read_some(*pipe.read_end, 100, generous, ec), "456789");
    EXPECT_FALSE(ec);
}

TEST(PipeConformance, ReadBlocksUntilAWriterSendsSomething) {
    auto pipe = test::create_pipe();
    std::thread writer([&] { pipe.write_end->write(as_bytes("late")); });
    std::error_code ec;
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "late");
    EXPECT_FALSE(ec);
    writer.join();
}

TEST(PipeConformance, EndOfStreamComesAfterTheBufferIsDrained) {
    auto pipe = test::create_pipe();
    pipe.write_end->write(as_bytes("abc"));
    pipe.write_end->close();
    EXPECT_FALSE(pipe.write_end->is_open());
    std::error_code ec;
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "abc");
    EXPECT_FALSE(ec);
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "");
    EXPECT_EQ(ec, errc::end_of_stream);
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "");  // and it stays so
    EXPECT_EQ(ec, errc::end_of_stream);
}

// Windows: ERROR_NO_DATA, "the pipe is being closed", for a write that finds
// the reader gone (an anonymous pipe is a named pipe there).
TEST(PipeConformance, WriteWithNoReaderIsPipeClosingNotASignal) {
    auto pipe = test::create_pipe();
    pipe.read_end->close();
    std::error_code ec;
    EXPECT_EQ(pipe.write_end->write(as_bytes("nobody listens"), generous, ec), 0u);
    EXPECT_EQ(ec, errc::pipe_closing);
    EXPECT_EQ(ec, condition::peer_gone);
    // Still alive; and again, for a process that writes in a loop.
    pipe.write_end->write(as_bytes("x"), generous, ec);
    EXPECT_EQ(ec, errc::pipe_closing);
    EXPECT_THROW(pipe.write_end->write(as_bytes("x")), std::system_error);
}

// ReadFile with nothing to read into: it returns once there is data (an
// anonymous pipe is a named pipe in byte mode on Windows), and takes none.
TEST(PipeConformance, AZeroByteReadWaitsForDataAndLeavesIt) {
    auto pipe = test::create_pipe();
    std::vector<std::byte> none;
    std::error_code ec;
    EXPECT_EQ(pipe.read_end->read(none, 100ms, ec), 0u);
    EXPECT_EQ(ec, errc::timed_out) << "nothing there: it waits";
    ASSERT_EQ(pipe.write_end->write(as_bytes("data"), generous, ec), 4u);
    EXPECT_EQ(pipe.read_end->read(none, generous, ec), 0u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "data") << "left for the next read";
    pipe.write_end->close();
    pipe.read_end->read(none, generous, ec);
    EXPECT_EQ(ec, errc::end_of_stream);
}

TEST(PipeConformance, ReadTimeoutExpiresOnAnEmptyPipe) {
    auto pipe = test::create_pipe();
    const auto start = std::chrono::steady_clock::now();
    std::error_code ec;
    EXPECT_EQ(read_some(*pipe.read_end, 64, 100ms, ec), "");
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 95ms);
    // The pipe still works after a timeout.
    pipe.write_end->write(as_bytes("after"));
    EXPECT_EQ(read_some(*pipe.read_end, 64, generous, ec), "after");
    EXPECT_FALSE(ec);
}

TEST(PipeConformance, ZeroTimeoutPollsWithoutWaiting) {
    auto pipe = test::create_pipe();
    std::error_code ec;
    EXPECT_EQ(read_some(*pipe.read_end, 8, Timeout::none(), ec), "");
    EXPECT_EQ(ec, errc::timed_out);
    pipe.write_end->write(as_bytes("now"));
    // Data already there is returned even with a zero timeout.
    EXPECT_EQ(read_some(*pipe.read_end, 8, generous, ec), "now");
    EXPECT_FALSE(ec);
}

TEST(PipeConformance, WriteTimeoutExpiresWhenNobodyReads) {
    auto pipe = test::create_pipe({.buffer_size = 4096});
    const auto data = test::pattern_bytes(8 << 20);  // far more than any pipe buffer
    std::error_code ec;
    const auto written = pipe.write_end->write(data, 200ms, ec);
    EXPECT_EQ(ec, errc::timed_out);
    EXPECT_LT(written, data.size());
    // What was written is intact and the pipe still works.
    std::vector<std::byte> got(written);
    std::size_t have = 0;
    while (have < written) {
        have += pipe.read_end->read(std::span(got).subspan(have), generous);
    }
    EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin()));
}

TEST(PipeConformance, OneMebibyteCrossesBetweenThreadsIntact) {
    auto pipe = test::create_pipe();
    const auto data = test::pattern_bytes(1 << 20);
    std::thread writer([&] {
        EXPECT_EQ(pipe.write_end->write(data, generous), data.size());
        pipe.write_end->close();
    });
    const auto got = test::read_all(*pipe.read_end);
    writer.join();
    ASSERT_EQ(got.size(), data.size());
    EXPECT_EQ(0, std::memcmp(got.data(), data.data(), data.size()));
}

TEST(PipeConformance, BufferSizeHintLetsThatMuchWaitWithoutAReader) {
    auto pipe = test::create_pipe({.buffer_size = 256 * 1024});
    const auto data = test::pattern_bytes(200 * 1024);
    std::error_code ec;
    EXPECT_EQ(pipe.write_end->write(data, 5s, ec), data.size());
    EXPECT_FALSE(ec) << ec.message();
}

TEST(PipeConformance, EndsMoveAndCloseCleanly) {
    PIPESLOT_SKIP_UNDER_FAKE("native pipe ends (handles, move, inheritance)");
    auto pipe = Pipe::create();
    PipeReadEnd reader = std::move(pipe.read_end);
    EXPECT_FALSE(pipe.read_end.is_open());
    EXPECT_TRUE(reader.is_open());
    PipeWriteEnd writer;
    writer = std::move(pipe.write_end);
    writer.write(as_bytes("moved"));
    std::error_code ec;
    EXPECT_EQ(read_some(reader, 16, generous, ec), "moved");
    writer.close();
    writer.close();  // closing twice is harmless
    read_some(reader, 16, generous, ec);
    EXPECT_EQ(ec, errc::end_of_stream);
}

// GetNamedPipeInfo on an anonymous pipe's ends: the buffer asked for (the
// system may round it up); the same for both ends.
TEST(PipeConformance, EitherEndTellsTheBufferSize) {
    PIPESLOT_SKIP_UNDER_FAKE("native pipe ends");
    auto pipe = Pipe::create({.buffer_size = 1 << 17});
    std::error_code ec;
    const auto read_size = pipe.read_end.buffer_size(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_GE(read_size, std::size_t{1} << 17);
    EXPECT_EQ(pipe.write_end.buffer_size(ec), read_size);
    EXPECT_FALSE(ec) << ec.message();
    PipeReadEnd closed;
    closed.buffer_size(ec);
    EXPECT_EQ(ec, errc::invalid_argument);
}

TEST(PipeConformance, InvalidArgumentsAreRejected) {
    PIPESLOT_SKIP_UNDER_FAKE("native pipe ends (handles, move, inheritance)");
    auto pipe = Pipe::create();
    std::error_code ec;
    std::vector<std::byte> buffer(8);
    pipe.read_end.read(buffer, Timeout(-5ms), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    pipe.write_end.write(as_bytes("x"), Timeout(-1s), ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "negative timeout";
    EXPECT_EQ(pipe.write_end.write({}, generous, ec), 0u);
    EXPECT_FALSE(ec) << "an empty write is a no-op";

    PipeReadEnd closed_reader;
    closed_reader.read(buffer, generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "read on a closed end";
    PipeWriteEnd closed_writer;
    closed_writer.write(as_bytes("x"), generous, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "write on a closed end";
    closed_writer.set_inheritable(true, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "set_inheritable on a closed end";

    Pipe::create({.buffer_size = max_pipe_buffer_size + 1}, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "absurd buffer size";
    // Nothing was lost on the pipe that got the bad calls.
    pipe.write_end.write(as_bytes("still fine"));
    EXPECT_EQ(read_some(pipe.read_end, 64, generous, ec), "still fine");
}

TEST(PipeConformance, ManyPipesOpenAndCloseWithoutExhaustingHandles) {
    for (int i = 0; i < 3000; ++i) {
        std::error_code ec;
        auto pipe = test::ipc().create_pipe({}, ec);
        ASSERT_FALSE(ec) << "pipe " << i << ": " << ec.message();
    }
}

}  // namespace
}  // namespace pipeslot
