// TQ1_0 and TQ2_0 against Q8_K with AVX2 (also what AVX-512 machines run): the trits of a
// block unpacked to signed bytes, then byte dot products. The integer block sums are the
// scalar specification's, exactly.
#include <immintrin.h>

#include <cstring>

#include "kernels/dots.h"
#include "kernels/simd256.h"

namespace hearth::kernels::avx2 {

using namespace hearth::quant;
using namespace hearth::kernels::simd256;

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c")))

namespace {

// Eight int32 partial sums of x . y for 32 bytes, x in {-1, 0, 1}.
HEARTH_TARGET inline __m256i dot_trits(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)), _mm256_set1_epi16(1));
}

// Thirty-two packed TQ1_0 bytes b and a power of three p per 16-bit lane (for both of its
// bytes): the trit of each byte as a signed byte, (((b * p) mod 256) * 3 >> 8) - 1. The
// products are formed per byte without carries between bytes (low and high bytes
// multiplied apart), and x * 3 >> 8 is counted as (x >= 86) + (x >= 171).
HEARTH_TARGET inline __m256i trits32(__m256i b, __m256i p) {
  const __m256i lo_mask = _mm256_set1_epi16(0x00ff);
  const __m256i lo = _mm256_and_si256(_mm256_mullo_epi16(_mm256_and_si256(b, lo_mask), p), lo_mask);
  const __m256i hi = _mm256_mullo_epi16(_mm256_andnot_si256(lo_mask, b), p);  // (b_hi * 256 * p) mod 2^16
  const __m256i q = _mm256_or_si256(lo, _mm256_andnot_si256(lo_mask, hi));
  const __m256i ge86 = _mm256_cmpeq_epi8(_mm256_max_epu8(q, _mm256_set1_epi8(86)), q);
  const __m256i ge171 = _mm256_cmpeq_epi8(_mm256_max_epu8(q, _mm256_set1_epi8(static_cast<char>(171))), q);
  return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_set1_epi8(-1), ge86), ge171);  // -1 - (-1 if >= 86) - (-1 if >= 171)
}

}  // namespace

// Value order (see the scalar one): qs[0..31] trit t -> values 32t + m; qs[32..47] trit t ->
// 160 + 16t + m; qh trit t of byte j -> 240 + 4t + j. The last two ranges are taken two
// 16-byte halves at a time: (t, t + 1) of qs[32..47] for t = 0, 2, then trit 4 of qs[32..47]
// beside the sixteen qh values.
HEARTH_TARGET inline __attribute__((always_inline)) int32_t isum_tq1_0(const BlockTQ1_0& x, const BlockQ8_K& y) {
  static constexpr int16_t kPow3[5] = {1, 3, 9, 27, 81};
  const __m256i head = load(x.qs);
  const __m128i tail = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs + 32));
  const __m256i tails = _mm256_set_m128i(tail, tail);
  uint32_t qh;
  std::memcpy(&qh, x.qh, 4);
  __m256i acc = _mm256_setzero_si256();
  for (int t = 0; t < 5; ++t)
    acc = _mm256_add_epi32(acc, dot_trits(trits32(head, _mm256_set1_epi16(kPow3[t])), load(y.qs + 32 * t)));
  for (int t = 0; t < 4; t += 2) {
    const __m256i p = _mm256_set_m128i(_mm_set1_epi16(kPow3[t + 1]), _mm_set1_epi16(kPow3[t]));
    acc = _mm256_add_epi32(acc, dot_trits(trits32(tails, p), load(y.qs + 160 + 16 * t)));
  }
  const __m256i last = _mm256_set_m128i(_mm_set1_epi32(static_cast<int>(qh)), tail);
  const __m256i p = _mm256_setr_epi16(81, 81, 81, 81, 81, 81, 81, 81, 1, 1, 3, 3, 9, 9, 27, 27);
  acc = _mm256_add_epi32(acc, dot_trits(trits32(last, p), load(y.qs + 224)));
  return hsum_i32(acc);
}

HEARTH_TARGET inline __attribute__((always_inline)) int32_t isum_tq2_0(const BlockTQ2_0& x, const BlockQ8_K& y) {
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  __m256i acc = _mm256_setzero_si256();
  for (int g = 0; g < 2; ++g) {
    const __m256i q = load(x.qs + 32 * g);
    for (int l = 0; l < 4; ++l) {
      // 16-bit shifts move no bit of one byte into the two kept bits of the other.
      const __m256i tl = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(q, 2 * l), three), one);
      acc = _mm256_add_epi32(acc, dot_trits(tl, load(y.qs + 128 * g + 32 * l)));
    }
  }
  return hsum_i32(acc);
}

HEARTH_TARGET int32_t block_isum_tq1_0(const BlockTQ1_0& x, const BlockQ8_K& y) { return isum_tq1_0(x, y); }
HEARTH_TARGET int32_t block_isum_tq2_0(const BlockTQ2_0& x, const BlockQ8_K& y) { return isum_tq2_0(x, y); }

HEARTH_TARGET float dot_tq1_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockTQ1_0*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += static_cast<float>(isum_tq1_0(x[i], y[i])) * (fp16_to_fp32(x[i].d) * y[i].d);
  return s;
}

HEARTH_TARGET float dot_tq2_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockTQ2_0*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += static_cast<float>(isum_tq2_0(x[i], y[i])) * (y[i].d * fp16_to_fp32(x[i].d));
  return s;
}

}  // namespace hearth::kernels::avx2
