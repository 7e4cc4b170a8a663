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

// Sixteen packed TQ1_0 bytes b, each with its own power of three p: the trit of each,
// ((b * p mod 256) * 3) >> 8 - 1, as signed bytes.
HEARTH_TARGET inline __m128i trits16(__m128i b, __m256i pow3) {
  const __m256i w = _mm256_cvtepu8_epi16(b);
  const __m256i q = _mm256_and_si256(_mm256_mullo_epi16(w, pow3), _mm256_set1_epi16(0xFF));
  const __m256i t = _mm256_sub_epi16(_mm256_srli_epi16(_mm256_mullo_epi16(q, _mm256_set1_epi16(3)), 8), _mm256_set1_epi16(1));
  return _mm_packs_epi16(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

}  // namespace

HEARTH_TARGET inline __attribute__((always_inline)) int32_t isum_tq1_0(const BlockTQ1_0& x, const BlockQ8_K& y) {
  static constexpr int16_t kPow3[5] = {1, 3, 9, 27, 81};
  alignas(32) int8_t t[QK_K];
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs + 16));
  const __m128i tail = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs + 32));
  for (int n = 0; n < 5; ++n) {
    const __m256i p = _mm256_set1_epi16(kPow3[n]);
    _mm_store_si128(reinterpret_cast<__m128i*>(t + 32 * n), trits16(lo, p));
    _mm_store_si128(reinterpret_cast<__m128i*>(t + 32 * n + 16), trits16(hi, p));
    _mm_store_si128(reinterpret_cast<__m128i*>(t + 160 + 16 * n), trits16(tail, p));
  }
  // The last 16 values: trit n of qh byte j at 240 + 4n + j.
  uint32_t qh;
  std::memcpy(&qh, x.qh, 4);
  const __m256i p4 = _mm256_setr_epi16(1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27);
  _mm_store_si128(reinterpret_cast<__m128i*>(t + 240), trits16(_mm_set1_epi32(static_cast<int>(qh)), p4));
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < QK_K / 32; ++c) acc = _mm256_add_epi32(acc, dot_trits(_mm256_load_si256(reinterpret_cast<const __m256i*>(t + 32 * c)), load(y.qs + 32 * c)));
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
