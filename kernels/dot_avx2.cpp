// AVX2 + FMA + F16C dot products. Integer block sums are exact (the same integers as
// the scalar path); float accumulation order differs, within the tested tolerance.
#include <immintrin.h>

#include "kernels/dots.h"
#include "kernels/simd256.h"
#include "quant/fp16.h"

namespace hearth::kernels::avx2 {

using namespace hearth::quant;
using namespace hearth::kernels::simd256;

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c")))

namespace {

// Eight int32 partial sums of x . y for 32 signed bytes each (|x|, |y| <= 127, or
// x = -128 with |y| <= 127): |x| times y carrying x's sign, through maddubs.
HEARTH_TARGET inline __m256i dot_i8(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// The 32 nibbles of a Q4_0 block as signed bytes in [-8, 7], in element order.
HEARTH_TARGET inline __m256i q4_0_bytes(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
  return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

// sum_j sc_j * (q . y) over the 8 sub-blocks of a Q4_K block, as 8 int32 lanes.
HEARTH_TARGET inline __m256i q4_K_scaled(const BlockQ4_K& x, const BlockQ8_K& y, const uint8_t* sc) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i q = load(x.qs + 32 * c);
    const __m256i lo = _mm256_and_si256(q, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    const __m256i plo = _mm256_maddubs_epi16(lo, load(y.qs + 64 * c));
    const __m256i phi = _mm256_maddubs_epi16(hi, load(y.qs + 64 * c + 32));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
  }
  return acc;
}

HEARTH_TARGET inline int32_t q4_K_mins(const BlockQ8_K& y, const uint8_t* m) {
  int32_t s = 0;
  for (int j = 0; j < 8; ++j) s += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  return s;
}

// sum over the block of sc_g * (q6 . y) with q6 in [0, 63] (the -32 is applied by the caller).
HEARTH_TARGET inline __m256i q6_K_unsigned(const BlockQ6_K& x, const BlockQ8_K& y) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  __m256i acc = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = load(x.ql + 64 * h), l1 = load(x.ql + 64 * h + 32), qh = load(x.qh + 32 * h);
    const __m256i q[4] = {
        _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4)),
        _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4)),
    };
    for (int k = 0; k < 4; ++k) {
      const __m256i p = _mm256_maddubs_epi16(q[k], load(y.qs + 128 * h + 32 * k));
      const int g = 8 * h + 2 * k;  // scale groups of the low and high 16 elements
      const __m256i s = _mm256_set_m128i(_mm_set1_epi16(x.scales[g + 1]), _mm_set1_epi16(x.scales[g]));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
    }
  }
  return acc;
}

HEARTH_TARGET inline int32_t q6_K_offset(const BlockQ6_K& x, const BlockQ8_K& y) {
  int32_t s = 0;
  for (int g = 0; g < 16; ++g) s += x.scales[g] * y.bsums[g];
  return 32 * s;
}

}  // namespace

// Float weights eight lanes at a time, for f32, f16 (F16C) and bf16 (the top half of an
// f32: widened and shifted into place).
template <FloatKind K>
HEARTH_TARGET inline __m256 load8(const void* p, int64_t i) {
  if constexpr (K == FloatKind::F32) return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
  if constexpr (K == FloatKind::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <FloatKind K>
HEARTH_TARGET float dot_float(int64_t n, const void* w, const void* a) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load8<K>(w, i + 8 * k), load8<K>(a, i + 8 * k), acc[k]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load8<K>(w, i), load8<K>(a, i), acc[0]);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) s += float_at<K>(w, i) * float_at<K>(a, i);
  return s;
}

HEARTH_TARGET float dot_f32(int64_t n, const void* w, const void* a) { return dot_float<FloatKind::F32>(n, w, a); }
HEARTH_TARGET float dot_f16(int64_t n, const void* w, const void* a) { return dot_float<FloatKind::F16>(n, w, a); }
HEARTH_TARGET float dot_bf16(int64_t n, const void* w, const void* a) { return dot_float<FloatKind::BF16>(n, w, a); }

HEARTH_TARGET int32_t block_isum_q8_0(const BlockQ8_0& x, const BlockQ8_0& y) { return hsum_i32(dot_i8(load(x.qs), load(y.qs))); }

HEARTH_TARGET int32_t block_isum_q4_0(const BlockQ4_0& x, const BlockQ8_0& y) {
  return hsum_i32(dot_i8(q4_0_bytes(x.qs), load(y.qs)));
}

HEARTH_TARGET float dot_q8_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(load(x[i].qs), load(y[i].qs))), d, acc);
  }
  return hsum(acc);
}

HEARTH_TARGET float dot_q4_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(q4_0_bytes(x[i].qs), load(y[i].qs))), d, acc);
  }
  return hsum(acc);
}

HEARTH_TARGET BlockSums block_isum_q4_K(const BlockQ4_K& x, const BlockQ8_K& y) {
  uint8_t sc[8], m[8];
  scalar::q4_k_scales(x.scales, sc, m);
  return {hsum_i32(q4_K_scaled(x, y, sc)), q4_K_mins(y, m)};
}

HEARTH_TARGET float dot_q4_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], m[8];
    scalar::q4_k_scales(x[i].scales, sc, m);
    const __m256i s = q4_K_scaled(x[i], y[i], sc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(y[i].d * h2f(x[i].d)), acc);
    mins += y[i].d * h2f(x[i].dmin) * static_cast<float>(q4_K_mins(y[i], m));
  }
  return hsum(acc) - mins;
}

HEARTH_TARGET int32_t block_isum_q6_K(const BlockQ6_K& x, const BlockQ8_K& y) {
  return hsum_i32(q6_K_unsigned(x, y)) - q6_K_offset(x, y);
}

HEARTH_TARGET float dot_q6_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float off = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d) * y[i].d;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q6_K_unsigned(x[i], y[i])), _mm256_set1_ps(d), acc);
    off += d * static_cast<float>(q6_K_offset(x[i], y[i]));
  }
  return hsum(acc) - off;
}

}  // namespace hearth::kernels::avx2
