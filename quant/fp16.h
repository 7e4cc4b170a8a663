// Exact conversions between float and IEEE half / bfloat16, as llama.cpp's reference
// paths do them: round to nearest even; NaN becomes a quiet NaN (half: sign | 0x7e00,
// bf16: the top 16 bits with the quiet bit set); no flushing of subnormals.
#pragma once

#include <bit>
#include <cstdint>

namespace hearth::quant {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));  // inf, NaN
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0) return std::bit_cast<float>(sign);
  // Subnormal half: value = man * 2^-24, exact in float.
  float v = static_cast<float>(man) * 0x1p-24f;
  return sign ? -v : v;
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;    // NaN
  if (ax >= 0x477ff000u) return sign | 0x7c00u;   // rounds to >= 65520: infinity
  if (ax >= 0x38800000u) {                        // normal half (|f| >= 2^-14)
    uint32_t r = ax - 0x38000000u;                // rebias exponent 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);               // round to nearest even on bit 13
    return sign | static_cast<uint16_t>(r >> 13);
  }
  if (ax < 0x33000000u) return sign;              // below half the smallest subnormal
  // Subnormal half: shift the 24-bit significand right, rounding to nearest even.
  const uint32_t e = ax >> 23;
  const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;                 // 14..24 for e in 102..112
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

inline float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64u);  // quiet NaN
  return static_cast<uint16_t>((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

}  // namespace hearth::quant
