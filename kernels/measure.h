// Measurements for `hearth bench kernels`: the machine's limits (read bandwidth,
// FP32 FMA and int8 dot throughput) and the kernels' figures against them.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace hearth::kernels {

struct MachineLimits {
  int threads = 1;
  double read_gbps = 0;     // streaming reads over a buffer far larger than the caches
  double fma_gflops = 0;    // FP32 FMA, best ISA
  double int8_gops = 0;     // int8 multiply-adds, best ISA (VNNI where present)
};

// Read bandwidth and peak arithmetic with `threads` threads.
MachineLimits measure_machine(int threads, double seconds_each = 0.5);

struct KernelResult {
  std::string op;        // "gemv", "gemm", "dot"
  std::string type;      // GGUF type name of the weights
  std::string isa;
  int threads = 1;
  int64_t rows = 0, cols = 0, batch = 1;
  double seconds = 0;    // per call (median of repetitions)
  double weight_gbps = 0;
  double gflops = 0;     // 2 * rows * cols * batch / seconds (multiply-adds counted as 2)
  double ns_per_block = 0;  // dot only
};

// GEMV of a rows x cols matrix of `type` with random weights; the best of several
// runs of about `seconds` in total.
Result<KernelResult> bench_gemv(GgmlType type, Isa isa, int threads, int64_t rows, int64_t cols, double seconds = 0.5);
// GEMM of `batch` activation rows through the engine's prompt path (repacked or
// multi-token kernels, 32 columns at a time).
Result<KernelResult> bench_gemm(GgmlType type, Isa isa, int threads, int64_t rows, int64_t cols, int64_t batch,
                                double seconds = 0.5);
// One dot product over an L1-resident row: ns per weight block.
Result<KernelResult> bench_dot(GgmlType type, Isa isa, int64_t cols, double seconds = 0.2);

}  // namespace hearth::kernels
