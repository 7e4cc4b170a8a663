// The per-ISA dot product implementations behind kernels.h's table, and the integer
// block sums that the tests compare exactly across ISAs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/blocks.h"
#include "quant/fp16.h"

namespace hearth::kernels {

// Integer parts of a K-quant block dot: sum of scale * (q . y) and of min * sum(y).
struct BlockSums {
  int32_t scaled;
  int32_t mins;
};

// The float weight types the SIMD files share one kernel for, and element i of such a
// row as f32 (for their tails).
enum class FloatKind { F32, F16, BF16 };
template <FloatKind K>
inline float float_at(const void* p, int64_t i) {
  if constexpr (K == FloatKind::F32) return static_cast<const float*>(p)[i];
  if constexpr (K == FloatKind::F16) return quant::fp16_to_fp32(static_cast<const uint16_t*>(p)[i]);
  return quant::bf16_to_fp32(static_cast<const uint16_t*>(p)[i]);
}

namespace scalar {
float dot_f32(int64_t n, const void* w, const void* a);
float dot_f16(int64_t n, const void* w, const void* a);
float dot_q8_0(int64_t n, const void* w, const void* a);
float dot_q4_0(int64_t n, const void* w, const void* a);
float dot_q4_K(int64_t n, const void* w, const void* a);
float dot_q6_K(int64_t n, const void* w, const void* a);
int32_t block_isum_q8_0(const quant::BlockQ8_0& x, const quant::BlockQ8_0& y);
int32_t block_isum_q4_0(const quant::BlockQ4_0& x, const quant::BlockQ8_0& y);
BlockSums block_isum_q4_K(const quant::BlockQ4_K& x, const quant::BlockQ8_K& y);
int32_t block_isum_q6_K(const quant::BlockQ6_K& x, const quant::BlockQ8_K& y);
void q4_k_scales(const uint8_t* packed, uint8_t* sc, uint8_t* m);
float dot_q4_1(int64_t n, const void* w, const void* a);
float dot_q5_0(int64_t n, const void* w, const void* a);
float dot_q5_1(int64_t n, const void* w, const void* a);
float dot_q2_K(int64_t n, const void* w, const void* a);
float dot_q3_K(int64_t n, const void* w, const void* a);
float dot_q5_K(int64_t n, const void* w, const void* a);
float dot_bf16(int64_t n, const void* w, const void* a);
int32_t block_isum_q4_1(const quant::BlockQ4_1& x, const quant::BlockQ8_1& y);
int32_t block_isum_q5_0(const quant::BlockQ5_0& x, const quant::BlockQ8_0& y);
int32_t block_isum_q5_1(const quant::BlockQ5_1& x, const quant::BlockQ8_1& y);
BlockSums block_isum_q2_K(const quant::BlockQ2_K& x, const quant::BlockQ8_K& y);
int32_t block_isum_q3_K(const quant::BlockQ3_K& x, const quant::BlockQ8_K& y);
BlockSums block_isum_q5_K(const quant::BlockQ5_K& x, const quant::BlockQ8_K& y);
int q3_k_scale(const uint8_t* packed, int j);
float dot_tq1_0(int64_t n, const void* w, const void* a);
float dot_tq2_0(int64_t n, const void* w, const void* a);
int32_t block_isum_tq1_0(const quant::BlockTQ1_0& x, const quant::BlockQ8_K& y);
int32_t block_isum_tq2_0(const quant::BlockTQ2_0& x, const quant::BlockQ8_K& y);
float dot_iq4_xs(int64_t n, const void* w, const void* a);
int32_t block_isum_iq4_xs(const quant::BlockIQ4_XS& x, const quant::BlockQ8_K& y);
}  // namespace scalar

// The kernels of dot_more_impl.h, compiled for AVX2 and for AVX-512 VNNI: dots, the
// integer block sums, and multi-token GEMMs (kernels.h's GemmFn) equal to the dots.
#define HEARTH_GEMM_ARGS                                                                            \
  const void *W, size_t row_bytes, int64_t n, const void *act, size_t act_bytes, int B, int64_t r0, \
      int64_t r1, float *y, int64_t y_stride
#define HEARTH_MORE_DOTS                                                               \
  float dot_q4_1(int64_t n, const void* w, const void* a);                             \
  float dot_q5_0(int64_t n, const void* w, const void* a);                             \
  float dot_q5_1(int64_t n, const void* w, const void* a);                             \
  float dot_q2_K(int64_t n, const void* w, const void* a);                             \
  float dot_q3_K(int64_t n, const void* w, const void* a);                             \
  float dot_q5_K(int64_t n, const void* w, const void* a);                             \
  int32_t block_isum_q4_1(const quant::BlockQ4_1& x, const quant::BlockQ8_1& y);       \
  int32_t block_isum_q5_0(const quant::BlockQ5_0& x, const quant::BlockQ8_0& y);       \
  int32_t block_isum_q5_1(const quant::BlockQ5_1& x, const quant::BlockQ8_1& y);       \
  BlockSums block_isum_q2_K(const quant::BlockQ2_K& x, const quant::BlockQ8_K& y);     \
  int32_t block_isum_q3_K(const quant::BlockQ3_K& x, const quant::BlockQ8_K& y);       \
  BlockSums block_isum_q5_K(const quant::BlockQ5_K& x, const quant::BlockQ8_K& y);      \
  void gemm_q4_1(HEARTH_GEMM_ARGS);                                                     \
  void gemm_q5_0(HEARTH_GEMM_ARGS);                                                     \
  void gemm_q5_1(HEARTH_GEMM_ARGS);                                                     \
  void gemm_q2_K(HEARTH_GEMM_ARGS);                                                     \
  void gemm_q3_K(HEARTH_GEMM_ARGS);                                                     \
  void gemm_q5_K(HEARTH_GEMM_ARGS);

namespace avx2 {
float dot_f32(int64_t n, const void* w, const void* a);
float dot_f16(int64_t n, const void* w, const void* a);
float dot_q8_0(int64_t n, const void* w, const void* a);
float dot_q4_0(int64_t n, const void* w, const void* a);
float dot_q4_K(int64_t n, const void* w, const void* a);
float dot_q6_K(int64_t n, const void* w, const void* a);
float dot_bf16(int64_t n, const void* w, const void* a);
// Integer block sums computed the AVX2 way, for exact comparison in tests.
int32_t block_isum_q8_0(const quant::BlockQ8_0& x, const quant::BlockQ8_0& y);
int32_t block_isum_q4_0(const quant::BlockQ4_0& x, const quant::BlockQ8_0& y);
BlockSums block_isum_q4_K(const quant::BlockQ4_K& x, const quant::BlockQ8_K& y);
int32_t block_isum_q6_K(const quant::BlockQ6_K& x, const quant::BlockQ8_K& y);
float dot_tq1_0(int64_t n, const void* w, const void* a);
float dot_tq2_0(int64_t n, const void* w, const void* a);
int32_t block_isum_tq1_0(const quant::BlockTQ1_0& x, const quant::BlockQ8_K& y);
int32_t block_isum_tq2_0(const quant::BlockTQ2_0& x, const quant::BlockQ8_K& y);
float dot_iq4_xs(int64_t n, const void* w, const void* a);
int32_t block_isum_iq4_xs(const quant::BlockIQ4_XS& x, const quant::BlockQ8_K& y);
HEARTH_MORE_DOTS
}  // namespace avx2

namespace avx512 {
float dot_f32(int64_t n, const void* w, const void* a);
float dot_f16(int64_t n, const void* w, const void* a);
float dot_bf16(int64_t n, const void* w, const void* a);
float dot_q8_0(int64_t n, const void* w, const void* a);
float dot_q4_0(int64_t n, const void* w, const void* a);
float dot_q4_K(int64_t n, const void* w, const void* a);
float dot_q6_K(int64_t n, const void* w, const void* a);
int32_t block_isum_q8_0(const quant::BlockQ8_0& x, const quant::BlockQ8_0& y);
int32_t block_isum_q4_0(const quant::BlockQ4_0& x, const quant::BlockQ8_0& y);
BlockSums block_isum_q4_K(const quant::BlockQ4_K& x, const quant::BlockQ8_K& y);
int32_t block_isum_q6_K(const quant::BlockQ6_K& x, const quant::BlockQ8_K& y);
HEARTH_MORE_DOTS
float dot_iq4_xs(int64_t n, const void* w, const void* a);
int32_t block_isum_iq4_xs(const quant::BlockIQ4_XS& x, const quant::BlockQ8_K& y);
void gemm_iq4_xs(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
                 float* y, int64_t y_stride);
}  // namespace avx512

}  // namespace hearth::kernels
