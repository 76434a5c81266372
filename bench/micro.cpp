// In-process micro-benchmarks (Google Benchmark): name parsing and folding,
// and the framing protocol's encoder and decoder.
#include "../tests/support/memory_source.hpp"
#include "common/framing.hpp"

#include <pipeslot/name.hpp>

#include <benchmark/benchmark.h>

namespace {

void parse_short_name(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(pipeslot::PipeName::parse(R"(\\.\pipe\jobs-server)"));
}
BENCHMARK(parse_short_name);

void parse_and_fold_long_unicode_name(benchmark::State& state) {
    std::string name = R"(\\.\pipe\)";
    for (int i = 0; i < 200; ++i) name += "\xc3\xa4";  // ä, folded to Ä
    for (auto _ : state) benchmark::DoNotOptimize(pipeslot::PipeName::parse(name));
}
BENCHMARK(parse_and_fold_long_unicode_name);

void encode_header(benchmark::State& state) {
    std::uint32_t n = 0;
    for (auto _ : state)
        benchmark::DoNotOptimize(pipeslot::detail::encode_header({pipeslot::detail::FrameKind::message, ++n}));
}
BENCHMARK(encode_header);

void decode_64_byte_messages(benchmark::State& state) {
    std::vector<std::byte> stream;
    for (int i = 0; i < 1000; ++i) {
        const auto h = pipeslot::detail::encode_header({pipeslot::detail::FrameKind::message, 64});
        stream.insert(stream.end(), h.begin(), h.end());
        stream.insert(stream.end(), 64, std::byte{'x'});
    }
    std::vector<std::byte> buffer(64);
    const pipeslot::detail::Deadline now(pipeslot::Timeout::none());
    for (auto _ : state) {
        pipeslot::test::MemorySource source(stream, 4096);
        pipeslot::detail::FrameReader reader;
        std::error_code ec;
        for (int i = 0; i < 1000; ++i) reader.receive(buffer, pipeslot::ReadMode::message, source, now, ec);
    }
    state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(decode_64_byte_messages);

}  // namespace

BENCHMARK_MAIN();
