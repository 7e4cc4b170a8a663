// IQ4_XS against Q8_K: the scalar specification and its AVX2 form side by side (a small
// type: one integer sum per super-block, sum over blocks of scale * (values . y), then one
// float product). The AVX2 function carries its own target attribute, so this file is
// compiled without ISA flags like the others.
#include <immintrin.h>

#include "kernels/dots.h"
#include "kernels/simd256.h"

namespace hearth::kernels {

using namespace hearth::quant;

namespace scalar {

int32_t block_isum_iq4_xs(const BlockIQ4_XS& x, const BlockQ8_K& y) {
  int32_t sum = 0;
  for (int ib = 0; ib < QK_K / 32; ++ib) {
    const uint8_t* qs = x.qs + 16 * ib;
    const int8_t* q8 = y.qs + 32 * ib;
    int32_t s = 0;
    for (int j = 0; j < 16; ++j) s += q8[j] * kIq4nlValues[qs[j] & 0xf] + q8[j + 16] * kIq4nlValues[qs[j] >> 4];
    sum += iq4_xs_scale(x, ib) * s;
  }
  return sum;
}

float dot_iq4_xs(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ4_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += static_cast<float>(block_isum_iq4_xs(x[i], y[i])) * (fp16_to_fp32(x[i].d) * y[i].d);
  return s;
}

}  // namespace scalar

namespace avx2 {

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c")))

// Each block's 32 grid values through one byte shuffle of the 16-entry table, their dot
// product with y in eight int32 lanes, scaled by the block's 6-bit scale.
HEARTH_TARGET int32_t block_isum_iq4_xs(const BlockIQ4_XS& x, const BlockQ8_K& y) {
  const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  __m256i acc = _mm256_setzero_si256();
  for (int ib = 0; ib < QK_K / 32; ++ib) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs + 16 * ib));
    const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(q, m4));
    const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
    const __m256i v = _mm256_set_m128i(hi, lo);
    const __m256i yv = simd256::load(y.qs + 32 * ib);
    // |v| times y with v's sign (|v| <= 127: pairs sum to at most 32258, an int16), then
    // the pairs times the block's scale (|scale| <= 32) summed in fours.
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(yv, v));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(static_cast<int16_t>(iq4_xs_scale(x, ib)))));
  }
  return simd256::hsum_i32(acc);
}

HEARTH_TARGET float dot_iq4_xs(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ4_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += static_cast<float>(block_isum_iq4_xs(x[i], y[i])) * (fp16_to_fp32(x[i].d) * y[i].d);
  return s;
}

}  // namespace avx2
}  // namespace hearth::kernels
