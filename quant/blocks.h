// Quantized block layouts, one struct per type, byte-compatible with ggml's
// (ggml-common.h). Scales stored as IEEE half are kept as raw uint16_t bits.
#pragma once

#include <cstdint>

namespace hearth::quant {

using half = uint16_t;  // IEEE 754 binary16 bits

inline constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr int QK_K = 256;           // super-block size of the K-quants
inline constexpr int K_SCALE_SIZE = 12;    // packed 6-bit scales/mins of Q4_K/Q5_K

struct BlockQ4_0 {
  half d;
  uint8_t qs[QK4_0 / 2];  // nibbles: element j in the low half of qs[j], j+16 in the high half
};
struct BlockQ4_1 {
  half d, m;
  uint8_t qs[QK4_1 / 2];
};
struct BlockQ5_0 {
  half d;
  uint8_t qh[4];  // fifth bits, element j at bit j
  uint8_t qs[QK5_0 / 2];
};
struct BlockQ5_1 {
  half d, m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {
  half d;
  int8_t qs[QK8_0];
};
struct BlockQ8_1 {
  half d, s;  // s = d * sum(qs)
  int8_t qs[QK8_1];
};

// Q2_K: 16 sub-blocks of 16, 4-bit scale and 4-bit min per sub-block. 2.625 bpw.
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];  // low nibble scale, high nibble min
  uint8_t qs[QK_K / 4];
  half d, dmin;
};
// Q3_K: 16 sub-blocks of 16, 6-bit signed scales. 3.4375 bpw.
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  half d;
};
// Q4_K: 8 sub-blocks of 32, 6-bit scale and min each. 4.5 bpw.
struct BlockQ4_K {
  half d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
// Q5_K: as Q4_K plus one high bit per element. 5.5 bpw.
struct BlockQ5_K {
  half d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
// Q6_K: 16 sub-blocks of 16, 8-bit signed scales. 6.5625 bpw.
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  half d;
};
// Q8_K: activations for the K-quant dot products; float scale and 16-element sums.
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace hearth::quant

namespace hearth::quant {

// IQ4_NL: 32 values on a fixed non-uniform 16-level grid (kIq4nlValues) times one scale.
inline constexpr int QK4_NL = 32;
struct BlockIQ4_NL {
  half d;
  uint8_t qs[QK4_NL / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18);
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// IQ4_XS: IQ4_NL's grid over 256 values: eight blocks of 32, each with a 6-bit scale (low
// four bits in scales_l, high two in scales_h) times one half-precision scale d.
struct BlockIQ4_XS {
  half d;
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);
// Block ib's 6-bit scale minus 32 (the multiplier of d).
inline int iq4_xs_scale(const BlockIQ4_XS& b, int ib) {
  return (((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((b.scales_h >> (2 * ib)) & 3) << 4)) - 32;
}

}  // namespace hearth::quant

namespace hearth::quant {

// Ternary types (BitNet b1.58, TriLMs): 256 values in {-1, 0, 1} times one scale.
// TQ1_0: five trits per byte in qs (each byte a base-3 number scaled to 0..255, 240 values),
// four more per byte in qh (16 values); 1.6875 bits per value.
struct BlockTQ1_0 {
  uint8_t qs[(QK_K - 4 * QK_K / 64) / 5];
  uint8_t qh[QK_K / 64];
  half d;
};
static_assert(sizeof(BlockTQ1_0) == 54);
// TQ2_0: two bits per value (q - 1 in {-1, 0, 1}); 2.0625 bits per value.
struct BlockTQ2_0 {
  uint8_t qs[QK_K / 4];
  half d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

}  // namespace hearth::quant
