// Float-weight GEMM through OpenBLAS: weight rows dequantized to f32 a slice at a time
// (f32 weights used in place), then cblas_sgemm against all the tokens.
//
// Measured against Hearth's own path (one dot product per row and token) by
// bench/bench_matmul on this machine (2048 x 2048, 2 threads, GFLOP/s, one run):
//   tokens        1     4    16    64   256   512
//   f32 ours     24    41    44    44    33    23
//   f32 BLAS    4.2    12    38    48    59    59
//   f16 ours     34    46    47    47    45    38
//   f16 BLAS    1.2   3.1    14    19    37    41
// and at 32 tokens in two more runs: f32 ours 37 / 40 against BLAS 36 / 38, f16 ours
// 55 / 59 against 18 / 21. OpenBLAS wins for f32 weights from about 64 tokens
// (kBlasMinTokens) and for f16 only around 512; at the engine's 32-token micro-batch it
// at best ties, so the engine does not call it. It is here for the benchmark that keeps
// measuring the crossover.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace hearth::kernels {

inline constexpr int kBlasMinTokens = 64;  // f32 weights; f16 only near 512

// Y[j][r] = W[r] . X[j] for rows [0, rows) and B tokens, W of any type quant::dequantize
// knows (f32 used in place): X is B rows of n floats (for f16 and bf16 weights already
// rounded to the weight type, as the dot products see them), Y's
// rows y_stride floats apart. Runs on the calling thread plus OpenBLAS's own threads
// (at most `threads`).
void gemm_blas(gguf::GgmlType type, const void* W, size_t row_bytes, int64_t rows, int64_t n, const float* X, int B, float* Y,
               int64_t y_stride, int threads);

}  // namespace hearth::kernels
