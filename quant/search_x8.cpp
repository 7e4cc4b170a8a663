// Eight scale searches at once, one sub-block per AVX2 lane. Each lane performs
// exactly the scalar search of search.cpp (same operations, same order, its own
// candidate loop and choices), so results are bit-identical; lanes only replace
// "if" with a blend. Inputs are transposed: xt[i * 8 + j] is element i of block j.
#include <immintrin.h>

#include <cstring>

#include "quant/search.h"

namespace hearth::quant::detail {
namespace {

#define HEARTH_AVX2 __attribute__((target("avx2")))

HEARTH_AVX2 inline __m256i nearest_int8(__m256 v) {
  const __m256 t = _mm256_add_ps(v, _mm256_set1_ps(12582912.f));
  const __m256i b = _mm256_castps_si256(t);
  return _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}
HEARTH_AVX2 inline __m256 ld(const float* p) { return _mm256_loadu_ps(p); }
HEARTH_AVX2 inline __m256 sel(__m256 a, __m256 b, __m256 mask) { return _mm256_blendv_ps(a, b, mask); }
// The error term: |d| or d^2.
HEARTH_AVX2 inline __m256 err_term(__m256 d, bool use_mad, __m256 abs_mask) {
  return use_mad ? _mm256_and_ps(d, abs_mask) : _mm256_mul_ps(d, d);
}
HEARTH_AVX2 inline __m256i seli(__m256i a, __m256i b, __m256 mask) {
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), mask));
}

}  // namespace

HEARTH_AVX2 void make_qkx_quants_x8(int n, int nmax, const float* xt, const float* wt, uint8_t* Lt, float* scale_out,
                                    float* neg_min_out, float rmin, float rdelta, int nstep, bool use_mad, bool qkx3) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 nmaxf = _mm256_set1_ps(static_cast<float>(nmax));
  const __m256i nmaxi = _mm256_set1_epi32(nmax), zeroi = _mm256_setzero_si256();

  __m256 min = ld(xt), max = ld(xt);
  __m256 sum_w = ld(wt);
  __m256 sum_x = _mm256_mul_ps(sum_w, ld(xt));
  for (int i = 1; i < n; ++i) {
    const __m256 x = ld(xt + 8 * i), w = ld(wt + 8 * i);
    min = _mm256_min_ps(x, min);
    max = _mm256_max_ps(x, max);
    sum_w = _mm256_add_ps(sum_w, w);
    sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(w, x));
  }
  min = sel(min, zero, _mm256_cmp_ps(min, zero, _CMP_GT_OQ));
  const __m256 min0 = min;
  const __m256 degenerate = qkx3 ? _mm256_cmp_ps(max, min, _CMP_LE_OQ) : _mm256_cmp_ps(max, min, _CMP_EQ_OQ);

  __m256i L[32], Laux[32];
  __m256 iscale = _mm256_div_ps(nmaxf, _mm256_sub_ps(max, min));
  __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.f), iscale);
  __m256 best = zero;
  for (int i = 0; i < n; ++i) {
    const __m256 x = ld(xt + 8 * i);
    L[i] = _mm256_max_epi32(zeroi, _mm256_min_epi32(nmaxi, nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(x, min)))));
    const __m256 d = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(L[i])), min), x);
    best = _mm256_add_ps(best, _mm256_mul_ps(ld(wt + 8 * i), err_term(d, use_mad, abs_mask)));
  }
  for (int is = 0; is <= nstep; ++is) {
    const float step = rmin + rdelta * is + nmax;
    iscale = _mm256_div_ps(_mm256_set1_ps(step), _mm256_sub_ps(max, min));
    __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 x = ld(xt + 8 * i);
      const __m256 v = _mm256_mul_ps(iscale, _mm256_sub_ps(x, min));
      __m256i l;
      if (qkx3) {
        l = _mm256_and_si256(nearest_int8(_mm256_min_ps(v, nmaxf)), _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
      } else {
        l = _mm256_max_epi32(zeroi, _mm256_min_epi32(nmaxi, nearest_int8(v)));
      }
      Laux[i] = l;
      const __m256 lf = _mm256_cvtepi32_ps(l);
      const __m256 wl = _mm256_mul_ps(ld(wt + 8 * i), lf);
      sum_l = _mm256_add_ps(sum_l, wl);
      sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
      sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, x));
    }
    const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
    __m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
    __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
    const __m256 pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
    this_min = sel(this_min, zero, pos);
    this_scale = sel(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
    __m256 err = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 d = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, _mm256_cvtepi32_ps(Laux[i])), this_min),
                                     ld(xt + 8 * i));
      err = _mm256_add_ps(err, _mm256_mul_ps(ld(wt + 8 * i), err_term(d, use_mad, abs_mask)));
    }
    const __m256 take = _mm256_and_ps(_mm256_cmp_ps(D, zero, _CMP_GT_OQ), _mm256_cmp_ps(err, best, _CMP_LT_OQ));
    if (_mm256_movemask_ps(take) == 0) continue;
    for (int i = 0; i < n; ++i) L[i] = seli(L[i], Laux[i], take);
    best = sel(best, err, take);
    scale = sel(scale, this_scale, take);
    min = sel(min, this_min, take);
  }
  // Degenerate lanes (all values equal after the min clamp): levels 0, scale 0.
  scale = sel(scale, zero, degenerate);
  min = sel(min, min0, degenerate);
  _mm256_storeu_ps(scale_out, scale);
  _mm256_storeu_ps(neg_min_out, _mm256_xor_ps(min, _mm256_set1_ps(-0.0f)));  // -min, as the scalar negation
  alignas(32) int32_t tmp[8];
  const int dmask = _mm256_movemask_ps(degenerate);
  for (int i = 0; i < n; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), L[i]);
    for (int j = 0; j < 8; ++j) Lt[i * 8 + j] = (dmask >> j) & 1 ? 0 : static_cast<uint8_t>(tmp[j]);
  }
}

HEARTH_AVX2 void make_qx_quants_x8(int n, int nmax, const float* xt, const float* wt, int8_t* Lt, float* scale_out) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1), off = _mm256_set1_epi32(nmax);
  __m256 amax = zero, max = zero;
  for (int i = 0; i < n; ++i) {
    const __m256 x = ld(xt + 8 * i), ax = _mm256_and_ps(x, abs_mask);
    const __m256 bigger = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
    amax = sel(amax, ax, bigger);
    max = sel(max, x, bigger);
  }
  const __m256 all_zero = _mm256_cmp_ps(amax, _mm256_set1_ps(kGroupMaxEps), _CMP_LT_OQ);
  __m256i L[32], Lc[32];
  __m256 iscale = _mm256_div_ps(_mm256_set1_ps(static_cast<float>(-nmax)), max);
  __m256 sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; ++i) {
    const __m256 x = ld(xt + 8 * i), w = ld(wt + 8 * i);
    const __m256i l = _mm256_max_epi32(lo, _mm256_min_epi32(hi, nearest_int8(_mm256_mul_ps(iscale, x))));
    L[i] = _mm256_add_epi32(l, off);
    const __m256 lf = _mm256_cvtepi32_ps(l);
    sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, x), lf));
    suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
  }
  __m256 scale = sel(zero, _mm256_div_ps(sumlx, suml2), _mm256_cmp_ps(suml2, zero, _CMP_NEQ_UQ));
  __m256 best = _mm256_mul_ps(scale, sumlx);
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = _mm256_div_ps(_mm256_set1_ps(-(nmax + 0.1f * is)), max);
    sumlx = suml2 = zero;
    for (int i = 0; i < n; ++i) {
      const __m256 x = ld(xt + 8 * i), w = ld(wt + 8 * i);
      const __m256i l = _mm256_max_epi32(lo, _mm256_min_epi32(hi, nearest_int8(_mm256_mul_ps(iscale, x))));
      Lc[i] = _mm256_add_epi32(l, off);
      const __m256 lf = _mm256_cvtepi32_ps(l);
      sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, x), lf));
      suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, lf), lf));
    }
    const __m256 take = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
                                      _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
    if (_mm256_movemask_ps(take) == 0) continue;
    for (int i = 0; i < n; ++i) L[i] = seli(L[i], Lc[i], take);
    const __m256 s = _mm256_div_ps(sumlx, suml2);
    scale = sel(scale, s, take);
    best = sel(best, _mm256_mul_ps(s, sumlx), take);
  }
  scale = sel(scale, zero, all_zero);
  _mm256_storeu_ps(scale_out, scale);
  alignas(32) int32_t tmp[8];
  const int zmask = _mm256_movemask_ps(all_zero);
  for (int i = 0; i < n; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), L[i]);
    for (int j = 0; j < 8; ++j) Lt[i * 8 + j] = (zmask >> j) & 1 ? 0 : static_cast<int8_t>(tmp[j]);
  }
}

}  // namespace hearth::quant::detail
