// IQ4_NL and IQ4_XS: a non-linear 4-bit grid with one scale per 32 values, chosen by a
// weighted search over 15 candidate scales (llama.cpp's quantize_iq4_nl / quantize_iq4_xs,
// always with the search). IQ4_XS then quantizes the eight scales of a 256-value
// super-block to 6 bits against one half-precision scale.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/search.h"

namespace hearth::quant {
namespace {

// Index of the grid value nearest to x (ties and the half-way rule as llama.cpp 2025-02).
int best_index(const int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    int mid = (ml + mu) / 2;
    if (x < val[mid]) mu = mid;
    else ml = mid;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

float search_scale(const float* xb, const float* weight, float max, uint8_t* L);

// One block of 32: the searched scale (0 for a block of near-zeros), with L filled from
// it when `fill_levels` (IQ4_XS refills them from its rounded scales instead).
float iq4nl_block(const float* xb, const float* qw, float sigma2, uint8_t* L, bool fill_levels = true) {
  float weight[QK4_NL];
  if (qw) {
    for (int j = 0; j < QK4_NL; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
  } else {
    for (int j = 0; j < QK4_NL; ++j) weight[j] = xb[j] * xb[j];
  }
  float amax = 0, max = 0;
  for (int j = 0; j < QK4_NL; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  float d = 0;
  if (amax >= detail::kGroupMaxEps) d = search_scale(xb, weight, max, L);
  if (!fill_levels) return d;
  // Levels from the chosen (unrounded) scale; an all-zero block gets the level of 0.
  const float idl = d ? 1 / d : 0;
  for (int j = 0; j < QK4_NL; ++j) L[j] = static_cast<uint8_t>(best_index(kIq4nlValues, idl * xb[j]));
  return d;
}

// The weighted search over 15 candidate scales around -max / values[0].
float search_scale(const float* xb, const float* weight, float max, uint8_t* L) {
  constexpr int ntry = 7;
  const int8_t* values = kIq4nlValues;
  float d = -max / values[0];
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < QK4_NL; ++j) {
    const int l = best_index(values, id * xb[j]);
    L[j] = static_cast<uint8_t>(l);
    const float q = values[l];
    sumqx += weight[j] * q * xb[j];
    sumq2 += weight[j] * q * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int itry = -ntry; itry <= ntry; ++itry) {
    id = (itry + values[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < QK4_NL; ++j) {
      const float q = values[best_index(values, id * xb[j])];
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

}  // namespace

void quantize_iq4_nl(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockIQ4_NL*>(vy);
  uint8_t L[QK4_NL];
  for (int64_t ib = 0; ib < n / QK4_NL; ++ib) {
    const float* xb = x + QK4_NL * ib;
    float sigma2 = 0;
    for (int j = 0; j < QK4_NL; ++j) sigma2 += xb[j] * xb[j];
    sigma2 *= 2.f / QK4_NL;
    const float d = iq4nl_block(xb, qw ? qw + QK4_NL * ib : nullptr, sigma2, L);
    y[ib].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void dequantize_iq4_nl(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ4_NL*>(vx);
  for (int64_t i = 0; i < n / QK4_NL; ++i, y += QK4_NL) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * kIq4nlValues[x[i].qs[j] & 0xf];
      y[j + 16] = d * kIq4nlValues[x[i].qs[j] >> 4];
    }
  }
}

// IQ4_XS: per 256 values, eight block scales searched as for IQ4_NL, then d = -max / 32 for
// the one of largest magnitude and each scale rounded to l in [-32, 31] (stored as l + 32:
// four bits in scales_l, two in scales_h); the levels are chosen again against d * l.
void quantize_iq4_xs(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockIQ4_XS*>(vy);
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl, x += QK_K) {
    BlockIQ4_XS& b = y[ibl];
    float sigma2 = 0;
    for (int j = 0; j < QK_K; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / QK_K;
    float scales[QK_K / 32];
    uint8_t L[QK_K];
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      scales[ib] = iq4nl_block(x + 32 * ib, qw ? qw + QK_K * ibl + 32 * ib : nullptr, sigma2, L + 32 * ib, false);
      if (std::fabs(scales[ib]) > amax_scale) {
        amax_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    const float d = -max_scale / 32;
    b.d = fp32_to_fp16(d);
    b.scales_h = 0;
    std::memset(b.scales_l, 0, sizeof b.scales_l);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      int l = detail::nearest_int(id * scales[ib]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * static_cast<float>(l);
      const float idl = dl ? 1 / dl : 0.f;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<uint8_t>(best_index(kIq4nlValues, idl * x[32 * ib + j]));
      l += 32;
      b.scales_l[ib / 2] = static_cast<uint8_t>(b.scales_l[ib / 2] | ((l & 0xf) << (4 * (ib % 2))));
      b.scales_h = static_cast<uint16_t>(b.scales_h | ((l >> 4) << (2 * (ib % 8))));
    }
    for (int i = 0; i < QK_K / 32; ++i)
      for (int j = 0; j < 16; ++j) b.qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

void dequantize_iq4_xs(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ4_XS*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib, y += 32) {
      const float dl = d * static_cast<float>(iq4_xs_scale(x[i], ib));
      const uint8_t* qs = x[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIq4nlValues[qs[j] & 0xf];
        y[j + 16] = dl * kIq4nlValues[qs[j] >> 4];
      }
    }
  }
}

}  // namespace hearth::quant
