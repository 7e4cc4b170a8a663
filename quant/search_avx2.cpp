// AVX2 versions of the scale searches. Same results as search.cpp, bit for bit: the
// candidate scales of a search are independent, so eight of them run side by side,
// one per lane, each lane doing exactly the scalar float operations in the scalar
// order; the choice among candidates stays sequential and scalar. No FMA contraction
// (the library is built with -ffp-contract=off and only mul/add intrinsics are used).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/search.h"

namespace hearth::quant::detail {
namespace {

#define HEARTH_AVX2 __attribute__((target("avx2")))

// nearest_int on eight lanes (the 1.5 * 2^23 trick).
HEARTH_AVX2 inline __m256i nearest_int8(__m256 v) {
  const __m256 t = _mm256_add_ps(v, _mm256_set1_ps(12582912.f));
  const __m256i b = _mm256_castps_si256(t);
  return _mm256_sub_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

struct Candidates {
  float scale[64], min[64], err[64];
  bool valid[64];
};

// Evaluates candidate steps [first, nstep] of the asymmetric search (make_qkx2/3_quants)
// for a given min.
// clamp_first: qkx3's guard (clamp v to [0, nmax] before rounding) instead of qkx2's
// round-then-clamp; the two agree except where v is huge, infinite or NaN.
HEARTH_AVX2 void eval_asym(int n, int nmax, const float* x, const float* w, float min, float max, float sum_w,
                           float sum_x, float rmin, float rdelta, int first, int nstep, bool use_mad, bool clamp_first,
                           Candidates& c) {
  const __m256 range = _mm256_set1_ps(max - min);
  const __m256 nmaxf = _mm256_set1_ps(static_cast<float>(nmax));
  const __m256i nmaxi = _mm256_set1_epi32(nmax), zero = _mm256_setzero_si256();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  alignas(32) int32_t lv[32][8];
  for (int is0 = first; is0 <= nstep; is0 += 8) {
    const __m256 is = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32(is0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    __m256 iscale = _mm256_add_ps(_mm256_set1_ps(rmin), _mm256_mul_ps(_mm256_set1_ps(rdelta), is));
    iscale = _mm256_div_ps(_mm256_add_ps(iscale, nmaxf), range);
    __m256 sum_l = _mm256_setzero_ps(), sum_l2 = _mm256_setzero_ps(), sum_xl = _mm256_setzero_ps();
    for (int i = 0; i < n; ++i) {
      const __m256 v = _mm256_mul_ps(iscale, _mm256_set1_ps(x[i] - min));
      __m256i l;
      if (clamp_first) {
        const __m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
        l = nearest_int8(_mm256_min_ps(v, nmaxf));
        l = _mm256_and_si256(l, _mm256_castps_si256(pos));
      } else {
        l = _mm256_max_epi32(zero, _mm256_min_epi32(nmaxi, nearest_int8(v)));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(lv[i]), l);
      const __m256 lf = _mm256_cvtepi32_ps(l);
      const __m256 wl = _mm256_mul_ps(_mm256_set1_ps(w[i]), lf);
      sum_l = _mm256_add_ps(sum_l, wl);
      sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
      sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, _mm256_set1_ps(x[i])));
    }
    const __m256 sw = _mm256_set1_ps(sum_w), sx = _mm256_set1_ps(sum_x);
    const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sw, sum_l2), _mm256_mul_ps(sum_l, sum_l));
    __m256 scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sw, sum_xl), _mm256_mul_ps(sx, sum_l)), D);
    __m256 mn = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sx), _mm256_mul_ps(sum_l, sum_xl)), D);
    const __m256 pos_min = _mm256_cmp_ps(mn, _mm256_setzero_ps(), _CMP_GT_OQ);
    mn = _mm256_blendv_ps(mn, _mm256_setzero_ps(), pos_min);
    scale = _mm256_blendv_ps(scale, _mm256_div_ps(sum_xl, sum_l2), pos_min);
    __m256 err = _mm256_setzero_ps();
    for (int i = 0; i < n; ++i) {
      const __m256 lf = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(lv[i])));
      __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, lf), mn), _mm256_set1_ps(x[i]));
      diff = use_mad ? _mm256_and_ps(diff, abs_mask) : _mm256_mul_ps(diff, diff);
      err = _mm256_add_ps(err, _mm256_mul_ps(_mm256_set1_ps(w[i]), diff));
    }
    alignas(32) float dv[8];
    _mm256_store_ps(dv, D);
    _mm256_storeu_ps(c.scale + is0, scale);
    _mm256_storeu_ps(c.min + is0, mn);
    _mm256_storeu_ps(c.err + is0, err);
    for (int k = 0; k < 8; ++k) c.valid[is0 + k] = dv[k] > 0;
  }
}

// The scalar prologue and epilogue shared by both asymmetric searches.
HEARTH_AVX2 float asym_search(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float rmin,
                              float rdelta, int nstep, bool use_mad, bool qkx3) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (qkx3 ? max <= min : max == min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *neg_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best += w[i] * diff;
  }
  if (nstep < 1) {
    *neg_min = -min;
    return scale;
  }
  // The scalar search moves min to each better candidate's min, and later candidates
  // use the moved min: evaluate ahead with the current min, and start again after a
  // choice that moved it.
  Candidates c;
  int chosen = -1;
  float chosen_with_min = min;
  for (int first = 0; first <= nstep;) {
    const float eval_min = min;
    eval_asym(n, nmax, x, w, eval_min, max, sum_w, sum_x, rmin, rdelta, first, nstep, use_mad, qkx3, c);
    int restart = nstep + 1;
    for (int is = first; is <= nstep; ++is) {
      if (c.valid[is] && c.err[is] < best) {
        best = c.err[is];
        scale = c.scale[is];
        min = c.min[is];
        chosen = is;
        chosen_with_min = eval_min;
        if (std::memcmp(&min, &eval_min, sizeof min) != 0) {
          restart = is + 1;
          break;
        }
      }
    }
    first = restart;
  }
  if (chosen >= 0) {  // the chosen candidate's levels, computed as its lane did
    const float m0 = chosen_with_min;
    const float is_scale = (rmin + rdelta * chosen + nmax) / (max - m0);
    for (int i = 0; i < n; ++i) {
      const float v = is_scale * (x[i] - m0);
      int l;
      if (qkx3) l = v > 0 ? nearest_int(std::min(v, static_cast<float>(nmax))) : 0;
      else l = std::max(0, std::min(nmax, nearest_int(v)));
      L[i] = static_cast<uint8_t>(l);
    }
  }
  *neg_min = -min;
  return scale;
}

}  // namespace

float make_qkx2_quants_avx2(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                            uint8_t*, float rmin, float rdelta, int nstep, bool use_mad) {
  return asym_search(n, nmax, x, weights, L, neg_min, rmin, rdelta, nstep, use_mad, false);
}

float make_qkx3_quants_avx2(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                            uint8_t*, float rmin, float rdelta, int nstep, bool use_mad) {
  float w[32];
  if (!weights) {
    for (int i = 0; i < n; ++i) w[i] = x[i] * x[i];
    weights = w;
  }
  return asym_search(n, nmax, x, weights, L, neg_min, rmin, rdelta, nstep, use_mad, true);
}

HEARTH_AVX2 float make_qx_quants_avx2(int n, int nmax, const float* x, int8_t* L, int weight_kind, const float* qw) {
  if (weight_kind <= 0) return make_qx_quants_scalar(n, nmax, x, L, weight_kind, qw);  // no search to vectorize
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float w[32];
  for (int i = 0; i < n; ++i) {
    if (qw) w[i] = qw[i];
    else if (weight_kind == 1) w[i] = x[i] * x[i];
    else if (weight_kind == 2) w[i] = 1;
    else if (weight_kind == 3) w[i] = std::fabs(x[i]);
    else w[i] = std::sqrt(std::fabs(x[i]));
  }
  auto clamp_sym = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = clamp_sym(nearest_int(iscale * x[i]));
    L[i] = static_cast<int8_t>(l + nmax);
    sumlx += w[i] * x[i] * l;
    suml2 += w[i] * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  // Candidates is = -9..-1, 1..9 in lanes; sums per lane in element order.
  alignas(32) float slx[24], sl2[24];
  const int kIs[24] = {-9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 0, 0};
  const __m256 nmaxf = _mm256_set1_ps(static_cast<float>(nmax)), vmax = _mm256_set1_ps(max);
  const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1);
  for (int g = 0; g < 24; g += 8) {
    const __m256 is = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kIs + g)));
    // iscale = -(nmax + 0.1f*is) / max
    const __m256 num = _mm256_add_ps(nmaxf, _mm256_mul_ps(_mm256_set1_ps(0.1f), is));
    const __m256 isc = _mm256_div_ps(_mm256_sub_ps(_mm256_setzero_ps(), num), vmax);
    __m256 s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    for (int i = 0; i < n; ++i) {
      const __m256i l = _mm256_max_epi32(lo, _mm256_min_epi32(hi, nearest_int8(_mm256_mul_ps(isc, _mm256_set1_ps(x[i])))));
      const __m256 lf = _mm256_cvtepi32_ps(l);
      s1 = _mm256_add_ps(s1, _mm256_mul_ps(_mm256_set1_ps(w[i] * x[i]), lf));
      s2 = _mm256_add_ps(s2, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), lf), lf));
    }
    _mm256_store_ps(slx + g, s1);
    _mm256_store_ps(sl2 + g, s2);
  }
  int chosen = 0;
  for (int k = 0; k < 18; ++k) {
    if (sl2[k] > 0 && slx[k] * slx[k] > best * sl2[k]) {
      scale = slx[k] / sl2[k];
      best = scale * slx[k];
      chosen = kIs[k];
    }
  }
  if (chosen != 0) {
    const float isc = -(nmax + 0.1f * chosen) / max;
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_sym(nearest_int(isc * x[i])));
  }
  return scale;
}

}  // namespace hearth::quant::detail
