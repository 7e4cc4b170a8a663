// TQ1_0 and TQ2_0 against Q8_K activations: the scalar specification (integer block sums
// exactly as llama.cpp's generic kernels form them, then one float product per block).
#include "kernels/dots.h"

namespace hearth::kernels::scalar {

namespace {
constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};
// Trit n of a packed TQ1_0 byte, as -1, 0 or 1.
int trit(uint8_t b, int n) { return ((static_cast<uint16_t>(static_cast<uint8_t>(b * kPow3[n])) * 3) >> 8) - 1; }
}  // namespace

// Value order: bytes 0-31 of qs give values [32t + m] (trit t), bytes 32-47 values
// [160 + 16t + m], qh values [240 + 4t + j].
int32_t block_isum_tq1_0(const quant::BlockTQ1_0& x, const quant::BlockQ8_K& y) {
  int32_t sum = 0;
  for (int t = 0; t < 5; ++t)
    for (int m = 0; m < 32; ++m) sum += trit(x.qs[m], t) * y.qs[32 * t + m];
  for (int t = 0; t < 5; ++t)
    for (int m = 0; m < 16; ++m) sum += trit(x.qs[32 + m], t) * y.qs[160 + 16 * t + m];
  for (int t = 0; t < 4; ++t)
    for (int j = 0; j < 4; ++j) sum += trit(x.qh[j], t) * y.qs[240 + 4 * t + j];
  return sum;
}

// Byte m of group g holds values [128g + 32l + m] in bits 2l, 2l + 1, as q + 1.
int32_t block_isum_tq2_0(const quant::BlockTQ2_0& x, const quant::BlockQ8_K& y) {
  int32_t sum = 0;
  for (int g = 0; g < 2; ++g)
    for (int l = 0; l < 4; ++l)
      for (int m = 0; m < 32; ++m) sum += y.qs[128 * g + 32 * l + m] * (((x.qs[32 * g + m] >> (2 * l)) & 3) - 1);
  return sum;
}

float dot_tq1_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockTQ1_0*>(w);
  const auto* y = static_cast<const quant::BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / quant::QK_K; ++i)
    s += static_cast<float>(block_isum_tq1_0(x[i], y[i])) * (quant::fp16_to_fp32(x[i].d) * y[i].d);
  return s;
}

float dot_tq2_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockTQ2_0*>(w);
  const auto* y = static_cast<const quant::BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / quant::QK_K; ++i)
    s += static_cast<float>(block_isum_tq2_0(x[i], y[i])) * (y[i].d * quant::fp16_to_fp32(x[i].d));
  return s;
}

}  // namespace hearth::kernels::scalar
