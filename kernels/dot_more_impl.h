// The dot products of q4_1, q5_0, q5_1 (blocks of 32) and q2_K, q3_K, q5_K (super-blocks
// of 256) on 256-bit vectors, written once and compiled per instruction set: the file
// that includes this opens its ISA's namespace and defines HEARTH_TARGET and the three
// byte products the kernels are built from:
//   udot(u, s)                 unsigned x signed bytes summed into eight int32 lanes
//   udot_scaled(u, s, lo, hi)  the same with each 16-byte half weighted by an int16 scale
//   sdot(a, b)                 signed x signed bytes (|a| <= 16) summed likewise
// Integer sums are exact (equal to the scalar ones), floats within rounding.
// Not a standalone header: no include guard, included once per ISA file.

namespace {

// Low nibbles of 16 bytes as elements 0..15, high nibbles as 16..31.
HEARTH_TARGET inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

// Byte j = 0x10 if bit j of the 32-bit mask is set, else 0.
HEARTH_TARGET inline __m256i bit4_from_bits32(const uint8_t* qh) {
  uint32_t x;
  std::memcpy(&x, qh, 4);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int32_t>(x)),
                                  _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_and_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

HEARTH_TARGET inline __m256i q5_levels(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(nibbles32(qs), bit4_from_bits32(qh));
}

HEARTH_TARGET inline __m256i q2_K_scaled(const BlockQ2_K& x, const BlockQ8_K& y) {
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256i acc = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i q = load(x.qs + 32 * h);
    for (int s = 0; s < 4; ++s) {
      const __m256i l = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
      const int g = 8 * h + 2 * s;
      acc = _mm256_add_epi32(acc, udot_scaled(l, load(y.qs + 128 * h + 32 * s), x.scales[g] & 0xF, x.scales[g + 1] & 0xF));
    }
  }
  return acc;
}

// q3 levels shifted to 0..7 (value + 4), weighted by the signed 6-bit scales.
HEARTH_TARGET inline __m256i q3_K_scaled(const BlockQ3_K& x, const BlockQ8_K& y, const int* sc) {
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  const __m256i hm = load(x.hmask);
  __m256i acc = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i q = load(x.qs + 32 * h);
    for (int s = 0; s < 4; ++s) {
      const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
      const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), one);
      const __m256i l = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
      const int g = 8 * h + 2 * s;
      acc = _mm256_add_epi32(acc, udot_scaled(l, load(y.qs + 128 * h + 32 * s), static_cast<int16_t>(sc[g]),
                                              static_cast<int16_t>(sc[g + 1])));
    }
  }
  return acc;
}

HEARTH_TARGET inline __m256i q5_K_scaled(const BlockQ5_K& x, const BlockQ8_K& y, const uint8_t* sc) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  const __m256i qh = load(x.qh);
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i q = load(x.qs + 32 * c);
    const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
    const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), hlo);
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi);
    acc = _mm256_add_epi32(acc, udot_scaled(lo, load(y.qs + 64 * c), sc[2 * c], sc[2 * c]));
    acc = _mm256_add_epi32(acc, udot_scaled(hi, load(y.qs + 64 * c + 32), sc[2 * c + 1], sc[2 * c + 1]));
  }
  return acc;
}

HEARTH_TARGET inline int32_t k4_mins(const BlockQ8_K& y, const uint8_t* m) {
  int32_t s = 0;
  for (int j = 0; j < 8; ++j) s += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  return s;
}

}  // namespace

HEARTH_TARGET int32_t block_isum_q4_1(const BlockQ4_1& x, const BlockQ8_1& y) { return hsum_i32(udot(nibbles32(x.qs), load(y.qs))); }
HEARTH_TARGET int32_t block_isum_q5_0(const BlockQ5_0& x, const BlockQ8_0& y) {
  return hsum_i32(sdot(_mm256_sub_epi8(q5_levels(x.qs, x.qh), _mm256_set1_epi8(16)), load(y.qs)));
}
HEARTH_TARGET int32_t block_isum_q5_1(const BlockQ5_1& x, const BlockQ8_1& y) {
  return hsum_i32(udot(q5_levels(x.qs, x.qh), load(y.qs)));
}

HEARTH_TARGET float dot_q4_1(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(nibbles32(x[i].qs), load(y[i].qs))), _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc);
    mins += h2f(x[i].m) * h2f(y[i].s);
  }
  return hsum(acc) + mins;
}

HEARTH_TARGET float dot_q5_0(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    const __m256i s = sdot(_mm256_sub_epi8(q5_levels(x[i].qs, x[i].qh), _mm256_set1_epi8(16)), load(y[i].qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc);
  }
  return hsum(acc);
}

HEARTH_TARGET float dot_q5_1(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(q5_levels(x[i].qs, x[i].qh), load(y[i].qs))),
                          _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), acc);
    mins += h2f(x[i].m) * h2f(y[i].s);
  }
  return hsum(acc) + mins;
}

HEARTH_TARGET BlockSums block_isum_q2_K(const BlockQ2_K& x, const BlockQ8_K& y) {
  int32_t mins = 0;
  for (int g = 0; g < 16; ++g) mins += (x.scales[g] >> 4) * y.bsums[g];
  return {hsum_i32(q2_K_scaled(x, y)), mins};
}

HEARTH_TARGET float dot_q2_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int32_t mi = 0;
    for (int g = 0; g < 16; ++g) mi += (x[i].scales[g] >> 4) * y[i].bsums[g];
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q2_K_scaled(x[i], y[i])), _mm256_set1_ps(y[i].d * h2f(x[i].d)), acc);
    mins += y[i].d * h2f(x[i].dmin) * static_cast<float>(mi);
  }
  return hsum(acc) - mins;
}

HEARTH_TARGET int32_t block_isum_q3_K(const BlockQ3_K& x, const BlockQ8_K& y) {
  int sc[16];
  int32_t off = 0;
  for (int g = 0; g < 16; ++g) {
    sc[g] = scalar::q3_k_scale(x.scales, g);
    off += sc[g] * y.bsums[g];
  }
  return hsum_i32(q3_K_scaled(x, y, sc)) - 4 * off;
}

HEARTH_TARGET float dot_q3_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float off = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int sc[16];
    int32_t o = 0;
    for (int g = 0; g < 16; ++g) {
      sc[g] = scalar::q3_k_scale(x[i].scales, g);
      o += sc[g] * y[i].bsums[g];
    }
    const float d = y[i].d * h2f(x[i].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q3_K_scaled(x[i], y[i], sc)), _mm256_set1_ps(d), acc);
    off += d * static_cast<float>(4 * o);
  }
  return hsum(acc) - off;
}

HEARTH_TARGET BlockSums block_isum_q5_K(const BlockQ5_K& x, const BlockQ8_K& y) {
  uint8_t sc[8], m[8];
  scalar::q4_k_scales(x.scales, sc, m);
  return {hsum_i32(q5_K_scaled(x, y, sc)), k4_mins(y, m)};
}

HEARTH_TARGET float dot_q5_K(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint8_t sc[8], m[8];
    scalar::q4_k_scales(x[i].scales, sc, m);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q5_K_scaled(x[i], y[i], sc)), _mm256_set1_ps(y[i].d * h2f(x[i].d)), acc);
    mins += y[i].d * h2f(x[i].dmin) * static_cast<float>(k4_mins(y[i], m));
  }
  return hsum(acc) - mins;
}

