// Scalar dot products for the remaining block types: exact integer sums per block or
// sub-block, then the scales, in the order of llama.cpp's generic kernels.
#include <cstring>

#include "kernels/dots.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace hearth::kernels::scalar {

using namespace hearth::quant;

namespace {
// Fifth bit of element j (0..31) of a Q5_0/Q5_1 block.
inline int q5_high(const uint8_t* qh, int j) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  return static_cast<int>((h >> j) & 1u) << 4;
}
inline int q5_level(const uint8_t* qs, const uint8_t* qh, int j) {
  const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return lo | q5_high(qh, j);
}
}  // namespace

int32_t block_isum_q4_1(const BlockQ4_1& x, const BlockQ8_1& y) {
  int32_t s = 0;
  for (int j = 0; j < 16; ++j) s += (x.qs[j] & 0x0F) * y.qs[j] + (x.qs[j] >> 4) * y.qs[j + 16];
  return s;
}

int32_t block_isum_q5_0(const BlockQ5_0& x, const BlockQ8_0& y) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += (q5_level(x.qs, x.qh, j) - 16) * y.qs[j];
  return s;
}

int32_t block_isum_q5_1(const BlockQ5_1& x, const BlockQ8_1& y) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += q5_level(x.qs, x.qh, j) * y.qs[j];
  return s;
}

// value = d*q + m: the min contributes m * d_y * sum(q_y), which Q8_1 carries as s.
float dot_q4_1(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK4_1; ++i)
    s += static_cast<float>(block_isum_q4_1(x[i], y[i])) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
         fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
  return s;
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK5_0; ++i)
    s += static_cast<float>(block_isum_q5_0(x[i], y[i])) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
  return s;
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK5_1; ++i)
    s += static_cast<float>(block_isum_q5_1(x[i], y[i])) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
         fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
  return s;
}

// Q2_K: element e has level (qs[32*(e/128) + e%32] >> 2*((e%128)/32)) & 3, scale and
// min nibbles scales[e/16].
BlockSums block_isum_q2_K(const BlockQ2_K& x, const BlockQ8_K& y) {
  BlockSums r{0, 0};
  for (int g = 0; g < 16; ++g) {
    int32_t s = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e)
      s += ((x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) * y.qs[e];
    r.scaled += (x.scales[g] & 0xF) * s;
    r.mins += (x.scales[g] >> 4) * y.bsums[g];
  }
  return r;
}

float dot_q2_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const BlockSums b = block_isum_q2_K(x[i], y[i]);
    s += y[i].d * fp16_to_fp32(x[i].d) * static_cast<float>(b.scaled) -
         y[i].d * fp16_to_fp32(x[i].dmin) * static_cast<float>(b.mins);
  }
  return s;
}

// Q3_K: 2 low bits as Q2_K, minus 4 unless the hmask bit (hmask[e%32], bit e/32) is
// set; signed 6-bit scales per 16.
int q3_k_scale(const uint8_t* s, int j) {
  const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
  return (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

int32_t block_isum_q3_K(const BlockQ3_K& x, const BlockQ8_K& y) {
  int32_t total = 0;
  for (int g = 0; g < 16; ++g) {
    int32_t s = 0;
    for (int e = 16 * g; e < 16 * g + 16; ++e) {
      const int lo = (x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      const int q = lo - ((x.hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
      s += q * y.qs[e];
    }
    total += q3_k_scale(x.scales, g) * s;
  }
  return total;
}

float dot_q3_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) s += y[i].d * fp16_to_fp32(x[i].d) * static_cast<float>(block_isum_q3_K(x[i], y[i]));
  return s;
}

// Q5_K: Q4_K's layout plus the fifth bit qh[e%32], bit 2*(e/64) + ((e%64) >= 32).
BlockSums block_isum_q5_K(const BlockQ5_K& x, const BlockQ8_K& y) {
  uint8_t sc[8], m[8];
  q4_k_scales(x.scales, sc, m);
  BlockSums r{0, 0};
  for (int j = 0; j < 8; ++j) {
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) {
      const int e = 32 * j + i;
      const uint8_t q = x.qs[32 * (j / 2) + i];
      const int lo = (j % 2 == 0) ? (q & 0xF) : (q >> 4);
      const int hi = (x.qh[i] >> j) & 1;
      s += (lo | (hi << 4)) * y.qs[e];
    }
    r.scaled += sc[j] * s;
    r.mins += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  }
  return r;
}

float dot_q5_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const BlockSums b = block_isum_q5_K(x[i], y[i]);
    s += y[i].d * fp16_to_fp32(x[i].d) * static_cast<float>(b.scaled) -
         y[i].d * fp16_to_fp32(x[i].dmin) * static_cast<float>(b.mins);
  }
  return s;
}

float dot_bf16(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const uint16_t*>(a);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_fp32(x[i])) * bf16_to_fp32(y[i]);
  return static_cast<float>(s);
}

}  // namespace hearth::kernels::scalar
