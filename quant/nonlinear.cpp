// IQ4_NL: a non-linear 4-bit grid with one scale per 32 values, chosen by a weighted
// search over 15 candidate scales (llama.cpp's quantize_iq4_nl, always with the search).
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

// One block of 32: returns the scale, fills L.
float iq4nl_block(const float* xb, const float* qw, float sigma2, uint8_t* L) {
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

}  // namespace hearth::quant
