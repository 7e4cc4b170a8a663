// Float-weight GEMM through OpenBLAS: weight rows dequantized to f32 a slice at a time
// (f32 weights used in place), then cblas_sgemm against all the tokens.
//
// Measured against Hearth's own path (one dot product per row and token) by
// bench/bench_matmul on this machine (2048 x 2048, 2 threads, GFLOP/s):
//   tokens        1     4    16    64   256   512
//   f32 ours     23    58    55    36    34    25
//   f32 BLAS    3.5   9.6    19    27    30    31
//   f16 ours     34    48    50    47    45    43
//   f16 BLAS    3.0   9.4    24    18    30    39
// OpenBLAS wins only for f32 at 512 tokens and beyond (kBlasMinTokens), far above the
// engine's 32-token micro-batch, so the engine does not call it; it is here for the
// benchmark that keeps measuring the crossover.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace hearth::kernels {

inline constexpr int kBlasMinTokens = 512;  // f32 weights; f16/bf16 never won up to 512

// True for the weight types gemm_blas() takes.
bool blas_type(gguf::GgmlType type);

// Y[j][r] = W[r] . X[j] for rows [0, rows) and B tokens: X is B rows of n floats (for f16
// and bf16 weights already rounded to the weight type, as the dot products see them), Y's
// rows y_stride floats apart. Runs on the calling thread plus OpenBLAS's own threads
// (at most `threads`).
void gemm_blas(gguf::GgmlType type, const void* W, size_t row_bytes, int64_t rows, int64_t n, const float* X, int B, float* Y,
               int64_t y_stride, int threads);

}  // namespace hearth::kernels
