// Google Benchmark microbenchmarks of the quantized kernels, per weight type and ISA:
//   BM_Dot   one dot product over an L1-resident 4096-element row (time per block in the
//            "per_block" counter);
//   BM_Gemv  a 4096 x 4096 matrix times one activation row, the kernel the engine decodes
//            with (repacked where the type has a repacked form), weight GB/s;
//   BM_Gemm  the same matrix times 32 activation rows (the engine's micro-batch) through
//            the repacked or multi-token GEMM (activations prepared once per call where
//            the kernel wants it, as the engine does), GOP/s (two per multiply-add).
// GEMV and GEMM split their rows over HEARTH_THREADS threads (default 1).
// `hearth bench kernels` is the full tool (machine limits, roofline, JSON); these are the
// hot loops alone, for profiling and A/B runs.
//
//   [HEARTH_THREADS=2] bench_kernels [google-benchmark flags, e.g. --benchmark_filter=q4_K]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "kernels/threads.h"
#include "quant/quant.h"

using namespace hearth;
using gguf::GgmlType;

namespace {

constexpr int64_t kN = 4096;

int threads() {
  const char* t = std::getenv("HEARTH_THREADS");
  return t && *t ? std::max(1, std::atoi(t)) : 1;
}

struct Matrix {
  GgmlType type;
  int64_t rows;
  size_t row_bytes = 0, act_bytes = 0;
  std::vector<uint8_t> w, packed, act;
  const kernels::KernelTraits* k;
  Matrix(GgmlType t, int64_t r, int B) : type(t), rows(r), k(kernels::kernel_traits(t)) {
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0.f, 1.f);
    std::vector<float> wf(static_cast<size_t>(rows * kN));
    for (float& v : wf) v = g(rng) * 0.02f;
    row_bytes = gguf::type_bytes(t, kN, "bench").value();
    w.resize(row_bytes * rows);
    (void)quant::quantize_rows(t, wf.data(), w.data(), rows, kN, nullptr);
    act_bytes = kernels::activation_bytes(k->activation, kN);
    act.resize(act_bytes * B);
    std::vector<float> x(kN);
    for (int j = 0; j < B; ++j) {
      for (float& v : x) v = g(rng);
      kernels::quantize_activations(k->activation, x.data(), kN, act.data() + j * act_bytes);
    }
    if (const kernels::RepackedTraits* rt = kernels::repacked_traits(t, active_isa())) {
      packed.resize(rt->bytes(rows, kN));
      rt->repack(w.data(), row_bytes, rows, kN, packed.data());
    }
  }
};

void BM_Dot(benchmark::State& st, GgmlType t) {
  Matrix m(t, 1, 1);
  const kernels::DotFn dot = kernels::dot_fn(t, active_isa());
  for (auto _ : st) benchmark::DoNotOptimize(dot(kN, m.w.data(), m.act.data()));
  const double blocks = static_cast<double>(kN) / gguf::type_info(t).block_size;
  // value * iterations / time, inverted: seconds per block.
  st.counters["per_block"] = benchmark::Counter(blocks, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_Gemv(benchmark::State& st, GgmlType t) {
  Matrix m(t, kN, 1);
  std::vector<float> y(kN);
  const kernels::RepackedTraits* rt = kernels::repacked_traits(t, active_isa());
  const kernels::GemvFn fast = kernels::gemv_fn(t, active_isa());
  const kernels::DotFn dot = kernels::dot_fn(t, active_isa());
  for (auto _ : st) {
    kernels::parallel_rows(rt ? kN / kernels::kRepackRows : kN, threads(), [&](int64_t b, int64_t e) {
      if (rt) rt->gemv(m.packed.data(), kN, m.act.data(), b, e, y.data());
      else if (fast) fast(m.w.data(), m.row_bytes, kN, m.act.data(), b, e, y.data());
      else kernels::gemv(dot, m.w.data(), m.row_bytes, kN, m.act.data(), b, e, y.data());
    });
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(m.row_bytes * kN));
}

void BM_Gemm(benchmark::State& st, GgmlType t) {
  constexpr int B = 32;
  Matrix m(t, kN, B);
  std::vector<float> y(static_cast<size_t>(B) * kN);
  const kernels::RepackedTraits* rt = kernels::repacked_traits(t, active_isa());
  const kernels::GemmFn gemm = kernels::gemm_fn(t, active_isa());
  if (!rt && !gemm) {
    st.SkipWithError("no GEMM kernel for this type on this ISA");
    return;
  }
  std::vector<uint8_t> prepared;
  for (auto _ : st) {
    const void* in = rt ? kernels::gemm_input(*rt, kN, m.act.data(), m.act_bytes, B, prepared) : nullptr;
    kernels::parallel_chunks(rt ? kN / kernels::kRepackRows : kN, threads(), 8, [&](int64_t b, int64_t e) {
      if (rt) rt->gemm(m.packed.data(), kN, in, m.act_bytes, B, b, e, y.data(), kN);
      else gemm(m.w.data(), m.row_bytes, kN, m.act.data(), m.act_bytes, B, b, e, y.data(), kN);
    });
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GOP/s"] = benchmark::Counter(2.0 * kN * kN * B, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                     GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::BF16, GgmlType::F32}) {
    const std::string name(gguf::type_info(t).name);
    benchmark::RegisterBenchmark(("BM_Dot/" + name).c_str(), BM_Dot, t);
    benchmark::RegisterBenchmark(("BM_Gemv/" + name).c_str(), BM_Gemv, t)->Unit(benchmark::kMillisecond)->UseRealTime();
    if (kernels::repacked_traits(t, active_isa()) || kernels::gemm_fn(t, active_isa()))
      benchmark::RegisterBenchmark(("BM_Gemm/" + name).c_str(), BM_Gemm, t)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
