// The dot products of q4_1, q5_0, q5_1 (blocks of 32) and q2_K, q3_K, q5_K (super-blocks
// of 256) on 256-bit vectors, written once and compiled per instruction set: the file
// that includes this opens its ISA's namespace and defines HEARTH_TARGET and the three
// byte products the kernels are built from:
//   udot(u, s)                 unsigned x signed bytes summed into eight int32 lanes
//   udot_scaled(u, s, lo, hi)  the same with each 16-byte half weighted by an int16 scale
//   sdot(a, b)                 signed x signed bytes (|a| <= 16) summed likewise
// Integer sums are exact (equal to the scalar ones), floats within rounding.
//
// Each type is a small struct: unpack() turns a weight block into byte levels and scales
// once; add() takes one activation block into a float accumulator and a float side sum
// (mins or offsets); finish() combines them. dot() runs them over one activation row and
// gemm() over up to kMoreTokens rows per unpacked block, so every (row, token) goes
// through the same operations in the same order: GEMM results equal dot()'s bit for bit.
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


constexpr int kMoreTokens = 8;

struct Q4_1 {
  using W = BlockQ4_1;
  using A = BlockQ8_1;
  static constexpr int kQK = QK4_1;
  struct U {
    __m256i l;
  };
  HEARTH_TARGET static void unpack(const W& x, U& u) { u.l = nibbles32(x.qs); }
  HEARTH_TARGET static int32_t isum(const U& u, const A& y) { return hsum_i32(udot(u.l, load(y.qs))); }
  template <class X>  // BlockQ4_1 or BlockQ5_1: the same d and m
  HEARTH_TARGET static void add(const X& x, const U& u, const A& y, __m256& acc, float& side) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(u.l, load(y.qs))), _mm256_set1_ps(h2f(x.d) * h2f(y.d)), acc);
    side += h2f(x.m) * h2f(y.s);
  }
  HEARTH_TARGET static float finish(__m256 acc, float side) { return hsum(acc) + side; }
};

struct Q5_1 : Q4_1 {
  using W = BlockQ5_1;
  HEARTH_TARGET static void unpack(const W& x, U& u) { u.l = q5_levels(x.qs, x.qh); }
};

struct Q5_0 {
  using W = BlockQ5_0;
  using A = BlockQ8_0;
  static constexpr int kQK = QK5_0;
  struct U {
    __m256i l;  // signed levels -16 … 15
  };
  HEARTH_TARGET static void unpack(const W& x, U& u) { u.l = _mm256_sub_epi8(q5_levels(x.qs, x.qh), _mm256_set1_epi8(16)); }
  HEARTH_TARGET static int32_t isum(const U& u, const A& y) { return hsum_i32(sdot(u.l, load(y.qs))); }
  HEARTH_TARGET static void add(const W& x, const U& u, const A& y, __m256& acc, float&) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sdot(u.l, load(y.qs))), _mm256_set1_ps(h2f(x.d) * h2f(y.d)), acc);
  }
  HEARTH_TARGET static float finish(__m256 acc, float) { return hsum(acc); }
};

// The 256 levels of a K-quant block as eight vectors of 32 bytes, vector k against
// activation bytes 32k … 32k+31, weighted by the 16-element group scales sc[2k], sc[2k+1].
struct KLevels {
  __m256i l[8];
  int16_t sc[16];
};

HEARTH_TARGET inline __m256i k_scaled(const KLevels& u, const BlockQ8_K& y) {
  __m256i acc = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k) acc = _mm256_add_epi32(acc, udot_scaled(u.l[k], load(y.qs + 32 * k), u.sc[2 * k], u.sc[2 * k + 1]));
  return acc;
}

struct Q2_K {
  using W = BlockQ2_K;
  using A = BlockQ8_K;
  static constexpr int kQK = QK_K;
  struct U : KLevels {
    int16_t m[16];
  };
  HEARTH_TARGET static void unpack(const W& x, U& u) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load(x.qs + 32 * h);
      for (int s = 0; s < 4; ++s) u.l[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
    }
    for (int g = 0; g < 16; ++g) u.sc[g] = x.scales[g] & 0xF, u.m[g] = x.scales[g] >> 4;
  }
  HEARTH_TARGET static int32_t mins(const U& u, const A& y) {
    int32_t mi = 0;
    for (int g = 0; g < 16; ++g) mi += u.m[g] * y.bsums[g];
    return mi;
  }
  HEARTH_TARGET static BlockSums isum(const U& u, const A& y) { return {hsum_i32(k_scaled(u, y)), mins(u, y)}; }
  HEARTH_TARGET static void add(const W& x, const U& u, const A& y, __m256& acc, float& side) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_scaled(u, y)), _mm256_set1_ps(y.d * h2f(x.d)), acc);
    side += y.d * h2f(x.dmin) * static_cast<float>(mins(u, y));
  }
  HEARTH_TARGET static float finish(__m256 acc, float side) { return hsum(acc) - side; }
};

// q3 levels shifted to 0..7 (value + 4), weighted by the signed 6-bit scales; the shift
// comes back as 4 * sum(scale * bsum).
struct Q3_K {
  using W = BlockQ3_K;
  using A = BlockQ8_K;
  static constexpr int kQK = QK_K;
  using U = KLevels;
  HEARTH_TARGET static void unpack(const W& x, U& u) {
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i hm = load(x.hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load(x.qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), one);
        u.l[4 * h + s] = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
      }
    }
    // The sixteen 6-bit scales at once (scalar::q3_k_scale one by one): low four bits from
    // bytes 0-7 (low nibbles for 0-7, high for 8-15), the top two from bytes 8-11.
    uint32_t a0, a1, top, w[4];
    std::memcpy(&a0, x.scales, 4);
    std::memcpy(&a1, x.scales + 4, 4);
    std::memcpy(&top, x.scales + 8, 4);
    w[0] = (a0 & 0x0F0F0F0F) | ((top & 0x03030303) << 4);
    w[1] = (a1 & 0x0F0F0F0F) | (((top >> 2) & 0x03030303) << 4);
    w[2] = ((a0 >> 4) & 0x0F0F0F0F) | (((top >> 4) & 0x03030303) << 4);
    w[3] = ((a1 >> 4) & 0x0F0F0F0F) | (((top >> 6) & 0x03030303) << 4);
    uint8_t b[16];
    std::memcpy(b, w, 16);
    for (int g = 0; g < 16; ++g) u.sc[g] = static_cast<int16_t>(b[g] - 32);
  }
  HEARTH_TARGET static int32_t offset(const U& u, const A& y) {
    int32_t o = 0;
    for (int g = 0; g < 16; ++g) o += u.sc[g] * y.bsums[g];
    return o;
  }
  HEARTH_TARGET static int32_t isum(const U& u, const A& y) { return hsum_i32(k_scaled(u, y)) - 4 * offset(u, y); }
  HEARTH_TARGET static void add(const W& x, const U& u, const A& y, __m256& acc, float& side) {
    const float d = y.d * h2f(x.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_scaled(u, y)), _mm256_set1_ps(d), acc);
    side += d * static_cast<float>(4 * offset(u, y));
  }
  HEARTH_TARGET static float finish(__m256 acc, float side) { return hsum(acc) - side; }
};

struct Q5_K {
  using W = BlockQ5_K;
  using A = BlockQ8_K;
  static constexpr int kQK = QK_K;
  struct U : KLevels {
    uint8_t m[8];
  };
  HEARTH_TARGET static void unpack(const W& x, U& u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i qh = load(x.qh);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load(x.qs + 32 * c);
      const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
      const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
      u.l[2 * c] = _mm256_or_si256(_mm256_and_si256(q, m4), hlo);
      u.l[2 * c + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi);
    }
    uint8_t sc[8];
    scalar::q4_k_scales(x.scales, sc, u.m);
    for (int k = 0; k < 8; ++k) u.sc[2 * k] = u.sc[2 * k + 1] = sc[k];
  }
  HEARTH_TARGET static int32_t mins(const U& u, const A& y) {
    int32_t s = 0;
    for (int j = 0; j < 8; ++j) s += u.m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
    return s;
  }
  HEARTH_TARGET static BlockSums isum(const U& u, const A& y) { return {hsum_i32(k_scaled(u, y)), mins(u, y)}; }
  HEARTH_TARGET static void add(const W& x, const U& u, const A& y, __m256& acc, float& side) {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_scaled(u, y)), _mm256_set1_ps(y.d * h2f(x.d)), acc);
    side += y.d * h2f(x.dmin) * static_cast<float>(mins(u, y));
  }
  HEARTH_TARGET static float finish(__m256 acc, float side) { return hsum(acc) - side; }
};

template <class K>
HEARTH_TARGET auto block_isum(const typename K::W& x, const typename K::A& y) {
  typename K::U u;
  K::unpack(x, u);
  return K::isum(u, y);
}

template <class K>
HEARTH_TARGET float dot(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const typename K::W*>(w);
  const auto* y = static_cast<const typename K::A*>(a);
  __m256 acc = _mm256_setzero_ps();
  float side = 0;
  for (int64_t i = 0; i < n / K::kQK; ++i) {
    // Decoding streams each row once: fetch the weights ahead of use (the hardware
    // prefetchers alone leave much of the read bandwidth unused).
    prefetch_ahead<sizeof(typename K::W)>(x + i);
    typename K::U u;
    K::unpack(x[i], u);
    K::add(x[i], u, y[i], acc, side);
  }
  return K::finish(acc, side);
}

template <class K>
HEARTH_TARGET void gemm(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, int64_t r0, int64_t r1,
                        float* out, int64_t out_stride) {
  const int64_t nb = n / K::kQK;
  for (int64_t r = r0; r < r1; ++r) {
    const auto* x = reinterpret_cast<const typename K::W*>(static_cast<const uint8_t*>(W) + static_cast<size_t>(r) * row_bytes);
    for (int j0 = 0; j0 < B; j0 += kMoreTokens) {
      const int nj = std::min(kMoreTokens, B - j0);
      const auto* a0 = static_cast<const uint8_t*>(act) + static_cast<size_t>(j0) * act_bytes;
      __m256 acc[kMoreTokens];
      float side[kMoreTokens] = {};
      for (__m256& v : acc) v = _mm256_setzero_ps();
      for (int64_t i = 0; i < nb; ++i) {
        typename K::U u;
        K::unpack(x[i], u);
        for (int t = 0; t < nj; ++t)
          K::add(x[i], u, reinterpret_cast<const typename K::A*>(a0 + t * act_bytes)[i], acc[t], side[t]);
      }
      for (int t = 0; t < nj; ++t) out[(j0 + t) * out_stride + r] = K::finish(acc[t], side[t]);
    }
  }
}

}  // namespace

#define HEARTH_MORE_TYPE(name, K, Sum)                                                                              \
  HEARTH_TARGET Sum block_isum_##name(const K::W& x, const K::A& y) { return block_isum<K>(x, y); }                 \
  HEARTH_TARGET float dot_##name(int64_t n, const void* w, const void* a) { return dot<K>(n, w, a); }               \
  HEARTH_TARGET void gemm_##name(const void* W, size_t row_bytes, int64_t n, const void* act, size_t act_bytes, int B, \
                                 int64_t r0, int64_t r1, float* y, int64_t y_stride) {                              \
    gemm<K>(W, row_bytes, n, act, act_bytes, B, r0, r1, y, y_stride);                                               \
  }

HEARTH_MORE_TYPE(q4_1, Q4_1, int32_t)
HEARTH_MORE_TYPE(q5_0, Q5_0, int32_t)
HEARTH_MORE_TYPE(q5_1, Q5_1, int32_t)
HEARTH_MORE_TYPE(q2_K, Q2_K, BlockSums)
HEARTH_MORE_TYPE(q3_K, Q3_K, int32_t)
HEARTH_MORE_TYPE(q5_K, Q5_K, BlockSums)

#undef HEARTH_MORE_TYPE
