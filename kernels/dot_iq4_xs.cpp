// IQ4_XS against Q8_K: the scalar specification and its AVX2 and AVX-512 forms side by side
// (a small type: one integer sum per super-block, sum over blocks of scale * (values . y),
// then one float product). The SIMD functions carry their own target attributes, so this
// file is compiled without ISA flags like the others.
#include <immintrin.h>

#include <algorithm>

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
HEARTH_TARGET inline __attribute__((always_inline)) int32_t isum(const BlockIQ4_XS& x, const BlockQ8_K& y) {
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

HEARTH_TARGET int32_t block_isum_iq4_xs(const BlockIQ4_XS& x, const BlockQ8_K& y) { return isum(x, y); }

HEARTH_TARGET float dot_iq4_xs(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ4_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += static_cast<float>(isum(x[i], y[i])) * (fp16_to_fp32(x[i].d) * y[i].d);
  return s;
}

}  // namespace avx2
namespace avx512 {

#define HEARTH_TARGET512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

// Two blocks per step: their 64 grid values (lanes: block ib's first and last 16, then
// ib + 1's) through a per-lane byte shuffle of the table, |v| . sign(y, v) in 16-bit pairs,
// each pair times its block's scale into int32.
HEARTH_TARGET512 inline __attribute__((always_inline)) int32_t isum(const BlockIQ4_XS& x, const BlockQ8_K& y) {
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m512i acc = _mm512_setzero_si512();
  for (int ib = 0; ib < QK_K / 32; ib += 2) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 16 * ib));
    const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    // [lo ib, lo ib+1, hi ib, hi ib+1] -> [lo ib, hi ib, lo ib+1, hi ib+1]
    const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const __m512i v = _mm512_shuffle_epi8(table, _mm512_shuffle_i64x2(idx, idx, _MM_SHUFFLE(3, 1, 2, 0)));
    const __m512i yv = _mm512_loadu_si512(y.qs + 32 * ib);
    const __mmask64 neg = _mm512_movepi8_mask(v);
    const __m512i av = _mm512_abs_epi8(v);
    const __m512i sy = _mm512_mask_sub_epi8(yv, neg, _mm512_setzero_si512(), yv);  // y with v's sign
    const __m512i p16 = _mm512_maddubs_epi16(av, sy);
    const __m512i sc = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<int16_t>(iq4_xs_scale(x, ib)))),
                                          _mm256_set1_epi16(static_cast<int16_t>(iq4_xs_scale(x, ib + 1))), 1);
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p16, sc));
  }
  return _mm512_reduce_add_epi32(acc);
}

HEARTH_TARGET512 int32_t block_isum_iq4_xs(const BlockIQ4_XS& x, const BlockQ8_K& y) { return isum(x, y); }

namespace {

// One super-block's grid values decoded once for several tokens: per pair of blocks the
// magnitudes, the negative lanes, and the two scales as 16-bit lanes.
struct DecodedIq4Xs {
  __m512i av[4], sc[4];
  __mmask64 neg[4];
};

HEARTH_TARGET512 inline __attribute__((always_inline)) void decode(const BlockIQ4_XS& x, __m512i table, DecodedIq4Xs& d) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int k = 0; k < 4; ++k) {
    const int ib = 2 * k;
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 16 * ib));
    const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const __m512i v = _mm512_shuffle_epi8(table, _mm512_shuffle_i64x2(idx, idx, _MM_SHUFFLE(3, 1, 2, 0)));
    d.neg[k] = _mm512_movepi8_mask(v);
    d.av[k] = _mm512_abs_epi8(v);
    d.sc[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<int16_t>(iq4_xs_scale(x, ib)))),
                                 _mm256_set1_epi16(static_cast<int16_t>(iq4_xs_scale(x, ib + 1))), 1);
  }
}

// The super-block's integer sum against one token's Q8_K block: isum()'s, exactly.
HEARTH_TARGET512 inline __attribute__((always_inline)) int32_t isum_decoded(const DecodedIq4Xs& d, const BlockQ8_K& y) {
  __m512i acc = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k) {
    const __m512i yv = _mm512_loadu_si512(y.qs + 64 * k);
    const __m512i sy = _mm512_mask_sub_epi8(yv, d.neg[k], _mm512_setzero_si512(), yv);
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(d.av[k], sy), d.sc[k]));
  }
  return _mm512_reduce_add_epi32(acc);
}

}  // namespace

// Several tokens against each row: every super-block decoded once for up to four tokens;
// per token the integer sums and the float accumulation in dot_iq4_xs's order, so the
// results equal it bit for bit.
HEARTH_TARGET512 void gemm_iq4_xs(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B,
                                   int64_t r0, int64_t r1, float* y, int64_t y_stride) {
  constexpr int T = 4;
  const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  const int64_t nb = n / QK_K;
  for (int64_t r = r0; r < r1; ++r) {
    const auto* x = reinterpret_cast<const BlockIQ4_XS*>(static_cast<const uint8_t*>(W) + static_cast<size_t>(r) * row_bytes);
    for (int j0 = 0; j0 < B; j0 += T) {
      const int nt = std::min(T, B - j0);
      const BlockQ8_K* a[T];
      float s[T] = {0, 0, 0, 0};
      for (int t = 0; t < nt; ++t) a[t] = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + (j0 + t) * act_bytes);
      for (int64_t i = 0; i < nb; ++i) {
        DecodedIq4Xs d;
        decode(x[i], table, d);
        const float dx = fp16_to_fp32(x[i].d);
        for (int t = 0; t < nt; ++t) s[t] += static_cast<float>(isum_decoded(d, a[t][i])) * (dx * a[t][i].d);
      }
      for (int t = 0; t < nt; ++t) y[(j0 + t) * y_stride + r] = s[t];
    }
  }
}

HEARTH_TARGET512 float dot_iq4_xs(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ4_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += static_cast<float>(isum(x[i], y[i])) * (fp16_to_fp32(x[i].d) * y[i].d);
  return s;
}

}  // namespace avx512
}  // namespace hearth::kernels
