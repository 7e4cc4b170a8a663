// Whole-GEMV kernels for the commonest weight types, used instead of one dot() per row
// where an ISA has them (kernels.h's KernelTraits::gemv).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hearth::kernels::avx512 {
void gemv_q4_0(const void* W, size_t row_bytes, int64_t n, const void* act, int64_t r0, int64_t r1, float* y);
void gemv_q8_0(const void* W, size_t row_bytes, int64_t n, const void* act, int64_t r0, int64_t r1, float* y);
void gemm_q4_K(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
               float* y, int64_t y_stride);
void gemm_q6_K(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
               float* y, int64_t y_stride);
// Float weights: several tokens per loaded (and converted) weight vector.
void gemm_f32(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
              float* y, int64_t y_stride);
void gemm_f16(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
              float* y, int64_t y_stride);
void gemm_bf16(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
               float* y, int64_t y_stride);
}  // namespace hearth::kernels::avx512
