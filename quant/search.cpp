#include "quant/search.h"

#include "quant/cpu.h"

#include <algorithm>
#include <cmath>

namespace hearth::quant::detail {
namespace {

inline float weight_of(int kind, float x) {
  switch (kind) {
    case 1: return x * x;
    case 2: return 1;
    case 3: return std::fabs(x);
    default: return std::sqrt(std::fabs(x));
  }
}

inline int clamp_sym(int l, int nmax) { return std::max(-nmax, std::min(nmax - 1, l)); }

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int weight_kind, const float* qw) {
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
  float iscale = -nmax / max;
  if (weight_kind == 0) {
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_sym(nearest_int(iscale * x[i]), nmax));
    return 1 / iscale;
  }
  bool midpoint_only = weight_kind < 0;
  if (midpoint_only) weight_kind = -weight_kind;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = clamp_sym(nearest_int(iscale * x[i]), nmax);
    L[i] = static_cast<int8_t>(l + nmax);
    float w = qw ? qw[i] : weight_of(weight_kind, x[i]);
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  if (midpoint_only) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = clamp_sym(nearest_int(iscale * x[i]), nmax);
      float w = qw ? qw[i] : weight_of(weight_kind, x[i]);
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_sym(nearest_int(iscale * x[i]), nmax));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool refine) {
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
  float iscale = -nmax / max;
  if (!refine) {
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(clamp_sym(nearest_int(iscale * x[i]), nmax) + nmax);
    return 1 / iscale;
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = clamp_sym(nearest_int(iscale * x[i]), nmax);
    L[i] = static_cast<int8_t>(l);
    float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        int nl = clamp_sym(nearest_int(x[i] * sl2 / slx), nmax);
        if (nl != L[i]) {
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

namespace {

// The asymmetric search; qkx3 selects make_qkx3_quants's variant (x^2 weights when
// none are given, max <= min as the degenerate test, levels clamped before rounding).
float asym_search(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min, uint8_t* Laux,
                  float rmin, float rdelta, int nstep, bool use_mad, bool qkx3) {
  auto wt = [&](int i) { return weights ? weights[i] : x[i] * x[i]; };
  float min = x[0], max = x[0];
  float sum_w = wt(0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    float w = wt(i);
    sum_w += w;
    sum_x += w * x[i];
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
    best += wt(i) * diff;
  }
  if (nstep < 1) {
    *neg_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l;
      if (qkx3) {
        // Clamp before rounding: the product can be inf or NaN when max - min is tiny.
        const float v = iscale * (x[i] - min);
        l = v > 0 ? nearest_int(std::min(v, static_cast<float>(nmax))) : 0;
      } else {
        l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      }
      Laux[i] = static_cast<uint8_t>(l);
      float w = wt(i);
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        err += wt(i) * diff;
      }
      if (err < best) {
        std::memcpy(L, Laux, static_cast<size_t>(n));
        best = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

const bool kAvx2 = active_isa() >= Isa::Avx2;

}  // namespace

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  return asym_search(n, nmax, x, weights, L, neg_min, Laux, rmin, rdelta, nstep, use_mad, false);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  return asym_search(n, nmax, x, weights, L, neg_min, Laux, rmin, rdelta, nstep, use_mad, true);
}

// Copies eight blocks of len values (and their weights) to element-major order.
static void transpose8(int len, const float* x, const float* w, float* xt, float* wt) {
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < len; ++i) {
      xt[i * 8 + j] = x[j * len + i];
      wt[i * 8 + j] = w[j * len + i];
    }
}

void asym_blocks(int nsub, int len, int nmax, const float* x, const float* w, uint8_t* L, float* scales,
                 float* neg_mins, float rmin, float rdelta, int nstep, bool mad, bool qkx3) {
  int j = 0;
  if (kAvx2) {
    float xt[32 * 8], wt[32 * 8];
    uint8_t Lt[32 * 8];
    for (; j + 8 <= nsub; j += 8) {
      transpose8(len, x + j * len, w + j * len, xt, wt);
      make_qkx_quants_x8(len, nmax, xt, wt, Lt, scales + j, neg_mins + j, rmin, rdelta, nstep, mad, qkx3);
      for (int k = 0; k < 8; ++k)
        for (int i = 0; i < len; ++i) L[(j + k) * len + i] = Lt[i * 8 + k];
    }
  }
  uint8_t Laux[32];
  for (; j < nsub; ++j)
    scales[j] = asym_search(len, nmax, x + j * len, w + j * len, L + j * len, &neg_mins[j], Laux, rmin, rdelta, nstep,
                            mad, qkx3);
}

void sym_blocks(int nsub, int len, int nmax, const float* x, const float* w, int8_t* L, float* scales) {
  int j = 0;
  if (kAvx2) {
    float xt[32 * 8], wt[32 * 8];
    int8_t Lt[32 * 8];
    for (; j + 8 <= nsub; j += 8) {
      transpose8(len, x + j * len, w + j * len, xt, wt);
      make_qx_quants_x8(len, nmax, xt, wt, Lt, scales + j);
      for (int k = 0; k < 8; ++k)
        for (int i = 0; i < len; ++i) L[(j + k) * len + i] = Lt[i * 8 + k];
    }
  }
  for (; j < nsub; ++j) scales[j] = make_qx_quants(len, nmax, x + j * len, L + j * len, 1, w + j * len);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kGroupMaxEps) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.f;
  }
  float iscale = nmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    float diff = x[i] - scale * L[i];
    best_mse += quant_weights[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    float iscale_is = (0.1f * is + nmax) / max;
    float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      int l = std::min(nmax, nearest_int(iscale_is * x[i]));
      float diff = x[i] - scale_is * l;
      mse += quant_weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    float w = quant_weights[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      float w = quant_weights[i];
      float slx = sumlx - w * x[i] * L[i];
      float sl2 = suml2 - w * L[i] * L[i];
      if (slx > 0 && sl2 > 0) {
        int nl = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (nl != L[i]) {
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace hearth::quant::detail
