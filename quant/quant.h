// Reference quantization: the specification every faster path is tested against.
//
// One row of a table per ggml type, indexed by the type id (STYLE habit 2): the
// quantizer (with the importance-weighted variant where llama.cpp has one) and the
// dequantizer. All of it reproduces llama.cpp's bytes exactly.
#pragma once

#include <cstdint>
#include <span>

#include "gguf/result.h"
#include "gguf/types.h"

namespace hearth::quant {

using gguf::GgmlType;

// Quantizes one row of n elements (n a multiple of the block size). `weights`, the
// row's importance (an imatrix row of n values), selects the weighted algorithm where
// the type has one; null selects the reference algorithm llama-quantize uses without
// an imatrix.
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n, const float* weights);
using DequantizeRowFn = void (*)(const void* x, float* y, int64_t n);

struct QuantTraits {
  GgmlType type;
  QuantizeRowFn quantize;
  DequantizeRowFn dequantize;
  bool uses_weights;  // quantize() changes its algorithm when given weights
};

// The row for `t`, or nullptr when Hearth cannot quantize to / dequantize from it.
const QuantTraits* quant_traits(GgmlType t);

// Quantizes nrows rows of n_per_row floats into dst (ggml_quantize_chunk). imatrix,
// if given, has n_per_row values applied to every row. Returns the bytes written.
Result<size_t> quantize_rows(GgmlType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                             const float* imatrix);
// Converts n elements of type t to float.
Status dequantize(GgmlType t, const void* src, float* dst, int64_t n);

// Checks quantized data before it is written: every block scale (and every f32/f16/
// bf16 value) finite. A NaN or Inf in the input shows up here.
Status validate_quantized(GgmlType t, const void* data, size_t bytes);

// The row functions, exposed for tests and for kernels' scalar paths.
void quantize_f32(const float* x, void* y, int64_t n, const float*);
void quantize_f16(const float* x, void* y, int64_t n, const float*);
void quantize_bf16(const float* x, void* y, int64_t n, const float*);
void quantize_q4_0(const float* x, void* y, int64_t n, const float* w);
void quantize_q4_1(const float* x, void* y, int64_t n, const float* w);
void quantize_q5_0(const float* x, void* y, int64_t n, const float* w);
void quantize_q5_1(const float* x, void* y, int64_t n, const float* w);
void quantize_q8_0(const float* x, void* y, int64_t n, const float*);
void quantize_q8_1(const float* x, void* y, int64_t n, const float*);
void quantize_q2_K(const float* x, void* y, int64_t n, const float* w);
void quantize_q3_K(const float* x, void* y, int64_t n, const float* w);
void quantize_q4_K(const float* x, void* y, int64_t n, const float* w);
void quantize_q5_K(const float* x, void* y, int64_t n, const float* w);
void quantize_q6_K(const float* x, void* y, int64_t n, const float* w);
void quantize_q8_K(const float* x, void* y, int64_t n, const float*);
void quantize_iq4_nl(const float* x, void* y, int64_t n, const float* w);
void quantize_iq4_xs(const float* x, void* y, int64_t n, const float* w);
void quantize_tq1_0(const float* x, void* y, int64_t n, const float* w);  // w unused, as llama.cpp
void quantize_tq2_0(const float* x, void* y, int64_t n, const float* w);

void dequantize_f32(const void* x, float* y, int64_t n);
void dequantize_f16(const void* x, float* y, int64_t n);
void dequantize_bf16(const void* x, float* y, int64_t n);
void dequantize_q4_0(const void* x, float* y, int64_t n);
void dequantize_q4_1(const void* x, float* y, int64_t n);
void dequantize_q5_0(const void* x, float* y, int64_t n);
void dequantize_q5_1(const void* x, float* y, int64_t n);
void dequantize_q8_0(const void* x, float* y, int64_t n);
void dequantize_q8_1(const void* x, float* y, int64_t n);
void dequantize_q2_K(const void* x, float* y, int64_t n);
void dequantize_q3_K(const void* x, float* y, int64_t n);
void dequantize_q4_K(const void* x, float* y, int64_t n);
void dequantize_q5_K(const void* x, float* y, int64_t n);
void dequantize_q6_K(const void* x, float* y, int64_t n);
void dequantize_q8_K(const void* x, float* y, int64_t n);
void dequantize_iq4_nl(const void* x, float* y, int64_t n);
void dequantize_iq4_xs(const void* x, float* y, int64_t n);
void dequantize_tq1_0(const void* x, float* y, int64_t n);
void dequantize_tq2_0(const void* x, float* y, int64_t n);

}  // namespace hearth::quant
