// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: blocks of 32 with one (or two) half scales.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/search.h"

namespace hearth::quant {
namespace {


// The value of largest magnitude, with its sign (the first one on ties).
inline float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

inline void min_max(const float* x, int n, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

// A row's importance weights (imatrix value times sqrt(sigma2 + x^2), sigma2 the mean
// square of the whole row) and the search results for its blocks.
template <class Level>
struct RowWork {
  std::vector<float> w, scales, neg_mins;
  std::vector<Level> L;
  RowWork(const float* x, const float* qw, int64_t n)
      : w(static_cast<size_t>(n)), scales(static_cast<size_t>(n / 32)), neg_mins(static_cast<size_t>(n / 32)),
        L(static_cast<size_t>(n)) {
    float s = 0;
    for (int64_t j = 0; j < n; ++j) s += x[j] * x[j];
    const float sigma2 = s / static_cast<float>(n);
    for (int64_t j = 0; j < n; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
  }
};

// Packs 5-bit levels L[0..31] into qs nibbles and the qh bit field.
inline void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_out) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    qh |= ((L[j] & 0x10u) >> 4) << j;
    qh |= ((L[j + 16] & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(qh_out, &qh, 4);
}

void q4_0_ref(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    const float d = signed_absmax(x, QK4_0) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
      const uint8_t b = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f))));
      y[i].qs[j] = static_cast<uint8_t>(a | (b << 4));
    }
  }
}

void q4_1_ref(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    float min, max;
    min_max(x, QK4_1, min, max);
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
      const uint8_t a = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f))));
      const uint8_t b = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f))));
      y[i].qs[j] = static_cast<uint8_t>(a | (b << 4));
    }
  }
}

void q5_0_ref(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
    const float d = signed_absmax(x, QK5_0) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint8_t L[32];
    for (int j = 0; j < 32; ++j)
      L[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
    pack_5bit(L, y[i].qs, y[i].qh);
  }
}

void q5_1_ref(const float* x, BlockQ5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
    float min, max;
    min_max(x, QK5_1, min, max);
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint8_t L[32];
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
    pack_5bit(L, y[i].qs, y[i].qh);
  }
}

}  // namespace

void quantize_q4_0(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ4_0*>(vy);
  if (!qw) return q4_0_ref(x, y, n / QK4_0);
  const int nb = static_cast<int>(n / QK4_0);
  RowWork<int8_t> rw(x, qw, n);
  detail::sym_blocks(nb, QK4_0, 8, x, rw.w.data(), rw.L.data(), rw.scales.data());
  for (int ib = 0; ib < nb; ++ib) {
    const int8_t* L = &rw.L[QK4_0 * ib];
    y[ib].d = fp32_to_fp16(rw.scales[ib]);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void quantize_q4_1(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ4_1*>(vy);
  if (!qw) return q4_1_ref(x, y, n / QK4_1);
  const int nb = static_cast<int>(n / QK4_1);
  RowWork<uint8_t> rw(x, qw, n);
  detail::asym_blocks(nb, QK4_1, 15, x, rw.w.data(), rw.L.data(), rw.scales.data(), rw.neg_mins.data(), -0.9f, 0.05f, 36,
                      false, true);
  for (int ib = 0; ib < nb; ++ib) {
    const uint8_t* L = &rw.L[QK4_1 * ib];
    y[ib].d = fp32_to_fp16(rw.scales[ib]);
    y[ib].m = fp32_to_fp16(-rw.neg_mins[ib]);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void quantize_q5_0(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ5_0*>(vy);
  if (!qw) return q5_0_ref(x, y, n / QK5_0);
  const int nb = static_cast<int>(n / QK5_0);
  RowWork<int8_t> rw(x, qw, n);
  detail::sym_blocks(nb, QK5_0, 16, x, rw.w.data(), rw.L.data(), rw.scales.data());
  for (int ib = 0; ib < nb; ++ib) {
    y[ib].d = fp32_to_fp16(rw.scales[ib]);
    pack_5bit(reinterpret_cast<const uint8_t*>(&rw.L[QK5_0 * ib]), y[ib].qs, y[ib].qh);
  }
}

void quantize_q5_1(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ5_1*>(vy);
  if (!qw) return q5_1_ref(x, y, n / QK5_1);
  const int nb = static_cast<int>(n / QK5_1);
  RowWork<uint8_t> rw(x, qw, n);
  detail::asym_blocks(nb, QK5_1, 31, x, rw.w.data(), rw.L.data(), rw.scales.data(), rw.neg_mins.data(), -0.9f, 0.05f, 36,
                      false, true);
  for (int ib = 0; ib < nb; ++ib) {
    y[ib].d = fp32_to_fp16(rw.scales[ib]);
    y[ib].m = fp32_to_fp16(-rw.neg_mins[ib]);
    pack_5bit(&rw.L[QK5_1 * ib], y[ib].qs, y[ib].qh);
  }
}

void quantize_q8_0(const float* x, void* vy, int64_t n, const float*) {
  auto* y = static_cast<BlockQ8_0*>(vy);
  for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void quantize_q8_1(const float* x, void* vy, int64_t n, const float*) {
  auto* y = static_cast<BlockQ8_1*>(vy);
  for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
    float amax = 0;
    for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < 16; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      y[i].qs[j + 16] = static_cast<int8_t>(std::round(x[j + 16] * id));
      sum += y[i].qs[j] + y[i].qs[j + 16];
    }
    y[i].s = fp32_to_fp16(sum * d);
  }
}

void dequantize_q4_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(vx);
  for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = ((x[i].qs[j] & 0x0F) - 8) * d;
      y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(vx);
  for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = (x[i].qs[j] & 0x0F) * d + m;
      y[j + 16] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(vx);
  for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      y[j] = (((x[i].qs[j] & 0x0F) | h0) - 16) * d;
      y[j + 16] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void dequantize_q5_1(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ5_1*>(vx);
  for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      y[j] = ((x[i].qs[j] & 0x0F) | h0) * d + m;
      y[j + 16] = ((x[i].qs[j] >> 4) | h1) * d + m;
    }
  }
}

void dequantize_q8_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(vx);
  for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = x[i].qs[j] * d;
  }
}

void dequantize_q8_1(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_1*>(vx);
  for (int64_t i = 0; i < n / QK8_1; ++i, y += QK8_1) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_1; ++j) y[j] = x[i].qs[j] * d;
  }
}

}  // namespace hearth::quant
