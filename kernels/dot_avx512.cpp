// AVX-512 (VL + VNNI) dot products: vpdpbusd does the u8 x s8 multiply-adds into int32
// in one instruction, without the 16-bit intermediate of AVX2's maddubs. Integer block
// sums are exact; float accumulation as in the AVX2 path.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/dots.h"
#include "kernels/gemv_fast.h"
#include "kernels/simd256.h"
#include "quant/fp16.h"

namespace hearth::kernels::avx512 {

using namespace hearth::quant;
using namespace hearth::kernels::simd256;

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace {

// x . y for signed bytes as eight int32 partial sums: |x| (unsigned) times y with x's sign.
HEARTH_TARGET inline __m256i dot_i8(__m256i x, __m256i y) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

HEARTH_TARGET inline __m256i q4_0_bytes(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
  return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

// A q4_K block's eight 6-bit scales and mins, the values of scalar::q4_k_scales, unpacked
// four at a time from the three 32-bit words of the packed bytes.
inline void q4_K_scales_mins(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  const uint32_t w[4] = {u[0] & k6, (u[2] & k4) | (((u[0] >> 6) & k2) << 4), u[1] & k6,
                         ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4)};
  std::memcpy(sc, w, 8);
  std::memcpy(m, w + 2, 8);
}

// The nibbles of a q4_K block: lo[c] and hi[c] hold quants 64c … 64c + 31 and 64c + 32 … 64c + 63.
HEARTH_TARGET inline void q4_K_nibbles(const BlockQ4_K& x, __m256i* lo, __m256i* hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int c = 0; c < 4; ++c) {
    const __m256i q = load(x.qs + 32 * c);
    lo[c] = _mm256_and_si256(q, m4);
    hi[c] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  }
}

// sum over sub-blocks of scale x (quants . activations), as eight int32 lanes (lane k:
// bytes 4k … 4k + 3 of every 32): maddubs pairs the products into int16 (at most
// 2 * 15 * 128, no saturation), vpdpwssd multiplies them by the scale and accumulates.
HEARTH_TARGET inline __m256i q4_K_isum(const __m256i* lo, const __m256i* hi, const int8_t* yq, const uint8_t* sc) {
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    acc = _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(lo[c], load(yq + 64 * c)), _mm256_set1_epi16(sc[2 * c]));
    acc = _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(hi[c], load(yq + 64 * c + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
  }
  return acc;
}

HEARTH_TARGET inline __m256i q4_K_scaled(const BlockQ4_K& x, const BlockQ8_K& y, const uint8_t* sc) {
  __m256i lo[4], hi[4];
  q4_K_nibbles(x, lo, hi);
  return q4_K_isum(lo, hi, y.qs, sc);
}

// The 6-bit quants (0..63) of half h of a q6_K block: four vectors of 32, in activation order.
HEARTH_TARGET inline void q6_K_quants(const BlockQ6_K& x, int h, __m256i* q) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const __m256i l0 = load(x.ql + 64 * h), l1 = load(x.ql + 64 * h + 32), qh = load(x.qh + 32 * h);
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
}

// The int8 scales of the 32 activations at 32 * k as int16 lanes: lanes 0-7 group 2k,
// lanes 8-15 group 2k + 1 (so that int32 lane l of the products gets its group's scale).
HEARTH_TARGET inline __m256i q6_K_scale_pair(const BlockQ6_K& x, int k) {
  return _mm256_set_m128i(_mm_set1_epi16(x.scales[2 * k + 1]), _mm_set1_epi16(x.scales[2 * k]));
}

// scale x (quants . activations) for the 32 activations at 32 * k: maddubs pairs the
// products into int16 (at most 2 * 63 * 128, no saturation), vpdpwssd applies the scale.
HEARTH_TARGET inline __m256i q6_K_scaled_add(__m256i acc, __m256i q, const int8_t* yq, __m256i scale16) {
  return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(q, load(yq)), scale16);
}

HEARTH_TARGET inline __m256i q6_K_unsigned(const BlockQ6_K& x, const BlockQ8_K& y) {
  __m256i acc = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    __m256i q[4];
    q6_K_quants(x, h, q);
    for (int k = 0; k < 4; ++k) acc = q6_K_scaled_add(acc, q[k], y.qs + 128 * h + 32 * k, q6_K_scale_pair(x, 4 * h + k));
  }
  return acc;
}

}  // namespace

HEARTH_TARGET int32_t block_isum_q8_0(const BlockQ8_0& x, const BlockQ8_0& y) { return hsum_i32(dot_i8(load(x.qs), load(y.qs))); }
HEARTH_TARGET int32_t block_isum_q4_0(const BlockQ4_0& x, const BlockQ8_0& y) {
  return hsum_i32(dot_i8(q4_0_bytes(x.qs), load(y.qs)));
}

// Float weights, sixteen lanes at a time, for f32, f16 and bf16 (the top half of an f32).
template <FloatKind K>
HEARTH_TARGET inline __m512 load16(const void* p, int64_t i) {
  if constexpr (K == FloatKind::F32) return _mm512_loadu_ps(static_cast<const float*>(p) + i);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + i));
  // (The maskz forms: GCC 12 warns about the undefined source of the unmasked ones.)
  if constexpr (K == FloatKind::F16) return _mm512_maskz_cvtph_ps(0xFFFF, h);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_cvtepu16_epi32(0xFFFF, h), 16));
}

// Two accumulators, each 16 lanes of every 32 values: enough to hide the FMA latency of a
// bandwidth-bound row, and few enough that float_block's tiles of 3 rows x 4 tokens fit the
// registers with their operands.
template <FloatKind K>
HEARTH_TARGET float dot_float(int64_t n, const void* w, const void* a) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(load16<K>(w, i), load16<K>(a, i), acc0);
    acc1 = _mm512_fmadd_ps(load16<K>(w, i + 16), load16<K>(a, i + 16), acc1);
  }
  if (i + 16 <= n) {
    acc0 = _mm512_fmadd_ps(load16<K>(w, i), load16<K>(a, i), acc0);
    i += 16;
  }
  alignas(64) float lanes[16];  // (through memory: GCC 12 warns on the 512 -> 256 casts)
  _mm512_store_ps(lanes, _mm512_add_ps(acc0, acc1));
  float s = hsum(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
  for (; i < n; ++i) s += float_at<K>(w, i) * float_at<K>(a, i);
  return s;
}

// T tokens against one float weight row: each 16-weight load (and conversion) serves all
// T; per token the accumulators, their order and the reduction are dot_float's, and the
// activations (converted to f32 beforehand, which is exact) equal what it loads, so the
// results are equal bit for bit.
template <FloatKind K, int T>
HEARTH_TARGET void float_tile(int64_t n, const void* w, const float* a, int64_t a_stride, float* const* out, int64_t r) {
  __m512 acc[T][2];
  for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 w0 = load16<K>(w, i), w1 = load16<K>(w, i + 16);
    for (int t = 0; t < T; ++t) {
      const float* at = a + t * a_stride + i;
      acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(at), acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(at + 16), acc[t][1]);
    }
  }
  if (i + 16 <= n) {
    const __m512 w0 = load16<K>(w, i);
    for (int t = 0; t < T; ++t) acc[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(a + t * a_stride + i), acc[t][0]);
    i += 16;
  }
  for (int t = 0; t < T; ++t) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(acc[t][0], acc[t][1]));
    float s = hsum(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
    for (int64_t k = i; k < n; ++k) s += float_at<K>(w, k) * a[t * a_stride + k];
    out[t][r] = s;
  }
}

// R weight rows against T tokens: each 16-weight load serves T tokens and each 16-activation
// load R rows (3 x 4: 7 loads for 12 FMAs, against 5 for 4 in float_tile<K, 4>). Every
// (row, token) pair keeps dot_float's two accumulators, its order and its reduction, so the
// results equal it bit for bit. R * T * 2 accumulators and R + 1 operands fit the 32
// registers.
// One 16-value step of float_block into accumulator k of every (row, token) pair.
template <FloatKind K, int R, int T, int k>
HEARTH_TARGET inline __attribute__((always_inline)) void block_step(const uint8_t* w, size_t row_bytes, const float* a,
                                                                   int64_t a_stride, int64_t at, __m512 (&acc)[R][T][2]) {
  __m512 wv[R];
#pragma GCC unroll 8
  for (int q = 0; q < R; ++q) wv[q] = load16<K>(w + q * row_bytes, at);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const __m512 av = _mm512_load_ps(a + t * a_stride + at);
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) acc[q][t][k] = _mm512_fmadd_ps(wv[q], av, acc[q][t][k]);
  }
}

template <FloatKind K, int R, int T>
HEARTH_TARGET void float_block(int64_t n, const uint8_t* w, size_t row_bytes, const float* a, int64_t a_stride,
                               float* const* out, int64_t r) {
  __m512 acc[R][T][2];
#pragma GCC unroll 8
  for (int q = 0; q < R; ++q)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[q][t][0] = acc[q][t][1] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    block_step<K, R, T, 0>(w, row_bytes, a, a_stride, i, acc);
    block_step<K, R, T, 1>(w, row_bytes, a, a_stride, i + 16, acc);
  }
  if (i + 16 <= n) {
    block_step<K, R, T, 0>(w, row_bytes, a, a_stride, i, acc);
    i += 16;
  }
  for (int q = 0; q < R; ++q)
    for (int t = 0; t < T; ++t) {
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, _mm512_add_ps(acc[q][t][0], acc[q][t][1]));
      float s = hsum(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
      for (int64_t k = i; k < n; ++k) s += float_at<K>(w + q * row_bytes, k) * a[t * a_stride + k];
      out[t][r + q] = s;
    }
}

template <FloatKind K>
HEARTH_TARGET void gemm_float(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0,
                              int64_t r1, float* y, int64_t y_stride) {
  constexpr int T = 4;
  constexpr int BR = 3, BT = 4;  // float_block's tile
  // The activations as f32 rows 64-byte aligned (a 512-bit load that straddles two cache
  // lines halved this kernel's speed here): copied or converted (exactly) per thread into
  // scratch kept between calls, each row padded to a multiple of 16 floats.
  thread_local std::vector<float> af;
  const int64_t a_stride = (n + 15) / 16 * 16;
  af.resize(static_cast<size_t>(B) * a_stride + 16);
  float* a = af.data() + (16 - reinterpret_cast<uintptr_t>(af.data()) / sizeof(float) % 16) % 16;
  for (int j = 0; j < B; ++j) {
    const uint8_t* row = static_cast<const uint8_t*>(act) + j * act_bytes;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_store_ps(&a[j * a_stride + i], load16<K>(row, i));
    for (; i < n; ++i) a[j * a_stride + i] = float_at<K>(row, i);
  }
  std::vector<float*> out(static_cast<size_t>(B));
  for (int j = 0; j < B; ++j) out[j] = y + j * y_stride;
  const auto* wb = static_cast<const uint8_t*>(W);
  // Rows in chunks of about 512 KB, which stay in L2 while every group of BT tokens passes
  // over them (tokens outer within a chunk: a group's activation rows stay close while the
  // chunk's weight rows stream by).
  const int64_t r_pairs = r0 + (r1 - r0) / BR * BR;
  const int64_t chunk = std::max<int64_t>(BR, static_cast<int64_t>((size_t{512} << 10) / row_bytes) / BR * BR);
  for (int64_t c0 = r0; c0 < r_pairs; c0 += chunk) {
    const int64_t c1 = std::min(r_pairs, c0 + chunk);
    int j = 0;
    for (; j + BT <= B; j += BT)
      for (int64_t r = c0; r < c1; r += BR)
        float_block<K, BR, BT>(n, wb + static_cast<size_t>(r) * row_bytes, row_bytes, a + j * a_stride, a_stride, &out[j], r);
    for (; j < B; ++j)
      for (int64_t r = c0; r < c1; r += BR)
        float_block<K, BR, 1>(n, wb + static_cast<size_t>(r) * row_bytes, row_bytes, a + j * a_stride, a_stride, &out[j], r);
  }
  int64_t r = r_pairs;
  for (; r < r1; ++r) {  // the odd last row
    const void* w = wb + static_cast<size_t>(r) * row_bytes;
    int t = 0;
    for (; t + T <= B; t += T) float_tile<K, T>(n, w, a + t * a_stride, a_stride, &out[t], r);
    for (; t < B; ++t) float_tile<K, 1>(n, w, a + t * a_stride, a_stride, &out[t], r);
  }
}

HEARTH_TARGET void gemm_f32(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
                            float* y, int64_t y_stride) {
  gemm_float<FloatKind::F32>(W, row_bytes, n, act, act_bytes, B, r0, r1, y, y_stride);
}
HEARTH_TARGET void gemm_f16(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
                            float* y, int64_t y_stride) {
  gemm_float<FloatKind::F16>(W, row_bytes, n, act, act_bytes, B, r0, r1, y, y_stride);
}
HEARTH_TARGET void gemm_bf16(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0,
                             int64_t r1, float* y, int64_t y_stride) {
  gemm_float<FloatKind::BF16>(W, row_bytes, n, act, act_bytes, B, r0, r1, y, y_stride);
}

HEARTH_TARGET float dot_f32(int64_t n, const void* w, const void* a) { return dot_float<FloatKind::F32>(n, w, a); }
HEARTH_TARGET float dot_f16(int64_t n, const void* w, const void* a) { return dot_float<FloatKind::F16>(n, w, a); }
HEARTH_TARGET float dot_bf16(int64_t n, const void* w, const void* a) { return dot_float<FloatKind::BF16>(n, w, a); }

HEARTH_TARGET float dot_q8_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / QK8_0;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(load(x[i].qs), load(y[i].qs))),
                           _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(load(x[i + 1].qs), load(y[i + 1].qs))),
                           _mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), acc1);
  }
  for (; i < nb; ++i)
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(load(x[i].qs), load(y[i].qs))),
                           _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

HEARTH_TARGET float dot_q4_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / QK4_0;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(q4_0_bytes(x[i].qs), load(y[i].qs))),
                           _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(q4_0_bytes(x[i + 1].qs), load(y[i + 1].qs))),
                           _mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), acc1);
  }
  for (; i < nb; ++i)
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(q4_0_bytes(x[i].qs), load(y[i].qs))),
                           _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

HEARTH_TARGET BlockSums block_isum_q4_K(const BlockQ4_K& x, const BlockQ8_K& y) {
  uint8_t sc[8], m[8];
  q4_K_scales_mins(x.scales, sc, m);
  int32_t mins = 0;
  for (int j = 0; j < 8; ++j) mins += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  return {hsum_i32(q4_K_scaled(x, y, sc)), mins};
}

HEARTH_TARGET float dot_q4_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead<sizeof(BlockQ4_K)>(x + i);
    uint8_t sc[8], m[8];
    q4_K_scales_mins(x[i].scales, sc, m);
    int32_t mi = 0;
    for (int j = 0; j < 8; ++j) mi += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q4_K_scaled(x[i], y[i], sc)), _mm256_set1_ps(y[i].d * h2f(x[i].d)), acc);
    mins += y[i].d * h2f(x[i].dmin) * static_cast<float>(mi);
  }
  return hsum(acc) - mins;
}

// Tokens per pass of the multi-token kernels: a block's unpacked weights (eight vectors)
// and eight accumulators fit the 32 vector registers AVX-512 VL gives.
constexpr int kTokens = 8;

// Several activation rows against each weight row: per block, the scales and the nibbles
// are unpacked once and used for up to kTokens tokens. Each (row, token) goes through the
// same operations in the same order as dot_q4_K, so the results are identical to it.
HEARTH_TARGET void gemm_q4_K(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0,
                             int64_t r1, float* y, int64_t y_stride) {
  const int64_t nb = n / QK_K;
  for (int64_t r = r0; r < r1; ++r) {
    const auto* x = reinterpret_cast<const BlockQ4_K*>(static_cast<const uint8_t*>(W) + static_cast<size_t>(r) * row_bytes);
    for (int j0 = 0; j0 < B; j0 += kTokens) {
      const int nj = std::min(kTokens, B - j0);
      __m256 acc[kTokens];
      for (__m256& v : acc) v = _mm256_setzero_ps();
      float mins[kTokens] = {};
      for (int64_t i = 0; i < nb; ++i) {
        uint8_t sc[8], m[8];
        q4_K_scales_mins(x[i].scales, sc, m);
        __m256i lo[4], hi[4];
        q4_K_nibbles(x[i], lo, hi);
        const float dx = h2f(x[i].d), dmin = h2f(x[i].dmin);
        for (int t = 0; t < nj; ++t) {
          const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + (j0 + t) * act_bytes)[i];
          int32_t mi = 0;
          for (int j = 0; j < 8; ++j) mi += m[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
          const __m256i s = q4_K_isum(lo, hi, a.qs, sc);
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(a.d * dx), acc[t]);
          mins[t] += a.d * dmin * static_cast<float>(mi);
        }
      }
      for (int t = 0; t < nj; ++t) y[(j0 + t) * y_stride + r] = hsum(acc[t]) - mins[t];
    }
  }
}

HEARTH_TARGET int32_t block_isum_q6_K(const BlockQ6_K& x, const BlockQ8_K& y) {
  int32_t off = 0;
  for (int g = 0; g < 16; ++g) off += x.scales[g] * y.bsums[g];
  return hsum_i32(q6_K_unsigned(x, y)) - 32 * off;
}

HEARTH_TARGET float dot_q6_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float off = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead<sizeof(BlockQ6_K)>(x + i);
    const float d = h2f(x[i].d) * y[i].d;
    int32_t o = 0;
    for (int g = 0; g < 16; ++g) o += x[i].scales[g] * y[i].bsums[g];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q6_K_unsigned(x[i], y[i])), _mm256_set1_ps(d), acc);
    off += d * static_cast<float>(32 * o);
  }
  return hsum(acc) - off;
}

// q6_K likewise: the 6-bit quants and the scale vectors unpacked once per block for up to
// kTokens tokens, each (row, token) computed in dot_q6_K's order.
HEARTH_TARGET void gemm_q6_K(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0,
                             int64_t r1, float* y, int64_t y_stride) {
  const int64_t nb = n / QK_K;
  for (int64_t r = r0; r < r1; ++r) {
    const auto* x = reinterpret_cast<const BlockQ6_K*>(static_cast<const uint8_t*>(W) + static_cast<size_t>(r) * row_bytes);
    for (int j0 = 0; j0 < B; j0 += kTokens) {
      const int nj = std::min(kTokens, B - j0);
      __m256 acc[kTokens];
      for (__m256& v : acc) v = _mm256_setzero_ps();
      float off[kTokens] = {};
      for (int64_t i = 0; i < nb; ++i) {
        __m256i q[8], sc[8];
        q6_K_quants(x[i], 0, q);
        q6_K_quants(x[i], 1, q + 4);
        for (int k = 0; k < 8; ++k) sc[k] = q6_K_scale_pair(x[i], k);
        const float dx = h2f(x[i].d);
        for (int t = 0; t < nj; ++t) {
          const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + (j0 + t) * act_bytes)[i];
          const float d = dx * a.d;
          int32_t o = 0;
          for (int g = 0; g < 16; ++g) o += x[i].scales[g] * a.bsums[g];
          __m256i s = _mm256_setzero_si256();
          for (int k = 0; k < 8; ++k) s = q6_K_scaled_add(s, q[k], a.qs + 32 * k, sc[k]);
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d), acc[t]);
          off[t] += d * static_cast<float>(32 * o);
        }
      }
      for (int t = 0; t < nj; ++t) y[(j0 + t) * y_stride + r] = hsum(acc[t]) - off[t];
    }
  }
}

}  // namespace hearth::kernels::avx512
