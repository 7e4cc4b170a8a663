// Scalar dot products: the specification the SIMD kernels are tested against.
// Quantized types follow the block definitions: an exact integer sum per block (or
// sub-block), then one float multiply-add with the block scales.
#include <cstring>

#include "kernels/dots.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace hearth::kernels::scalar {

using namespace hearth::quant;

float dot_f32(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  double s = 0;  // the reference accumulates in double; SIMD paths are compared with a tolerance
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
  return static_cast<float>(s);
}

float dot_f16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(fp16_to_fp32(x[i])) * fp16_to_fp32(y[i]);
  return static_cast<float>(s);
}

int32_t block_isum_q8_0(const BlockQ8_0& x, const BlockQ8_0& y) {
  int32_t s = 0;
  for (int j = 0; j < QK8_0; ++j) s += x.qs[j] * y.qs[j];
  return s;
}

int32_t block_isum_q4_0(const BlockQ4_0& x, const BlockQ8_0& y) {
  int32_t s = 0;
  for (int j = 0; j < 16; ++j) {
    s += ((x.qs[j] & 0x0F) - 8) * y.qs[j];
    s += ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
  }
  return s;
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i)
    s += static_cast<float>(block_isum_q8_0(x[i], y[i])) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
  return s;
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK4_0; ++i)
    s += static_cast<float>(block_isum_q4_0(x[i], y[i])) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
  return s;
}

// Q4_K: 8 sub-blocks of 32 with 6-bit scales sc and mins m:
//   value = d * sc * q - dmin * m, so a block contributes
//   y.d * (d * sum_j sc_j * sum_i q_i y_i  -  dmin * sum_j m_j * sum_i y_i).
void q4_k_scales(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = s[j] & 63;
      m[j] = s[j + 4] & 63;
    } else {
      sc[j] = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
      m[j] = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
  }
}

BlockSums block_isum_q4_K(const BlockQ4_K& x, const BlockQ8_K& y) {
  uint8_t sc[8], m[8];
  q4_k_scales(x.scales, sc, m);
  BlockSums r{0, 0};
  for (int j = 0; j < 8; ++j) {
    int32_t s = 0;
    const uint8_t* q = x.qs + 32 * (j / 2);
    for (int i = 0; i < 32; ++i) {
      const int v = (j % 2 == 0) ? (q[i] & 0xF) : (q[i] >> 4);
      s += v * y.qs[32 * j + i];
    }
    r.scaled += sc[j] * s;
    r.mins += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  }
  return r;
}

float dot_q4_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const BlockSums b = block_isum_q4_K(x[i], y[i]);
    s += y[i].d * fp16_to_fp32(x[i].d) * static_cast<float>(b.scaled) -
         y[i].d * fp16_to_fp32(x[i].dmin) * static_cast<float>(b.mins);
  }
  return s;
}

// Q6_K: 16 groups of 16 with int8 scales; q6 in [0, 63] stored, value (q6 - 32).
int32_t block_isum_q6_K(const BlockQ6_K& x, const BlockQ8_K& y) {
  int32_t total = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = x.ql + 64 * half;
    const uint8_t* qh = x.qh + 32 * half;
    const int8_t* sc = x.scales + 8 * half;
    const int8_t* q8 = y.qs + 128 * half;
    int32_t g[8] = {};  // the eight 16-element groups of this half
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      g[is + 0] += q1 * q8[l];
      g[is + 2] += q2 * q8[l + 32];
      g[is + 4] += q3 * q8[l + 64];
      g[is + 6] += q4 * q8[l + 96];
    }
    for (int k = 0; k < 8; ++k) total += sc[k] * g[k];
  }
  return total;
}

float dot_q6_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i)
    s += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(block_isum_q6_K(x[i], y[i]));
  return s;
}

}  // namespace hearth::kernels::scalar
