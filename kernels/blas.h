// Float-weight GEMM through OpenBLAS: weight rows dequantized to f32 a slice at a time
// (f32 weights used in place), then cblas_sgemm against all the tokens.
//
// Measured against Hearth's own path by bench/bench_matmul (2048 x 2048, 2 threads,
// GFLOP/s). On the first machine (one dot product per row and token then):
//   tokens        1     4    16    64   256   512
//   f32 ours     24    41    44    44    33    23
//   f32 BLAS    4.2    12    38    48    59    59
//   f16 ours     34    46    47    47    45    38
//   f16 BLAS    1.2   3.1    14    19    37    41
// On a 2.8 GHz Xeon (2 vCPUs) with the 3 x 4 register-blocked kernel (BM_Gemm): f16 114 /
// 108 / 114 / 101 GFLOP/s at 4 / 32 / 64 / 256 tokens against BLAS's 3.8 / 20 / 41 / 105
// (149 at 512); f32 74 / 75 at 32 / 256. At the engine's 32-token micro-batch OpenBLAS loses
// by far, so the engine does not call it. It is here for the benchmark that keeps measuring
// the crossover.
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
