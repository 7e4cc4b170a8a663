// Compute kernels: dot products and matrix-vector products of quantized (or float)
// weights against activations quantized once per matmul.
//
// Every weight type has a row in one table (STYLE habit 2): the activation type its
// dot product wants (Q8_0, Q8_K, F32, ...) and one dot function per instruction set.
// The scalar one is the specification; the SIMD ones give the same integer block sums
// bit for bit and the same float result within a rounding tolerance.
//
// Kernels take a row range and hold no global state; threading lives in threads.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gguf/result.h"
#include "gguf/types.h"
#include "quant/cpu.h"

namespace hearth::kernels {

using gguf::GgmlType;

// n elements of weight row `w` (of type T) dotted with activation row `a` (of
// T's activation type, already quantized). n is a multiple of both block sizes.
using DotFn = float (*)(int64_t n, const void* w, const void* a);
// y[r] = W row r . a for r in [r0, r1): a whole row range at once.
using GemvFn = void (*)(const void* W, size_t row_bytes, int64_t n, const void* a, int64_t r0, int64_t r1, float* y);

// Y[j][r] = W[r] . A[j] for rows [r0, r1) and B activation rows act_bytes apart, into y
// (y_stride floats between the rows of Y): several tokens per weight row.
using GemmFn = void (*)(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0,
                        int64_t r1, float* y, int64_t y_stride);

struct KernelTraits {
  GgmlType weight;
  GgmlType activation;     // what quantize_activations() must produce for this weight type
  DotFn dot[3];            // by Isa: scalar, avx2, avx512 (nullptr: use the next lower one)
  GemvFn gemv[3] = {};     // optional multi-row GEMV by Isa (nullptr: one dot() per row)
  GemmFn gemm[3] = {};     // optional multi-token kernel by Isa, results identical to dot()
};

// The row for a weight type, or nullptr when there is no kernel for it yet.
const KernelTraits* kernel_traits(GgmlType weight);
// The dot function for `weight` on `isa` (falling back to lower ISAs), or nullptr.
DotFn dot_fn(GgmlType weight, Isa isa);

// Bytes of n activations of type `act`.
size_t activation_bytes(GgmlType act, int64_t n);
// Quantizes (or copies) n floats to the activation type (llama.cpp's reference
// rounding, so activations match what llama.cpp's CPU backend computes). The SIMD
// paths give the same bytes as the scalar one.
void quantize_activations(GgmlType act, const float* x, int64_t n, void* out, Isa isa = active_isa());

// y[r] = dot(W row r, a) for r in [row_begin, row_end). W rows are row_bytes apart.
void gemv(DotFn dot, const void* W, size_t row_bytes, int64_t n, const void* a, int64_t row_begin, int64_t row_end,
          float* y);
// The best GEMV for `weight` on `isa`: a multi-row kernel where there is one, else
// nullptr (callers then use gemv() with dot_fn()).
GemvFn gemv_fn(GgmlType weight, Isa isa);
// The multi-token kernel for `weight` on exactly `isa` (no fallback), or nullptr.
GemmFn gemm_fn(GgmlType weight, Isa isa);

}  // namespace hearth::kernels
