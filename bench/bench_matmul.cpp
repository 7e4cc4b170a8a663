// Float-weight matmul for prompt processing: one dot product per (row, token) through
// Hearth's kernels against the OpenBLAS path (weights dequantized a slice at a time, then
// cblas_sgemm), by token count, on a 2048 x 2048 matrix (TinyLlama's attention shape).
// Where the OpenBLAS path starts to win is kernels::kBlasMinTokens (the figures are in
// kernels/blas.h).
//
//   bench_matmul [google-benchmark flags]      (HEARTH_THREADS: threads, default all)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/blas.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "quant/quant.h"

using namespace hearth;
using gguf::GgmlType;

namespace {

constexpr int64_t kRows = 2048, kCols = 2048;

int threads() {
  const char* t = std::getenv("HEARTH_THREADS");
  return t && *t ? std::atoi(t) : kernels::default_threads();
}

struct Fixture {
  GgmlType type;
  size_t row_bytes;
  std::vector<uint8_t> w;
  std::vector<float> x, y;
  explicit Fixture(GgmlType t, int B) : type(t) {
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0.f, 0.02f);
    std::vector<float> wf(kRows * kCols);
    for (float& v : wf) v = g(rng);
    row_bytes = gguf::type_bytes(t, kCols, "bench").value();
    w.resize(row_bytes * kRows);
    (void)quant::quantize_rows(t, wf.data(), w.data(), kRows, kCols, nullptr);
    x.resize(static_cast<size_t>(B) * kCols);
    for (float& v : x) v = g(rng) * 50;
    y.resize(static_cast<size_t>(B) * kRows);
  }
};

// The engine's path without BLAS: activations converted once, then dot products.
void BM_Dots(benchmark::State& st, GgmlType t) {
  const int B = static_cast<int>(st.range(0));
  Fixture f(t, B);
  const kernels::KernelTraits* k = kernels::kernel_traits(t);
  const kernels::DotFn dot = kernels::dot_fn(t, active_isa());
  const size_t ab = kernels::activation_bytes(k->activation, kCols);
  std::vector<uint8_t> act(ab * B);
  for (auto _ : st) {
    for (int j = 0; j < B; ++j) kernels::quantize_activations(k->activation, &f.x[j * kCols], kCols, &act[j * ab]);
    kernels::parallel_rows(kRows, threads(), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        for (int j = 0; j < B; ++j) f.y[j * kRows + r] = dot(kCols, &f.w[r * f.row_bytes], &act[j * ab]);
    });
    benchmark::DoNotOptimize(f.y.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * kRows * kCols * B, benchmark::Counter::kIsIterationInvariantRate);
}

// The engine's multi-token kernel (kernels::gemm_fn): what a prompt micro-batch runs.
void BM_Gemm(benchmark::State& st, GgmlType t) {
  const int B = static_cast<int>(st.range(0));
  Fixture f(t, B);
  const kernels::KernelTraits* k = kernels::kernel_traits(t);
  const kernels::GemmFn gemm = kernels::gemm_fn(t, active_isa());
  if (!gemm) {
    st.SkipWithError("no multi-token kernel for this type on this ISA");
    return;
  }
  const size_t ab = kernels::activation_bytes(k->activation, kCols);
  std::vector<uint8_t> act(ab * B);
  for (auto _ : st) {
    for (int j = 0; j < B; ++j) kernels::quantize_activations(k->activation, &f.x[j * kCols], kCols, &act[j * ab]);
    kernels::parallel_rows(kRows, threads(), [&](int64_t b, int64_t e) {
      gemm(f.w.data(), f.row_bytes, kCols, act.data(), ab, B, b, e, f.y.data(), kRows);
    });
    benchmark::DoNotOptimize(f.y.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * kRows * kCols * B, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Blas(benchmark::State& st, GgmlType t) {
  const int B = static_cast<int>(st.range(0));
  Fixture f(t, B);
  for (auto _ : st) {
    kernels::gemm_blas(t, f.w.data(), f.row_bytes, kRows, kCols, f.x.data(), B, f.y.data(), kRows, threads());
    benchmark::DoNotOptimize(f.y.data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * kRows * kCols * B, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Dots, f16, GgmlType::F16)->RangeMultiplier(2)->Range(1, 512)->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemm, f16, GgmlType::F16)->RangeMultiplier(2)->Range(2, 512)->UseRealTime();
BENCHMARK_CAPTURE(BM_Blas, f16, GgmlType::F16)->RangeMultiplier(2)->Range(1, 512)->UseRealTime();
BENCHMARK_CAPTURE(BM_Dots, f32, GgmlType::F32)->RangeMultiplier(2)->Range(1, 512)->UseRealTime();
BENCHMARK_CAPTURE(BM_Gemm, f32, GgmlType::F32)->RangeMultiplier(2)->Range(2, 512)->UseRealTime();
BENCHMARK_CAPTURE(BM_Blas, f32, GgmlType::F32)->RangeMultiplier(2)->Range(1, 512)->UseRealTime();

BENCHMARK_MAIN();
