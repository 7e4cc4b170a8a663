#include "kernels/ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/simd256.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace hearth::kernels {
namespace {

float exp_shifted_scalar(float* x, int64_t n, float max) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  return sum;
}

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c")))

// exp(v) for v <= 0: v = k ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial to
// r^6 (error below r^7/7! ~ 1.2e-7 relative), times 2^k put into the exponent bits.
// Below -87.3 (where 2^k would be subnormal) the result is 0.
HEARTH_TARGET inline __m256 exp_neg(__m256 v) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 under = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
  v = _mm256_max_ps(v, lo);
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), v);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

HEARTH_TARGET float exp_shifted_avx2(float* x, int64_t n, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = simd256::hsum(acc);
  if (i < n) {
    // The tail through the same polynomial, so every element is computed alike.
    alignas(32) float t[8];
    for (int k = 0; k < 8; ++k) t[k] = i + k < n ? x[i + k] - max : -100.f;
    _mm256_store_ps(t, exp_neg(_mm256_load_ps(t)));
    for (int k = 0; i + k < n; ++k) sum += (x[i + k] = t[k]);
  }
  return sum;
}

void swiglu_scalar(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// x * sigmoid(v) through e = exp(-|v|), which cannot overflow: x / (1 + e) for v >= 0
// and x e / (1 + e) for v < 0.
HEARTH_TARGET inline __m256 times_sigmoid(__m256 x, __m256 v) {
  const __m256 e = exp_neg(_mm256_or_ps(v, _mm256_set1_ps(-0.f)));
  const __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, e), neg);
  return _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

HEARTH_TARGET void swiglu_avx2(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    _mm256_storeu_ps(g + i, _mm256_mul_ps(times_sigmoid(x, x), _mm256_loadu_ps(u + i)));
  }
  swiglu_scalar(g + i, u + i, n - i);
}

constexpr float kGeluA = 0.044715f, kSqrt2OverPi = 0.79788456080286535587989211986876f;

inline float gelu1(float x) { return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluA * x * x))); }
inline float silu1(float x) { return x / (1.0f + std::exp(-x)); }

// gelu(x) = 0.5 x (1 + tanh z) = x sigmoid(2z): the same exp-based helper as silu.
HEARTH_TARGET inline __m256 gelu8(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 z = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(kSqrt2OverPi), x),
                                 _mm256_fmadd_ps(_mm256_set1_ps(kGeluA), x2, _mm256_set1_ps(1.f)));
  return times_sigmoid(x, _mm256_add_ps(z, z));
}

// Applies f8 to every eight values and f1 to the tail; x = f(x) (times up when given).
template <class F8, class F1>
HEARTH_TARGET inline void map_avx2(float* x, const float* up, int64_t n, F8 f8, F1 f1) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 r = f8(_mm256_loadu_ps(x + i));
    _mm256_storeu_ps(x + i, up ? _mm256_mul_ps(r, _mm256_loadu_ps(up + i)) : r);
  }
  for (; i < n; ++i) x[i] = up ? f1(x[i]) * up[i] : f1(x[i]);
}

struct Silu8 {
  HEARTH_TARGET __m256 operator()(__m256 v) const { return times_sigmoid(v, v); }
};
struct Gelu8 {
  HEARTH_TARGET __m256 operator()(__m256 v) const { return gelu8(v); }
};

HEARTH_TARGET void silu_avx2(float* x, int64_t n) { map_avx2(x, nullptr, n, Silu8{}, silu1); }
HEARTH_TARGET void gelu_avx2(float* x, const float* up, int64_t n) { map_avx2(x, up, n, Gelu8{}, gelu1); }

// tanh(v) = sign(v) (1 - e) / (1 + e), e = exp(-2|v|): within a few 1e-7 absolutely.
HEARTH_TARGET inline __m256 tanh8(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  const __m256 a = _mm256_andnot_ps(sign, v);
  const __m256 e = exp_neg(_mm256_mul_ps(_mm256_set1_ps(-2.f), a));
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  return _mm256_or_ps(t, _mm256_and_ps(sign, v));
}

// The part of softmax before the exponentials: y = scale x, capped, masked; returns max y.
float softmax_prepare_scalar(float* x, int64_t n, float scale, float softcap, const float* mask) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    float y = x[i] * scale;
    if (softcap > 0) y = softcap * std::tanh(y / softcap);
    if (mask) y += mask[i];
    max = std::max(max, x[i] = y);
  }
  return max;
}

HEARTH_TARGET inline __m256 softmax_prepare8(__m256 x, __m256 mask, float scale, float softcap) {
  __m256 y = _mm256_mul_ps(x, _mm256_set1_ps(scale));
  if (softcap > 0) y = _mm256_mul_ps(_mm256_set1_ps(softcap), tanh8(_mm256_mul_ps(y, _mm256_set1_ps(1 / softcap))));
  return _mm256_add_ps(y, mask);
}

HEARTH_TARGET float softmax_prepare_avx2(float* x, int64_t n, float scale, float softcap, const float* mask) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 y = softmax_prepare8(_mm256_loadu_ps(x + i), mask ? _mm256_loadu_ps(mask + i) : _mm256_setzero_ps(), scale, softcap);
    _mm256_storeu_ps(x + i, y);
    m = _mm256_max_ps(m, y);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float max = *std::max_element(lanes, lanes + 8);
  if (i < n) {
    // The tail through the same vector code.
    alignas(32) float t[8], tm[8];
    for (int k = 0; k < 8; ++k) {
      t[k] = i + k < n ? x[i + k] : 0.f;
      tm[k] = mask && i + k < n ? mask[i + k] : 0.f;
    }
    _mm256_store_ps(t, softmax_prepare8(_mm256_load_ps(t), _mm256_load_ps(tm), scale, softcap));
    for (int k = 0; i + k < n; ++k) max = std::max(max, x[i + k] = t[k]);
  }
  return max;
}

// Sums of x - shift and of its squares in double (the float values and products
// converted, as ggml sums them); x - shift stored to centred when given.
HEARTH_TARGET double sum_squares_avx2(const float* x, int64_t n, float shift, float* centred) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  const __m256 s = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), s);
    if (centred) _mm256_storeu_ps(centred + i, v);
    const __m256 sq = _mm256_mul_ps(v, v);
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  }
  alignas(32) double d[4];
  _mm256_store_pd(d, _mm256_add_pd(a0, a1));
  double sum = (d[0] + d[1]) + (d[2] + d[3]);
  for (; i < n; ++i) {
    const float v = x[i] - shift;
    if (centred) centred[i] = v;
    sum += static_cast<double>(v * v);
  }
  return sum;
}

HEARTH_TARGET double sum_avx2(const float* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  alignas(32) double d[4];
  _mm256_store_pd(d, _mm256_add_pd(a0, a1));
  double sum = (d[0] + d[1]) + (d[2] + d[3]);
  for (; i < n; ++i) sum += x[i];
  return sum;
}

// out = x * scale, then * w and + b where given (separate roundings, as ggml's ops).
void scale_affine_scalar(const float* x, float scale, const float* w, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * scale;
    if (w) v *= w[i];
    if (b) v += b[i];
    out[i] = v;
  }
}

HEARTH_TARGET void scale_affine_avx2(const float* x, float scale, const float* w, const float* b, float* out, int64_t n) {
  const __m256 s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
    if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
    if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
    _mm256_storeu_ps(out + i, v);
  }
  scale_affine_scalar(x + i, scale, w ? w + i : nullptr, b ? b + i : nullptr, out + i, n - i);
}

template <bool Mul>
HEARTH_TARGET void binary_avx2(const float* a, const float* b, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
    _mm256_storeu_ps(out + i, Mul ? _mm256_mul_ps(x, y) : _mm256_add_ps(x, y));
  }
  for (; i < n; ++i) out[i] = Mul ? a[i] * b[i] : a[i] + b[i];
}

float cache_at(const void* base, bool half, size_t i) {
  return half ? quant::fp16_to_fp32(static_cast<const uint16_t*>(base)[i]) : static_cast<const float*>(base)[i];
}

void attn_scores_scalar(const float* q, const void* kt, size_t k_stride, bool half, int64_t hd, int64_t n, float scale, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    float s = 0;
    for (int64_t i = 0; i < hd; ++i) s = std::fma(q[i], cache_at(kt, half, i * k_stride + t), s);
    out[t] = s * scale;
  }
}

void attn_values_scalar(const float* p, const void* v, size_t v_stride, bool half, int64_t hd, int64_t n, float* out) {
  for (int64_t i = 0; i < hd; ++i) {
    float s = 0;
    for (int64_t t = 0; t < n; ++t) s = std::fma(p[t], cache_at(v, half, t * v_stride + i), s);
    out[i] = s;
  }
}

HEARTH_TARGET inline __m256 load8(const void* base, bool half, size_t i) {
  if (half) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  return _mm256_loadu_ps(static_cast<const float*>(base) + i);
}

// Eight positions per vector (K transposed: dimension i of positions t … t + 7 is one
// load), four vectors at a time to cover the FMA latency; each lane sums q_i k_i in the
// scalar order, so the tail is computed with scalar FMAs to the same result.
HEARTH_TARGET void attn_scores_avx2(const float* q, const void* kt, size_t ks, bool half, int64_t hd, int64_t n, float scale,
                                    float* out) {
  const __m256 sc = _mm256_set1_ps(scale);
  int64_t t = 0;
  for (; t + 32 <= n; t += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < hd; ++i) {
      const __m256 qi = _mm256_set1_ps(q[i]);
      a0 = _mm256_fmadd_ps(qi, load8(kt, half, i * ks + t), a0);
      a1 = _mm256_fmadd_ps(qi, load8(kt, half, i * ks + t + 8), a1);
      a2 = _mm256_fmadd_ps(qi, load8(kt, half, i * ks + t + 16), a2);
      a3 = _mm256_fmadd_ps(qi, load8(kt, half, i * ks + t + 24), a3);
    }
    _mm256_storeu_ps(out + t, _mm256_mul_ps(a0, sc));
    _mm256_storeu_ps(out + t + 8, _mm256_mul_ps(a1, sc));
    _mm256_storeu_ps(out + t + 16, _mm256_mul_ps(a2, sc));
    _mm256_storeu_ps(out + t + 24, _mm256_mul_ps(a3, sc));
  }
  for (; t + 8 <= n; t += 8) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; ++i) a = _mm256_fmadd_ps(_mm256_set1_ps(q[i]), load8(kt, half, i * ks + t), a);
    _mm256_storeu_ps(out + t, _mm256_mul_ps(a, sc));
  }
  attn_scores_scalar(q, static_cast<const uint8_t*>(kt) + t * (half ? 2 : 4), ks, half, hd, n - t, scale, out + t);
}

// Eight values per vector over V's rows (one row per position), hd / 8 accumulators.
HEARTH_TARGET void attn_values_avx2(const float* p, const void* v, size_t vs, bool half, int64_t hd, int64_t n, float* out) {
  if (hd % 8 != 0 || hd > 128) return attn_values_scalar(p, v, vs, half, hd, n, out);
  __m256 acc[16];
  const int64_t nv = hd / 8;
  for (int64_t k = 0; k < nv; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t t = 0; t < n; ++t) {
    const __m256 pt = _mm256_set1_ps(p[t]);
    for (int64_t k = 0; k < nv; ++k) acc[k] = _mm256_fmadd_ps(pt, load8(v, half, t * vs + 8 * k), acc[k]);
  }
  for (int64_t k = 0; k < nv; ++k) _mm256_storeu_ps(out + 8 * k, acc[k]);
}

void attn_values_q8_0_scalar(const float* p, const void* v, size_t vs, int64_t hd, int64_t n, float* out) {
  std::fill(out, out + hd, 0.f);
  for (int64_t t = 0; t < n; ++t) {
    const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(static_cast<const uint8_t*>(v) + t * vs);
    for (int64_t i = 0; i < hd; ++i) out[i] += p[t] * quant::fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
  }
}

// Each position's row dequantized eight values at a time into hd/8 accumulators.
HEARTH_TARGET void attn_values_q8_0_avx2(const float* p, const void* v, size_t vs, int64_t hd, int64_t n, float* out) {
  if (hd % 32 != 0 || hd > 128) return attn_values_q8_0_scalar(p, v, vs, hd, n, out);
  __m256 acc[16];
  const int64_t nv = hd / 8;
  for (int64_t k = 0; k < nv; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t t = 0; t < n; ++t) {
    const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(static_cast<const uint8_t*>(v) + t * vs);
    for (int64_t k = 0; k < nv; ++k) {
      const quant::BlockQ8_0& blk = b[k / 4];
      const __m256 w = _mm256_set1_ps(p[t] * _cvtsh_ss(blk.d));
      const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk.qs + 8 * (k % 4)))));
      acc[k] = _mm256_fmadd_ps(w, q, acc[k]);
    }
  }
  for (int64_t k = 0; k < nv; ++k) _mm256_storeu_ps(out + 8 * k, acc[k]);
}

HEARTH_TARGET void round_to_half_avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
}

// ggml's YaRN: the ramp between the dimensions that keep their extrapolated angle and
// those fully interpolated.
float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * 3.14159265358979323846f)) / (2 * std::log(base));
}

#define HEARTH_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

// Sixteen positions (or a masked tail) of K transposed as floats.
template <bool Half>
HEARTH_AVX512 inline __m512 load16(const void* base, size_t i, __mmask16 m) {
  if constexpr (Half) return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i));
  else return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
}

// Scores of R query rows (q: R x hd, contiguous) over positions [0, n) of K transposed,
// sixteen positions per vector: each converted K vector serves all R rows, and the R
// accumulators are R independent FMA chains. Lane t of row r sums q_ri k_it for i = 0 …
// hd - 1 in order, whatever R and n are. S rows are ns floats apart.
template <bool Half, int R>
HEARTH_AVX512 void scores_rows_avx512(const float* q, int64_t hd, const void* kt, size_t ks, int64_t n, float scale, float* S,
                                      int64_t ns) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t t0 = 0; t0 < n; t0 += 16) {
    const __mmask16 m = t0 + 16 <= n ? 0xFFFF : static_cast<__mmask16>((1u << (n - t0)) - 1);
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < hd; ++i) {
      const __m512 k = load16<Half>(kt, i * ks + t0, m);
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * hd + i]), k, acc[r]);
    }
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(S + r * ns + t0, _mm512_mul_ps(acc[r], sc));
  }
}

// out_r = sum_t p_rt V_t for R rows of probabilities (ns floats apart, zero past each
// row's own length) over positions [0, n) of V's rows: NV vectors of 16 values per row,
// each converted V row serving RP rows at a time. Row r's sums run over t in order, the
// zero probabilities adding nothing, whatever R and n are.
template <bool Half, int NV>
HEARTH_AVX512 void values_rows_avx512(const float* P, int64_t ns, int R, int64_t n, const void* v, size_t vs, float* const* out) {
  constexpr int RP = NV <= 4 ? 4 : NV <= 8 ? 2 : 1;
  for (int r0 = 0; r0 < R; r0 += RP) {
    const float* p[RP];
    for (int r = 0; r < RP; ++r) p[r] = P + std::min(r0 + r, R - 1) * ns;  // rows past R recompute the last one, unstored
    __m512 acc[RP][NV];
    for (int r = 0; r < RP; ++r)
      for (int k = 0; k < NV; ++k) acc[r][k] = _mm512_setzero_ps();
    for (int64_t t = 0; t < n; ++t) {
      __m512 vt[NV];
      for (int k = 0; k < NV; ++k) vt[k] = load16<Half>(v, t * vs + 16 * k, 0xFFFF);
      for (int r = 0; r < RP; ++r) {
        const __m512 pr = _mm512_set1_ps(p[r][t]);
        for (int k = 0; k < NV; ++k) acc[r][k] = _mm512_fmadd_ps(pr, vt[k], acc[r][k]);
      }
    }
    for (int r = 0; r < RP && r0 + r < R; ++r)
      for (int k = 0; k < NV; ++k) _mm512_storeu_ps(out[r0 + r] + 16 * k, acc[r][k]);
  }
}

template <bool Half>
HEARTH_AVX512 void scores_rows(int R, const float* q, int64_t hd, const void* kt, size_t ks, int64_t n, float scale, float* S,
                               int64_t ns) {
  using Fn = void (*)(const float*, int64_t, const void*, size_t, int64_t, float, float*, int64_t);
  static constexpr Fn kFns[kAttendRows] = {scores_rows_avx512<Half, 1>, scores_rows_avx512<Half, 2>, scores_rows_avx512<Half, 3>,
                                           scores_rows_avx512<Half, 4>, scores_rows_avx512<Half, 5>, scores_rows_avx512<Half, 6>,
                                           scores_rows_avx512<Half, 7>, scores_rows_avx512<Half, 8>};
  kFns[R - 1](q, hd, kt, ks, n, scale, S, ns);
}

template <bool Half>
HEARTH_AVX512 void values_rows(int64_t hd, const float* P, int64_t ns, int R, int64_t n, const void* v, size_t vs, float* const* out) {
  using Fn = void (*)(const float*, int64_t, int, int64_t, const void*, size_t, float* const*);
  static constexpr Fn kFns[] = {values_rows_avx512<Half, 1>,  values_rows_avx512<Half, 2>,  values_rows_avx512<Half, 3>,
                                values_rows_avx512<Half, 4>,  values_rows_avx512<Half, 5>,  values_rows_avx512<Half, 6>,
                                values_rows_avx512<Half, 7>,  values_rows_avx512<Half, 8>,  values_rows_avx512<Half, 9>,
                                values_rows_avx512<Half, 10>, values_rows_avx512<Half, 11>, values_rows_avx512<Half, 12>,
                                values_rows_avx512<Half, 13>, values_rows_avx512<Half, 14>, values_rows_avx512<Half, 15>,
                                values_rows_avx512<Half, 16>};
  kFns[hd / 16 - 1](P, ns, R, n, v, vs, out);
}

}  // namespace

float exp_shifted(float* x, int64_t n, float max, Isa isa) {
  if (isa >= Isa::Avx2) return exp_shifted_avx2(x, n, max);
  return exp_shifted_scalar(x, n, max);
}

void attn_scores(const float* q, const void* k, size_t k_stride, bool half, int64_t hd, int64_t n, float scale, float* scores,
                 Isa isa) {
  if (isa >= Isa::Avx2) return attn_scores_avx2(q, k, k_stride, half, hd, n, scale, scores);
  attn_scores_scalar(q, k, k_stride, half, hd, n, scale, scores);
}

void attn_values(const float* p, const void* vt, size_t v_stride, bool half, int64_t hd, int64_t n, float* out, Isa isa) {
  if (isa >= Isa::Avx2) return attn_values_avx2(p, vt, v_stride, half, hd, n, out);
  attn_values_scalar(p, vt, v_stride, half, hd, n, out);
}

void attn_values_q8_0(const float* p, const void* v, size_t v_stride, int64_t hd, int64_t n, float* out, Isa isa) {
  if (isa >= Isa::Avx2) return attn_values_q8_0_avx2(p, v, v_stride, hd, n, out);
  attn_values_q8_0_scalar(p, v, v_stride, hd, n, out);
}

void round_to_half(float* x, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return round_to_half_avx2(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(x[i]));
}

void swiglu(float* gate, const float* up, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return swiglu_avx2(gate, up, n);
  swiglu_scalar(gate, up, n);
}

void rope_cache(const RopeParams& p, int pos, float* cs) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  float corr[2] = {0, 0};
  float mscale = p.attn_factor;
  if (p.ext_factor != 0.f) {
    const float start = std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base));
    const float end = std::ceil(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base));
    corr[0] = std::max(0.f, start);
    corr[1] = std::min(static_cast<float>(p.n_rot - 1), end);
    mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  }
  float theta = static_cast<float>(pos);
  for (int i0 = 0; i0 < p.n_rot; i0 += 2) {
    const float extrap = theta / (p.freq_factors ? p.freq_factors[i0 / 2] : 1.0f);
    const float interp = p.freq_scale * extrap;
    float t = interp;
    if (p.ext_factor != 0.f) {
      const float y = (static_cast<float>(i0 / 2) - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
      const float ramp = (1 - std::min(1.f, std::max(0.f, y))) * p.ext_factor;
      t = interp * (1 - ramp) + extrap * ramp;
    }
    cs[i0] = std::cos(t) * mscale;
    cs[i0 + 1] = std::sin(t) * mscale;
    theta *= theta_scale;
  }
}

void rope_apply(float* v, const float* cs, int n_rot, bool neox) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps, Isa isa) {
  double ss = 0;
  if (isa >= Isa::Avx2) {
    ss = sum_squares_avx2(x, n, 0.f, nullptr);
  } else {
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  (isa >= Isa::Avx2 ? scale_affine_avx2 : scale_affine_scalar)(x, scale, w, nullptr, out, n);
}

void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps, Isa isa) {
  double sum = 0, ss = 0;
  const double dn = static_cast<double>(n);
  if (isa >= Isa::Avx2) {
    sum = sum_avx2(x, n);
    ss = sum_squares_avx2(x, n, static_cast<float>(sum / dn), out);
  } else {
    for (int64_t i = 0; i < n; ++i) sum += x[i];
    const float mean = static_cast<float>(sum / dn);
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i] - mean;
      out[i] = v;
      ss += static_cast<double>(v * v);
    }
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / dn) + eps);
  (isa >= Isa::Avx2 ? scale_affine_avx2 : scale_affine_scalar)(out, scale, w, b, out, n);
}

void softmax(float* x, int64_t n, float scale, float softcap, const float* mask, Isa isa) {
  const float max = isa >= Isa::Avx2 ? softmax_prepare_avx2(x, n, scale, softcap, mask)
                                     : softmax_prepare_scalar(x, n, scale, softcap, mask);
  if (max == -INFINITY) {
    std::fill(x, x + n, 0.f);
    return;
  }
  const float inv = 1.0f / exp_shifted(x, n, max, isa);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu(float* x, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return silu_avx2(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = silu1(x[i]);
}

void gelu(float* x, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return gelu_avx2(x, nullptr, n);
  for (int64_t i = 0; i < n; ++i) x[i] = gelu1(x[i]);
}

void gelu_half(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] <= -10.f) x[i] = 0.f;
    else if (x[i] < 10.f) x[i] = quant::fp16_to_fp32(quant::fp32_to_fp16(gelu1(quant::fp16_to_fp32(quant::fp32_to_fp16(x[i])))));
  }
}

void geglu(float* gate, const float* up, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return gelu_avx2(gate, up, n);
  for (int64_t i = 0; i < n; ++i) gate[i] = gelu1(gate[i]) * up[i];
}

void add(const float* a, const float* b, float* out, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return binary_avx2<false>(a, b, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void mul(const float* a, const float* b, float* out, int64_t n, Isa isa) {
  if (isa >= Isa::Avx2) return binary_avx2<true>(a, b, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

size_t attend_scratch(int64_t max_n, int64_t hd) { return static_cast<size_t>(kAttendRows) * ((max_n + 15) / 16 * 16 + hd); }

void attend_rows(const KvHead& kv, const float* const* q, const int* n, int R, float scale, float softcap, float* const* out,
                 float* scratch, Isa isa) {
  const int64_t hd = kv.hd;
  const int nmax = *std::max_element(n, n + R);
  const int64_t ns = (nmax + 15) / 16 * 16;
  float* S = scratch;                // R rows of scores, then probabilities, ns apart
  float* qh = scratch + R * ns;      // the R query rows, rounded to half for a half cache
  for (int r = 0; r < R; ++r) {
    std::copy(q[r], q[r] + hd, qh + r * hd);
    if (kv.half && kv.round) round_to_half(qh + r * hd, hd, isa);
  }
  const bool wide = isa >= Isa::Avx512 && hd % 16 == 0 && hd <= 256;
  if (wide) {
    if (kv.half) scores_rows<true>(R, qh, hd, kv.kt, kv.k_stride, nmax, scale, S, ns);
    else scores_rows<false>(R, qh, hd, kv.kt, kv.k_stride, nmax, scale, S, ns);
  } else {
    for (int r = 0; r < R; ++r) attn_scores(qh + r * hd, kv.kt, kv.k_stride, kv.half, hd, n[r], scale, S + r * ns, isa);
  }
  for (int r = 0; r < R; ++r) {
    float* p = S + r * ns;
    softmax(p, n[r], 1.0f, softcap, nullptr, isa);
    if (kv.half && kv.round) round_to_half(p, n[r], isa);
    std::fill(p + n[r], p + nmax, 0.f);
  }
  if (wide) {
    if (kv.half) values_rows<true>(hd, S, ns, R, nmax, kv.v, kv.v_stride, out);
    else values_rows<false>(hd, S, ns, R, nmax, kv.v, kv.v_stride, out);
  } else {
    for (int r = 0; r < R; ++r) attn_values(S + r * ns, kv.v, kv.v_stride, kv.half, hd, n[r], out[r], isa);
  }
}

void attend(const KvHead& kv, const float* q, int64_t q_stride, int nq, int p0, float scale, float softcap, float* out,
            int64_t out_stride, float* scratch, Isa isa) {
  for (int j0 = 0; j0 < nq; j0 += kAttendRows) {
    const int R = std::min(kAttendRows, nq - j0);
    const float* qs[kAttendRows];
    float* os[kAttendRows];
    int n[kAttendRows];
    for (int r = 0; r < R; ++r) {
      qs[r] = q + (j0 + r) * q_stride;
      os[r] = out + (j0 + r) * out_stride;
      n[r] = p0 + j0 + r + 1;
    }
    attend_rows(kv, qs, n, R, scale, softcap, os, scratch, isa);
  }
}

}  // namespace hearth::kernels
