// TQ1_0 and TQ2_0: ternary weights (BitNet b1.58, TriLMs), the reference quantizers and
// dequantizers, byte-identical to llama.cpp's. Each block of 256 values has one scale, the
// largest magnitude; a value becomes round(x / d) in {-1, 0, 1}. The importance weights are
// not used (llama.cpp ignores them for these types too).
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace hearth::quant {
namespace {

constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};

// The scale of a block (its largest magnitude) and its inverse (0 for a zero block).
float block_scale(const float* x, float& id) {
  float amax = 0.0f;
  for (int j = 0; j < QK_K; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;  // llama.cpp's MAX: a NaN becomes the scale (and validation rejects it)
  }
  id = amax != 0.0f ? 1.0f / amax : 0.0f;
  return amax;
}

// x * id rounded to -1, 0 or 1, stored as 0, 1, 2.
int trit(float x, float id) { return static_cast<int>(std::lround(x * id)) + 1; }

// `count` trits of x (stride apart) as a base-3 number with the first trit most
// significant, multiplied by 3^(5 - count) and scaled to a byte: ceil(q * 256 / 243), so
// that the trit n comes back as (byte * 3^n * 3) >> 8 taken modulo 256 first.
uint8_t pack_trits(const float* x, int stride, int count, float id) {
  uint8_t q = 0;
  for (int n = 0; n < count; ++n) q = static_cast<uint8_t>(q * 3 + trit(x[n * stride], id));
  for (int n = count; n < 5; ++n) q = static_cast<uint8_t>(q * 3);
  return static_cast<uint8_t>((static_cast<uint16_t>(q) * 256 + (243 - 1)) / 243);
}

// Trit n of a packed byte, as -1, 0 or 1.
int unpack_trit(uint8_t b, int n) {
  const uint8_t q = static_cast<uint8_t>(b * kPow3[n]);
  return ((static_cast<uint16_t>(q) * 3) >> 8) - 1;
}

}  // namespace

// qs: the first 32 bytes hold values [m + 32n] of the first 160, the next 16 bytes values
// [m + 16n] of the following 80; qh holds the last 16 as [j + 4n].
void quantize_tq1_0(const float* x, void* vy, int64_t n, const float*) {
  auto* y = static_cast<BlockTQ1_0*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float id;
    y[i].d = fp32_to_fp16(block_scale(x, id));
    const float* v = x;
    for (int m = 0; m < 32; ++m) y[i].qs[m] = pack_trits(v + m, 32, 5, id);
    v += 5 * 32;
    for (int m = 0; m < 16; ++m) y[i].qs[32 + m] = pack_trits(v + m, 16, 5, id);
    v += 5 * 16;
    for (int j = 0; j < 4; ++j) y[i].qh[j] = pack_trits(v + j, 4, 4, id);
  }
}

void dequantize_tq1_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockTQ1_0*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int t = 0; t < 5; ++t)
      for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(unpack_trit(x[i].qs[m], t)) * d;
    for (int t = 0; t < 5; ++t)
      for (int m = 0; m < 16; ++m) *y++ = static_cast<float>(unpack_trit(x[i].qs[32 + m], t)) * d;
    for (int t = 0; t < 4; ++t)
      for (int j = 0; j < 4; ++j) *y++ = static_cast<float>(unpack_trit(x[i].qh[j], t)) * d;
  }
}

// Byte m of each 32-byte group g holds values [128g + m + 32l] in bits 2l, 2l+1.
void quantize_tq2_0(const float* x, void* vy, int64_t n, const float*) {
  auto* y = static_cast<BlockTQ2_0*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float id;
    y[i].d = fp32_to_fp16(block_scale(x, id));
    for (int g = 0; g < 2; ++g)
      for (int m = 0; m < 32; ++m) {
        uint8_t q = 0;
        for (int l = 0; l < 4; ++l) q = static_cast<uint8_t>(q + ((trit(x[128 * g + m + 32 * l], id) & 3) << (2 * l)));
        y[i].qs[32 * g + m] = q;
      }
  }
}

void dequantize_tq2_0(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockTQ2_0*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int g = 0; g < 2; ++g)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(((x[i].qs[32 * g + m] >> (2 * l)) & 3) - 1) * d;
  }
}

}  // namespace hearth::quant
