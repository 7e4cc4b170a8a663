// K-quants: super-blocks of 256 with quantized sub-block scales (Q2_K ... Q6_K), and
// Q8_K, the activation format their dot products use.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/search.h"

namespace hearth::quant {
namespace {

using detail::kGroupMaxEps;
using detail::make_q3_quants;
using detail::make_qp_quants;
using detail::make_qx_quants;
using detail::nearest_int;

// Packs 2-bit levels of 256 elements: byte l of each 32-byte group holds elements
// l, l+32, l+64, l+96 of the group's 128.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// Q4_K/Q5_K 6-bit scale and min of sub-block j, packed in 12 bytes.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
inline void set_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
    q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

// Q3_K: 16 signed 6-bit scales (stored +32): low nibbles in bytes 0..7, high 2 bits in 8..11.
inline void set_q3_scale(int j, int l, uint8_t* s) {
  if (j < 8) s[j] = static_cast<uint8_t>(l & 0xF);
  else s[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
  l >>= 4;
  s[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
}
inline int get_q3_scale(int j, const uint8_t* s) {
  int8_t sc = static_cast<int8_t>(j < 8 ? s[j] & 0xF : s[j - 8] >> 4);
  return static_cast<int8_t>((sc | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
}

// Re-derives the Q4_K/Q5_K levels from the stored (rounded) scales and mins.
void requantize_k4(const float* x, const uint8_t* scales, half dh, half dminh, int nmax, uint8_t* L) {
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, scales, sc, m);
    const float d = fp16_to_fp32(dh) * sc;
    if (!d) continue;
    const float dm = fp16_to_fp32(dminh) * m;
    for (int ii = 0; ii < 32; ++ii) {
      int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

// Finishes Q3_K from levels L (signed, +4 already removed below): hmask and qs.
void q3_finish(const float* x, BlockQ3_K& y, int8_t* L) {
  for (int j = 0; j < QK_K / 16; ++j) {
    const float d = fp16_to_fp32(y.d) * get_q3_scale(j, y.scales);
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = std::max(-4, std::min(3, nearest_int(x[16 * j + ii] / d)));
      L[16 * j + ii] = static_cast<int8_t>(l + 4);
    }
  }
  std::memset(y.hmask, 0, sizeof y.hmask);
  // The high bit of element j goes to hmask[j % 32], bit j / 32.
  int m = 0;
  uint8_t hm = 1;
  for (int j = 0; j < QK_K; ++j) {
    if (L[j] > 3) {
      y.hmask[m] |= hm;
      L[j] = static_cast<int8_t>(L[j] - 4);
    }
    if (++m == QK_K / 8) {
      m = 0;
      hm = static_cast<uint8_t>(hm << 1);
    }
  }
  pack_2bit(reinterpret_cast<const uint8_t*>(L), y.qs);
}

void pack_q5_k(const uint8_t* L, BlockQ5_K& y) {
  uint8_t* ql = y.qs;
  std::memset(y.qh, 0, sizeof y.qh);
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < QK_K; n += 64) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        y.qh[j] |= m1;
      }
      int l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        y.qh[j] |= m2;
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
    ql += 32;
  }
}

void pack_q4_k(const uint8_t* L, uint8_t* q) {
  for (int j = 0; j < QK_K; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

// Q4_K and Q5_K share everything but nmax and the final packing: sub-block scales and
// mins from a weighted search, then 6-bit scales for both.
template <int NMAX>
void k4_scales(const float* x, const float* qw_block, uint8_t* L, uint8_t* scales, half& dh, half& dminh) {
  float w[QK_K], mins[QK_K / 32], sc[QK_K / 32];
  if (!qw_block) {
    for (int j = 0; j < QK_K / 32; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) w[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
    }
    if (NMAX == 15) detail::asym_blocks(QK_K / 32, 32, 15, x, w, L, sc, mins, -1.f, 0.1f, 20, false, false);
    else detail::asym_blocks(QK_K / 32, 32, 31, x, w, L, sc, mins, -0.5f, 0.1f, 15, false, false);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
      max_scale = std::max(max_scale, sc[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * sc[j]));
      uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
      set_scale_min_k4(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), scales);
    }
    dh = fp32_to_fp16(max_scale / 63.f);
    dminh = fp32_to_fp16(max_min / 63.f);
    return;
  }
  float sum_x2 = 0;
  for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / QK_K;
  float sw[QK_K / 32];
  for (int j = 0; j < QK_K / 32; ++j) {
    const float* qw = qw_block + 32 * j;
    for (int l = 0; l < 32; ++l) w[32 * j + l] = qw[l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += w[32 * j + l];
    sw[j] = sumw;
  }
  detail::asym_blocks(QK_K / 32, 32, NMAX, x, w, L, sc, mins, -0.9f, 0.05f, 36, false, true);
  uint8_t Ls[QK_K / 32], Lm[QK_K / 32];
  const float d_block = make_qp_quants(QK_K / 32, 63, sc, Ls, sw);
  const float m_block = make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
  for (int j = 0; j < QK_K / 32; ++j)
    set_scale_min_k4(j, std::min<uint8_t>(63, Ls[j]), std::min<uint8_t>(63, Lm[j]), scales);
  dh = fp32_to_fp16(d_block);
  dminh = fp32_to_fp16(m_block);
}

}  // namespace

void quantize_q2_K(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ2_K*>(vy);
  uint8_t L[QK_K];
  float w[QK_K], mins[QK_K / 16], scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    if (!qw) {
      const float q4scale = 15.f;
      float max_scale = 0, max_min = 0;
      for (int l = 0; l < QK_K; ++l) w[l] = std::fabs(x[l]);
      detail::asym_blocks(QK_K / 16, 16, 3, x, w, L, scales, mins, -0.5f, 0.1f, 15, true, false);
      for (int j = 0; j < QK_K / 16; ++j) {
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
      }
      if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
        y[i].d = fp32_to_fp16(max_scale / q4scale);
      } else {
        std::memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = fp32_to_fp16(0.f);
      }
      if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
        y[i].dmin = fp32_to_fp16(max_min / q4scale);
      } else {
        y[i].dmin = fp32_to_fp16(0.f);
      }
    } else {
      const float* qwb = qw + QK_K * i;
      float sw[QK_K / 16] = {};
      float sumx2 = 0;
      for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
      const float sigma2 = sumx2 / QK_K;
      for (int j = 0; j < QK_K / 16; ++j) {
        for (int l = 0; l < 16; ++l) w[16 * j + l] = qwb[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        for (int l = 0; l < 16; ++l) sw[j] += w[16 * j + l];
      }
      detail::asym_blocks(QK_K / 16, 16, 3, x, w, L, scales, mins, -0.9f, 0.05f, 36, false, true);
      uint8_t Ls[QK_K / 16], Lm[QK_K / 16];
      const float dm = make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
      const float mm = make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
      y[i].d = fp32_to_fp16(dm);
      y[i].dmin = fp32_to_fp16(mm);
      for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    }
    // Levels again from the rounded scales and mins.
    const float dall = fp16_to_fp32(y[i].d), mall = fp16_to_fp32(y[i].dmin);
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = dall * (y[i].scales[j] & 0xF);
      if (!d) continue;
      const float dm = mall * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, y[i].qs);
  }
}

void quantize_q3_K(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ3_K*>(vy);
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    std::memset(y[i].scales, 0, sizeof y[i].scales);
    if (!qw) {
      float max_scale = 0, amax = 0;
      for (int j = 0; j < QK_K / 16; ++j) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
        const float a = std::fabs(scales[j]);
        if (a > amax) {
          amax = a;
          max_scale = scales[j];
        }
      }
      if (max_scale) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < QK_K / 16; ++j) {
          int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
          l = static_cast<int8_t>(std::max<int>(-32, std::min<int>(31, l)) + 32);
          set_q3_scale(j, l, y[i].scales);
        }
        y[i].d = fp32_to_fp16(1 / iscale);
      } else {
        y[i].d = fp32_to_fp16(0.f);
      }
    } else {
      const float* qwb = qw + QK_K * i;
      float sumx2 = 0;
      for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
      const float sigma2 = 2 * sumx2 / QK_K;
      float w[QK_K], sw[QK_K / 16];
      for (int j = 0; j < QK_K / 16; ++j) {
        for (int l = 0; l < 16; ++l) w[16 * j + l] = qwb[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 16; ++l) sumw += w[16 * j + l];
        sw[j] = sumw;
      }
      detail::sym_blocks(QK_K / 16, 16, 4, x, w, L, scales);
      int8_t Ls[QK_K / 16];
      const float d_block = make_qx_quants(QK_K / 16, 32, scales, Ls, 1, sw);
      for (int j = 0; j < QK_K / 16; ++j) set_q3_scale(j, Ls[j], y[i].scales);
      y[i].d = fp32_to_fp16(d_block);
    }
    q3_finish(x, y[i], L);
  }
}

void quantize_q4_K(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ4_K*>(vy);
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    std::memset(y[i].scales, 0, sizeof y[i].scales);
    k4_scales<15>(x, qw ? qw + QK_K * i : nullptr, L, y[i].scales, y[i].d, y[i].dmin);
    requantize_k4(x, y[i].scales, y[i].d, y[i].dmin, 15, L);
    pack_q4_k(L, y[i].qs);
  }
}

void quantize_q5_K(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ5_K*>(vy);
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    std::memset(y[i].scales, 0, sizeof y[i].scales);
    k4_scales<31>(x, qw ? qw + QK_K * i : nullptr, L, y[i].scales, y[i].d, y[i].dmin);
    requantize_k4(x, y[i].scales, y[i].d, y[i].dmin, 31, L);
    pack_q5_k(L, y[i]);
  }
}

void quantize_q6_K(const float* x, void* vy, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ6_K*>(vy);
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float max_scale = 0, max_abs_scale = 0;
    float w[QK_K];
    for (int l = 0; l < QK_K; ++l) w[l] = qw ? qw[QK_K * i + l] : x[l] * x[l];
    detail::sym_blocks(QK_K / 16, 16, 32, x, w, L, scales);
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const float scale = scales[ib];
      const float a = std::fabs(scale);
      if (a > max_abs_scale) {
        max_abs_scale = a;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof y[i]);
      y[i].d = fp32_to_fp16(0.f);
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d)));
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                     ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

void quantize_q8_K(const float* x, void* vy, int64_t n, const float*) {
  auto* y = static_cast<BlockQ8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (!amax) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void dequantize_q2_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n128 = 0; n128 < QK_K; n128 += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half_ = 0; half_ < 2; ++half_) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * half_] >> shift) & 3) - ml;
        }
      }
      q += 32;
    }
  }
}

void dequantize_q3_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int n128 = 0; n128 < QK_K; n128 += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half_ = 0; half_ < 2; ++half_) {
          const float dl = d_all * get_q3_scale(is++, x[i].scales);
          const int o = 16 * half_;
          for (int l = 0; l < 16; ++l)
            *y++ = dl * (static_cast<int8_t>((q[l + o] >> shift) & 3) - ((hm[l + o] & m) ? 0 : 4));
        }
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

void dequantize_q4_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      get_scale_min_k4(is, x[i].scales, sc, m);
      const float d1 = d * sc, m1 = min * m;
      get_scale_min_k4(is + 1, x[i].scales, sc, m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32) {
      uint8_t sc, m;
      get_scale_min_k4(is, x[i].scales, sc, m);
      const float d1 = d * sc, m1 = min * m;
      get_scale_min_k4(is + 1, x[i].scales, sc, m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void dequantize_q6_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n128 = 0; n128 < QK_K; n128 += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int8_t q1 = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        const int8_t q2 = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        const int8_t q3 = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        const int8_t q4 = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void dequantize_q8_K(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i)
    for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * x[i].qs[j];
}

}  // namespace hearth::quant
