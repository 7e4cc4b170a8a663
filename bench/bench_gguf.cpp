// GGUF reader/writer speed.
//
//   bench_gguf [google-benchmark flags]
//
// Writes a 1 GiB GGUF (a real 50k-token vocabulary from shared/testdata plus 1 GiB of
// F16 tensors, streamed) to $HEARTH_BENCH_DIR (default /tmp), reporting the writer's
// throughput, then times opening and parsing it: the header is all that is read, so
// this must stay far below a second whatever the file size. HEARTH_BENCH_KEEP=1 keeps
// the file, e.g. to time `hearth gguf info` on it.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <vector>

#include "gguf/dump.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace fs = std::filesystem;
using namespace hearth::gguf;
using hearth::Status;

namespace {

fs::path testdata() {
  const char* v = std::getenv("HEARTH_TESTDATA");
  return v && *v ? fs::path(v) : fs::path(HEARTH_SOURCE_DIR) / "../shared/testdata";
}

const std::string& big_file() {
  static const std::string path = [] {
    const char* d = std::getenv("HEARTH_BENCH_DIR");
    fs::path p = fs::path(d && *d ? d : "/tmp") / "hearth-bench-1g.gguf";
    auto vocab = GgufFile::open((testdata() / "vocab/ggml-vocab-gpt-2.gguf").string());
    if (!vocab) {
      std::fprintf(stderr, "%s\n", vocab.message().c_str());
      std::exit(1);
    }
    GgufWriter w(vocab.value().metadata);
    std::vector<uint8_t> chunk(1 << 20, 0x3c);
    const uint64_t shape[] = {4096, 8192};  // 64 MiB of F16 each, 16 of them = 1 GiB
    for (int i = 0; i < 16; ++i) {
      Status s = w.add_tensor("blk." + std::to_string(i) + ".ffn_up.weight", GgmlType::F16, shape,
                              [&](ByteSink& sink) -> Status {
                                for (int k = 0; k < 64; ++k)
                                  if (Status st = sink.write(chunk); !st) return st;
                                return {};
                              });
      if (!s) std::exit(1);
    }
    auto t0 = std::chrono::steady_clock::now();
    if (Status s = w.write(p.string()); !s) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      std::exit(1);
    }
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "wrote %s: %.2f GiB in %.2f s (%.2f GB/s, incl. fsync)\n", p.c_str(),
                 fs::file_size(p) / double(1 << 30), sec, fs::file_size(p) / sec / 1e9);
    return p.string();
  }();
  return path;
}

void BM_OpenParse1GiB(benchmark::State& state) {
  const std::string& p = big_file();
  for (auto _ : state) {
    auto f = GgufFile::open(p);
    if (!f) state.SkipWithError(f.message().c_str());
    benchmark::DoNotOptimize(f);
  }
  state.counters["file_GiB"] = fs::file_size(p) / double(1 << 30);
}
BENCHMARK(BM_OpenParse1GiB)->Unit(benchmark::kMillisecond);

void BM_OpenParseJson1GiB(benchmark::State& state) {
  const std::string& p = big_file();
  for (auto _ : state) {
    auto f = GgufFile::open(p);
    if (!f) state.SkipWithError(f.message().c_str());
    std::ostringstream out;
    write_json(f.value(), out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_OpenParseJson1GiB)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  if (!std::getenv("HEARTH_BENCH_KEEP")) {
    std::error_code ec;
    fs::remove(big_file(), ec);
  }
  return 0;
}
