#include "kernels/repack.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "kernels/dots.h"
#include "kernels/simd256.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace hearth::kernels {

using namespace hearth::quant;
using simd256::prefetch_ahead;

#define HEARTH_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

size_t q4_0x8_bytes(int64_t rows, int64_t n) {
  return static_cast<size_t>(rows / 8) * static_cast<size_t>(n / 32) * kQ4_0x8BlockBytes;
}

namespace {

// Visits every (group of 8 rows, block of BlockElems columns, row in the group): f(dst, block, r)
// with dst the packed group-block of BlockBytes and block row 8g + r's source block.
template <class Block, size_t BlockBytes, int64_t BlockElems = 32, class F>
void repack_rows(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out, F&& f) {
  const int64_t nb = n / BlockElems;
  for (int64_t g = 0; g < rows / 8; ++g)
    for (int64_t b = 0; b < nb; ++b)
      for (int r = 0; r < 8; ++r)
        f(static_cast<uint8_t*>(out) + (static_cast<size_t>(g) * nb + b) * BlockBytes,
          reinterpret_cast<const Block*>(static_cast<const uint8_t*>(W) + static_cast<size_t>(8 * g + r) * row_bytes) + b, r);
}

// 32 bytes at p0 in lanes 0-7 (as bytes 0-31) and 32 at p1 in 8-15. (Masked broadcasts
// rather than casts and inserts, whose undefined upper halves GCC 12 warns about.)
HEARTH_VNNI inline __m512i load_two(const uint8_t* p0, const uint8_t* p1) {
  return _mm512_mask_broadcast_i64x4(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))), 0xF0,
                                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)));
}
// Eight byte scales at p0 and eight at p1 (unsigned, or Signed) as 16 floats.
template <bool Signed>
HEARTH_VNNI inline __m512 scales_two(const uint8_t* p0, const uint8_t* p1) {
  const __m128i b = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0)),
                                       _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p1)));
  return _mm512_maskz_cvtepi32_ps(0xFFFF, Signed ? _mm512_maskz_cvtepi8_epi32(0xFFFF, b) : _mm512_maskz_cvtepu8_epi32(0xFFFF, b));
}

// Groups g and g + 1 in one 512-bit vector (lanes 0-7 and 8-15) while g + 1 < g1; a lone
// last group runs with stride 0 (its eight results computed twice) and stores lanes 0-7.
struct GroupPair {
  size_t stride;   // bytes from group g's blocks to group g + 1's
  __mmask16 keep;  // the lanes to store
};
inline GroupPair group_pair(int64_t g, int64_t g1, size_t group_bytes) {
  return g + 1 < g1 ? GroupPair{group_bytes, 0xFFFF} : GroupPair{0, 0x00FF};
}
// Eight halves at p0 and eight at p1 as 16 floats.
HEARTH_VNNI inline __m512 halves_two(const uint8_t* p0, const uint8_t* p1) {
  return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)),
                                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p0))));
}

}  // namespace

void repack_q4_0x8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out) {
  repack_rows<BlockQ4_0, kQ4_0x8BlockBytes>(W, row_bytes, rows, n, out, [](uint8_t* dst, const BlockQ4_0* blk, int r) {
    std::memcpy(dst + 2 * r, &blk->d, 2);
    for (int c = 0; c < 4; ++c) std::memcpy(dst + 16 + 32 * c + 4 * r, blk->qs + 4 * c, 4);
  });
}

HEARTH_VNNI void gemv_q4_0x8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y) {
  const int64_t nb = n / 32;
  const auto* a = static_cast<const BlockQ8_0*>(act);
  const auto* p = static_cast<const uint8_t*>(packed);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // The stored nibbles are q + 8, so each block's integer sum needs -8 * sum(y): computed
  // once per call (with the block's activation scale) rather than once per group.
  int32_t corr[512];
  float ad[512];
  for (int64_t b0 = 0; b0 < nb; b0 += 512) {
    const int64_t b1 = std::min<int64_t>(nb, b0 + 512);
    for (int64_t b = b0; b < b1; ++b) {
      int32_t s = 0;
      for (int i = 0; i < 32; ++i) s += a[b].qs[i];
      corr[b - b0] = -8 * s;
      ad[b - b0] = _cvtsh_ss(a[b].d);
    }
    // Two groups per 512-bit vector (group_pair), each lane in the GEMM's order.
    for (int64_t g = g0; g < g1; g += 2) {
      const auto [stride, keep] = group_pair(g, g1, static_cast<size_t>(nb) * kQ4_0x8BlockBytes);
      __m512 acc = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(keep, y + 8 * g);  // lane r: row 8g + r
      const uint8_t* blk = p + (static_cast<size_t>(g) * nb + b0) * kQ4_0x8BlockBytes;
      for (int64_t b = b0; b < b1; ++b, blk += kQ4_0x8BlockBytes) {
        prefetch_ahead<kQ4_0x8BlockBytes>(blk);
        prefetch_ahead<kQ4_0x8BlockBytes>(blk + stride);
        const int8_t* yq = a[b].qs;
        __m512i isum = _mm512_set1_epi32(corr[b - b0]);
        for (int c = 0; c < 4; ++c) {
          const __m512i v = load_two(blk + 16 + 32 * c, blk + stride + 16 + 32 * c);
          int32_t ylo, yhi;
          std::memcpy(&ylo, yq + 4 * c, 4);
          std::memcpy(&yhi, yq + 16 + 4 * c, 4);
          isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(v, m4), _mm512_set1_epi32(ylo));
          isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), _mm512_set1_epi32(yhi));
        }
        const __m512 d = _mm512_mul_ps(halves_two(blk, blk + stride), _mm512_set1_ps(ad[b - b0]));
        acc = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum), d, acc);
      }
      _mm512_mask_storeu_ps(y + 8 * g, keep, acc);
    }
  }
}

size_t q8_0x8_bytes(int64_t rows, int64_t n) {
  return static_cast<size_t>(rows / 8) * static_cast<size_t>(n / 32) * kQ8_0x8BlockBytes;
}

void repack_q8_0x8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out) {
  repack_rows<BlockQ8_0, kQ8_0x8BlockBytes>(W, row_bytes, rows, n, out, [](uint8_t* dst, const BlockQ8_0* blk, int r) {
    std::memcpy(dst + 2 * r, &blk->d, 2);
    int16_t sum = 0;
    for (int i = 0; i < 32; ++i) sum = static_cast<int16_t>(sum + blk->qs[i]);
    std::memcpy(dst + 16 + 2 * r, &sum, 2);
    for (int c = 0; c < 8; ++c) std::memcpy(dst + 32 + 32 * c + 4 * r, blk->qs + 4 * c, 4);
  });
}

HEARTH_VNNI void gemv_q8_0x8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y) {
  const int64_t nb = n / 32;
  const auto* a = static_cast<const BlockQ8_0*>(act);
  const auto* p = static_cast<const uint8_t*>(packed);
  // Activations offset to unsigned (y + 128) and their scales, once per call.
  uint8_t yu[512 * 32];
  float ad[512];
  for (int64_t b0 = 0; b0 < nb; b0 += 512) {
    const int64_t b1 = std::min<int64_t>(nb, b0 + 512);
    for (int64_t b = b0; b < b1; ++b) {
      for (int i = 0; i < 32; ++i) yu[(b - b0) * 32 + i] = static_cast<uint8_t>(a[b].qs[i] ^ 0x80);
      ad[b - b0] = _cvtsh_ss(a[b].d);
    }
    // Two groups per 512-bit vector (group_pair), each lane in the GEMM's order.
    for (int64_t g = g0; g < g1; g += 2) {
      const auto [stride, keep] = group_pair(g, g1, static_cast<size_t>(nb) * kQ8_0x8BlockBytes);
      __m512 acc = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(keep, y + 8 * g);  // lane r: row 8g + r
      const uint8_t* blk = p + (static_cast<size_t>(g) * nb + b0) * kQ8_0x8BlockBytes;
      for (int64_t b = b0; b < b1; ++b, blk += kQ8_0x8BlockBytes) {
        const uint8_t* b1p = blk + stride;
        prefetch_ahead<kQ8_0x8BlockBytes>(blk);
        prefetch_ahead<kQ8_0x8BlockBytes>(b1p);
        const uint8_t* yb = yu + (b - b0) * 32;
        // sum (y + 128) w - 128 sum w = sum y w
        const __m512i wsum = _mm512_maskz_cvtepi16_epi32(0xFFFF, _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1p + 16)),
                                                                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16))));
        __m512i isum = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_slli_epi32(0xFFFF, wsum, 7));
        for (int c = 0; c < 8; ++c) {
          int32_t y4;
          std::memcpy(&y4, yb + 4 * c, 4);
          isum = _mm512_dpbusd_epi32(isum, _mm512_set1_epi32(y4), load_two(blk + 32 + 32 * c, b1p + 32 + 32 * c));
        }
        const __m512 d = _mm512_mul_ps(halves_two(blk, b1p), _mm512_set1_ps(ad[b - b0]));
        acc = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum), d, acc);
      }
      _mm512_mask_storeu_ps(y + 8 * g, keep, acc);
    }
  }
}

namespace {

// Two tokens in one 512-bit vector: lane 2r holds row r for the first token, lane 2r + 1
// for the second. The weights' 32-bit groups are duplicated into both lanes of a pair
// once per block; each pair's activations are interleaved beforehand (PairBlock) so that
// one 64-bit broadcast load feeds a vpdpbusd over 16 lanes. Every lane does the GEMV's
// arithmetic for its (row, token) in the same order, so results are equal bit for bit.
struct PairBlock {
  uint64_t q[8];     // dword k of the first token's 32 quants, then the second's
  int32_t corr[2];   // q4_0: -8 * sum(y) per token
  float ad[2];       // activation scales
};

constexpr int kMaxPairs = 8;

HEARTH_VNNI inline __m512i dup_lanes(__m256i v) {
  // (maskz forms and a zero-extended source: GCC 12 warns on the unmasked ones.)
  return _mm512_maskz_permutexvar_epi32(0xFFFF, _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
                                        _mm512_maskz_inserti64x4(0xFF, _mm512_setzero_si512(), v, 0));
}

// Lanes 2r to the first token's eight outputs, 2r + 1 to the second's.
HEARTH_VNNI inline void store_pair(__m512 acc, float* y0, float* y1) {
  alignas(64) float t[16];
  _mm512_store_ps(t, _mm512_maskz_permutexvar_ps(0xFFFF, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15), acc));
  std::memcpy(y0, t, 32);
  std::memcpy(y1, t + 8, 32);
}

HEARTH_VNNI inline __m512 pair_scale(__m512 dwz, const PairBlock& pb) {
  double ad;
  std::memcpy(&ad, pb.ad, 8);
  return _mm512_mul_ps(dwz, _mm512_castpd_ps(_mm512_set1_pd(ad)));
}

HEARTH_VNNI inline __m512i bcast64(const void* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

template <int NP>
HEARTH_VNNI void pairs_q4_0x8(const uint8_t* blk, int64_t nb, const PairBlock* const* pp, float* const* y, int64_t g) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m512 acc[NP];
  for (int p = 0; p < NP; ++p) acc[p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, blk += kQ4_0x8BlockBytes) {
    prefetch_ahead<kQ4_0x8BlockBytes>(blk);
    __m512i w[8];
    for (int c = 0; c < 4; ++c) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * c));
      w[2 * c] = dup_lanes(_mm256_and_si256(v, m4));
      w[2 * c + 1] = dup_lanes(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
    }
    const __m512 dwz = _mm512_castsi512_ps(dup_lanes(_mm256_castps_si256(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))))));
    for (int p = 0; p < NP; ++p) {
      const PairBlock& pb = pp[p][b];
      __m512i isum = bcast64(pb.corr);
      for (int c = 0; c < 4; ++c) {
        isum = _mm512_dpbusd_epi32(isum, w[2 * c], bcast64(&pb.q[c]));
        isum = _mm512_dpbusd_epi32(isum, w[2 * c + 1], bcast64(&pb.q[4 + c]));
      }
      acc[p] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum), pair_scale(dwz, pb), acc[p]);
    }
  }
  for (int p = 0; p < NP; ++p) store_pair(acc[p], y[2 * p] + 8 * g, y[2 * p + 1] + 8 * g);
}

template <int NP>
HEARTH_VNNI void pairs_q8_0x8(const uint8_t* blk, int64_t nb, const PairBlock* const* pp, float* const* y, int64_t g) {
  __m512 acc[NP];
  for (int p = 0; p < NP; ++p) acc[p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, blk += kQ8_0x8BlockBytes) {
    prefetch_ahead<kQ8_0x8BlockBytes>(blk);
    __m512i w[8];
    for (int c = 0; c < 8; ++c) w[c] = dup_lanes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 32 * c)));
    const __m256i wsum = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
    const __m512i base = dup_lanes(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(wsum, 7)));
    const __m512 dwz = _mm512_castsi512_ps(dup_lanes(_mm256_castps_si256(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))))));
    for (int p = 0; p < NP; ++p) {
      const PairBlock& pb = pp[p][b];
      __m512i isum = base;
      for (int c = 0; c < 8; ++c) isum = _mm512_dpbusd_epi32(isum, bcast64(&pb.q[c]), w[c]);
      acc[p] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum), pair_scale(dwz, pb), acc[p]);
    }
  }
  for (int p = 0; p < NP; ++p) store_pair(acc[p], y[2 * p] + 8 * g, y[2 * p + 1] + 8 * g);
}

using PairTileFn = void (*)(const uint8_t*, int64_t, const PairBlock* const*, float* const*, int64_t);

// B activation rows as (B + 1) / 2 token pairs of PairBlocks (an odd last token paired
// with zeros): the quants' dwords interleaved (offset to unsigned for q8_0's kernels),
// the scales and q4_0's corrections side by side.
template <bool Q8>
void prepare_pairs(int64_t n, const void* act, size_t act_bytes, int B, void* out) {
  const int64_t nb = n / 32;
  auto* pb = static_cast<PairBlock*>(out);
  for (int p = 0; p < (B + 1) / 2; ++p)
    for (int64_t b = 0; b < nb; ++b) {
      PairBlock& o = pb[p * nb + b];
      for (int t = 0; t < 2; ++t) {
        const int j = 2 * p + t;
        uint32_t d[8] = {};
        o.corr[t] = 0;
        o.ad[t] = 0.f;
        if (j < B) {
          const BlockQ8_0& a = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(act) + j * act_bytes)[b];
          std::memcpy(d, a.qs, 32);
          if constexpr (Q8) {
            for (uint32_t& v : d) v ^= 0x80808080u;  // y + 128
          } else {
            int32_t sum = 0;
            for (int i = 0; i < 32; ++i) sum += a.qs[i];
            o.corr[t] = -8 * sum;  // the stored nibbles are q + 8
          }
          o.ad[t] = quant::fp16_to_fp32(a.d);
        }
        for (int k = 0; k < 8; ++k) std::memcpy(reinterpret_cast<uint8_t*>(&o.q[k]) + 4 * t, &d[k], 4);
      }
    }
}

size_t pairs_bytes(int64_t n, int B) { return static_cast<size_t>((B + 1) / 2) * static_cast<size_t>(n / 32) * sizeof(PairBlock); }

// Groups [g0, g1) against the prepared token pairs, up to kMaxPairs pairs per pass over a
// group's blocks (the group's weights stay in L1 across the passes). An odd last token's
// zero partner writes to a per-thread scratch row.
void gemm_pairs(const PairTileFn* tiles, size_t block_bytes, const void* packed_v, int64_t n, const void* prepared, int B, int64_t g0,
                int64_t g1, float* y, int64_t y_stride) {
  const auto* packed = static_cast<const uint8_t*>(packed_v);
  const int64_t nb = n / 32;
  const size_t group_bytes = static_cast<size_t>(nb) * block_bytes;
  const int P = (B + 1) / 2;
  thread_local std::vector<float> spare;
  spare.resize(static_cast<size_t>(8 * g1));
  std::vector<const PairBlock*> pp(static_cast<size_t>(P));
  std::vector<float*> ys(static_cast<size_t>(2 * P));
  for (int p = 0; p < P; ++p) pp[p] = static_cast<const PairBlock*>(prepared) + p * nb;
  for (int j = 0; j < 2 * P; ++j) ys[j] = j < B ? y + j * y_stride : spare.data();
  for (int64_t g = g0; g < g1; ++g)
    for (int p = 0; p < P; p += kMaxPairs)
      tiles[std::min(kMaxPairs, P - p) - 1](packed + static_cast<size_t>(g) * group_bytes, nb, &pp[p], &ys[2 * p], g);
}

}  // namespace

HEARTH_VNNI void gemm_q4_0x8(const void* packed, int64_t n, const void* act, size_t, int B, int64_t g0, int64_t g1, float* y,
                             int64_t y_stride) {
  static constexpr PairTileFn kPairs[kMaxPairs] = {pairs_q4_0x8<1>, pairs_q4_0x8<2>, pairs_q4_0x8<3>, pairs_q4_0x8<4>,
                                                   pairs_q4_0x8<5>, pairs_q4_0x8<6>, pairs_q4_0x8<7>, pairs_q4_0x8<8>};
  gemm_pairs(kPairs, kQ4_0x8BlockBytes, packed, n, act, B, g0, g1, y, y_stride);
}

HEARTH_VNNI void gemm_q8_0x8(const void* packed, int64_t n, const void* act, size_t, int B, int64_t g0, int64_t g1, float* y,
                             int64_t y_stride) {
  static constexpr PairTileFn kPairs[kMaxPairs] = {pairs_q8_0x8<1>, pairs_q8_0x8<2>, pairs_q8_0x8<3>, pairs_q8_0x8<4>,
                                                   pairs_q8_0x8<5>, pairs_q8_0x8<6>, pairs_q8_0x8<7>, pairs_q8_0x8<8>};
  gemm_pairs(kPairs, kQ8_0x8BlockBytes, packed, n, act, B, g0, g1, y, y_stride);
}

size_t q4_Kx8_bytes(int64_t rows, int64_t n) {
  return static_cast<size_t>(rows / 8) * static_cast<size_t>(n / QK_K) * kQ4_Kx8BlockBytes;
}

namespace {

// Row r of a Q4_K or Q5_K block into the Q4_K layout: d, dmin, the unpacked scales and
// mins, the low four bits of the quants.
template <class Block>
void put_k4_row(uint8_t* dst, const Block* blk, int r) {
  std::memcpy(dst + 2 * r, &blk->d, 2);
  std::memcpy(dst + 16 + 2 * r, &blk->dmin, 2);
  uint8_t sc[8], m[8];
  scalar::q4_k_scales(blk->scales, sc, m);
  for (int j = 0; j < 8; ++j) {
    dst[32 + 8 * j + r] = sc[j];
    dst[96 + 8 * j + r] = m[j];
  }
  for (int c = 0; c < 4; ++c)
    for (int k = 0; k < 8; ++k) std::memcpy(dst + 160 + 256 * c + 32 * k + 4 * r, blk->qs + 32 * c + 4 * k, 4);
}

}  // namespace

void repack_q4_Kx8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out) {
  repack_rows<BlockQ4_K, kQ4_Kx8BlockBytes, QK_K>(W, row_bytes, rows, n, out, put_k4_row<BlockQ4_K>);
}

size_t q5_Kx8_bytes(int64_t rows, int64_t n) {
  return static_cast<size_t>(rows / 8) * static_cast<size_t>(n / QK_K) * kQ5_Kx8BlockBytes;
}

void repack_q5_Kx8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out) {
  repack_rows<BlockQ5_K, kQ5_Kx8BlockBytes, QK_K>(
      W, row_bytes, rows, n, out, [](uint8_t* dst, const BlockQ5_K* blk, int r) {
        put_k4_row(dst, blk, r);
        // The fifth bits: for chunk c and quad q of k (k = 4q + kk), byte 4r + e holds
        // bit 2kk = element 64c + 4k + e's and bit 2kk + 1 = element 64c + 32 + 4k + e's.
        for (int c = 0; c < 4; ++c)
          for (int q = 0; q < 2; ++q)
            for (int e = 0; e < 4; ++e) {
              uint8_t b = 0;
              for (int kk = 0; kk < 4; ++kk) {
                const int l = 4 * (4 * q + kk) + e;
                b |= static_cast<uint8_t>(((blk->qh[l] >> (2 * c)) & 1) << (2 * kk));
                b |= static_cast<uint8_t>(((blk->qh[l] >> (2 * c + 1)) & 1) << (2 * kk + 1));
              }
              dst[kQ4_Kx8BlockBytes + 64 * c + 32 * q + 4 * r + e] = b;
            }
      });
}

namespace {

// NC tokens against two neighbouring groups of eight rows (the second `stride` bytes
// after the first) on 512-bit vectors, lanes 0-7 the first group's rows and 8-15 the
// second's; the outputs of the lanes in `keep` are stored. A lone group is run with
// stride 0 and keep 0x00FF (its eight results computed twice, stored once).
using KTile = void (*)(const uint8_t*, size_t stride, int64_t, const BlockQ8_K* const*, float* const*, int64_t, __mmask16 keep);

// Groups [g0, g1) of a repacked K-quant matrix against B tokens, two groups at a time.
// `tiles` holds the type's tile for 1 … tiles.size() tokens; the B tokens are run in the
// fewest passes of that many, of near-equal sizes (9 tokens on 8-token tiles: 5 + 4, not
// 8 + 1). block_bytes is the type's group-block size.
void gemm_k_tiles(std::span<const KTile> tiles, size_t block_bytes, const void* packed_v, int64_t n, const void* act, size_t act_bytes,
                  int B, int64_t g0, int64_t g1, float* y, int64_t y_stride) {
  const auto* packed = static_cast<const uint8_t*>(packed_v);
  const int64_t nb = n / QK_K;
  const size_t group_bytes = static_cast<size_t>(nb) * block_bytes;
  std::vector<const BlockQ8_K*> a(static_cast<size_t>(B));
  std::vector<float*> out(static_cast<size_t>(B));
  for (int j = 0; j < B; ++j) {
    a[j] = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + j * act_bytes);
    out[j] = y + j * y_stride;
  }
  const int max = static_cast<int>(tiles.size()), passes = (B + max - 1) / max;
  for (int64_t g = g0; g < g1; g += 2) {
    const auto [stride, keep] = group_pair(g, g1, group_bytes);
    for (int p = 0, j = 0; p < passes; ++p) {
      const int nc = B * (p + 1) / passes - j;
      tiles[nc - 1](packed + static_cast<size_t>(g) * group_bytes, stride, nb, &a[j], &out[j], g, keep);
      j += nc;
    }
  }
}

// Groups [g0, g1) of a repacked K-quant matrix against one token (the GEMV).
void gemv_k_tiles(KTile tile1, size_t block_bytes, const void* packed_v, int64_t n, const void* act, int64_t g0, int64_t g1, float* y) {
  const auto* packed = static_cast<const uint8_t*>(packed_v);
  const int64_t nb = n / QK_K;
  const size_t group_bytes = static_cast<size_t>(nb) * block_bytes;
  const auto* a = static_cast<const BlockQ8_K*>(act);
  for (int64_t g = g0; g < g1; g += 2) {
    const auto [stride, keep] = group_pair(g, g1, group_bytes);
    tile1(packed + static_cast<size_t>(g) * group_bytes, stride, nb, &a, &y, g, keep);
  }
}

}  // namespace

namespace {

// Step k of chunk c of super-block i for NC tokens: the low-half levels wl against the
// tokens' quants 64c + 4k …, the high-half levels wh against 64c + 32 + 4k …
template <int NC>
HEARTH_VNNI inline void dot_k_step(const BlockQ8_K* const* a, int64_t i, int c, int k, __m512i wl, __m512i wh, __m512i* lo, __m512i* hi) {
  for (int t = 0; t < NC; ++t) {
    int32_t yl, yh;
    std::memcpy(&yl, a[t][i].qs + 64 * c + 4 * k, 4);
    std::memcpy(&yh, a[t][i].qs + 64 * c + 32 + 4 * k, 4);
    lo[t] = _mm512_dpbusd_epi32(lo[t], wl, _mm512_set1_epi32(yl));
    hi[t] = _mm512_dpbusd_epi32(hi[t], wh, _mm512_set1_epi32(yh));
  }
}

// The two sub-blocks' integer sums of NC tokens times the rows' scales, added as floats.
template <int NC>
HEARTH_VNNI inline void add_scaled(const __m512i* lo, const __m512i* hi, __m512 sl, __m512 sh, __m512* tot) {
  for (int t = 0; t < NC; ++t)
    tot[t] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, hi[t]), sh, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, lo[t]), sl, tot[t]));
}

// A KTile for q4_K (and q5_K: the fifth bits or-ed in): per 32-element sub-block the
// integer dot (vpdpbusd on the nibbles) times the rows' scales as floats (a convert and an
// FMA per token rather than a two-uop vpmulld and an add), summed over the super-block;
// the mins against the activations' 16-element sums; both scaled once per super-block
// into one accumulator. The unpacking of each weight vector is shared by up to eight tokens.
template <int NC, bool Q5 = false>
HEARTH_VNNI void tile_q4_Kx8(const uint8_t* blk, size_t stride, int64_t nb, const BlockQ8_K* const* a, float* const* y, int64_t g,
                             __mmask16 keep) {
  constexpr size_t kBlock = Q5 ? kQ5_Kx8BlockBytes : kQ4_Kx8BlockBytes;
  const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
  __m512 acc[NC];
  for (int t = 0; t < NC; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, blk += kBlock) {
    const uint8_t* b1 = blk + stride;
    prefetch_ahead<kBlock>(blk);
    prefetch_ahead<kBlock>(b1);
    __m512 tot[NC];
    for (int t = 0; t < NC; ++t) tot[t] = _mm512_setzero_ps();
    for (int c = 0; c < 4; ++c) {
      __m512i lo[NC], hi[NC];
      for (int t = 0; t < NC; ++t) lo[t] = hi[t] = _mm512_setzero_si512();
      for (int k = 0; k < 8; ++k) {
        const size_t o = 160 + 256 * c + 32 * k;
        const __m512i v = load_two(blk + o, b1 + o);
        __m512i wl = _mm512_and_si512(v, m4), wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        if constexpr (Q5) {
          const size_t oh = kQ4_Kx8BlockBytes + 64 * c + 32 * (k / 4);
          const __m512i h = _mm512_srli_epi16(load_two(blk + oh, b1 + oh), 2 * (k % 4));
          wl = _mm512_or_si512(wl, _mm512_slli_epi16(_mm512_and_si512(h, one), 4));
          wh = _mm512_or_si512(wh, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 1), one), 4));
        }
        dot_k_step<NC>(a, i, c, k, wl, wh, lo, hi);
      }
      add_scaled<NC>(lo, hi, scales_two<false>(blk + 32 + 16 * c, b1 + 32 + 16 * c), scales_two<false>(blk + 40 + 16 * c, b1 + 40 + 16 * c),
                     tot);
    }
    const __m512 d = halves_two(blk, b1), dmin = halves_two(blk + 16, b1 + 16);
    __m512i mp[4];
    for (int p = 0; p < 4; ++p) {
      const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 96 + 16 * p));
      const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + 96 + 16 * p));
      mp[p] = _mm512_maskz_cvtepu8_epi16(~0u, _mm256_set_m128i(_mm_unpacklo_epi8(v1, _mm_srli_si128(v1, 8)),
                                                                _mm_unpacklo_epi8(v0, _mm_srli_si128(v0, 8))));
    }
    for (int t = 0; t < NC; ++t) {
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t][i].bsums));
      alignas(16) int32_t sp[4];  // (s_2p, s_2p+1) as int16 pairs, s_j = bsums[2j] + bsums[2j+1]
      _mm_store_si128(reinterpret_cast<__m128i*>(sp), _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_hadd_epi16(bs, bs), 0x08)));
      __m512i msum = _mm512_setzero_si512();
      for (int p = 0; p < 4; ++p) msum = _mm512_add_epi32(msum, _mm512_madd_epi16(mp[p], _mm512_set1_epi32(sp[p])));
      const __m512 ad = _mm512_set1_ps(a[t][i].d);
      acc[t] = _mm512_fnmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, msum), _mm512_mul_ps(dmin, ad),
                                _mm512_fmadd_ps(tot[t], _mm512_mul_ps(d, ad), acc[t]));
    }
  }
  for (int t = 0; t < NC; ++t) _mm512_mask_storeu_ps(y[t] + 8 * g, keep, acc[t]);
}

}  // namespace

constexpr KTile kQ4KTiles[] = {tile_q4_Kx8<1>, tile_q4_Kx8<2>, tile_q4_Kx8<3>, tile_q4_Kx8<4>,
                               tile_q4_Kx8<5>, tile_q4_Kx8<6>, tile_q4_Kx8<7>, tile_q4_Kx8<8>};
constexpr KTile kQ5KTiles[] = {tile_q4_Kx8<1, true>, tile_q4_Kx8<2, true>, tile_q4_Kx8<3, true>, tile_q4_Kx8<4, true>,
                               tile_q4_Kx8<5, true>, tile_q4_Kx8<6, true>, tile_q4_Kx8<7, true>, tile_q4_Kx8<8, true>};

HEARTH_VNNI void gemv_q4_Kx8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y) {
  gemv_k_tiles(kQ4KTiles[0], kQ4_Kx8BlockBytes, packed, n, act, g0, g1, y);
}

HEARTH_VNNI void gemm_q4_Kx8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1,
                             float* y, int64_t y_stride) {
  gemm_k_tiles(kQ4KTiles, kQ4_Kx8BlockBytes, packed, n, act, act_bytes, B, g0, g1, y, y_stride);
}

HEARTH_VNNI void gemv_q5_Kx8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y) {
  gemv_k_tiles(kQ5KTiles[0], kQ5_Kx8BlockBytes, packed, n, act, g0, g1, y);
}

HEARTH_VNNI void gemm_q5_Kx8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1,
                             float* y, int64_t y_stride) {
  gemm_k_tiles(kQ5KTiles, kQ5_Kx8BlockBytes, packed, n, act, act_bytes, B, g0, g1, y, y_stride);
}

size_t q6_Kx8_bytes(int64_t rows, int64_t n) {
  return static_cast<size_t>(rows / 8) * static_cast<size_t>(n / QK_K) * kQ6_Kx8BlockBytes;
}

void repack_q6_Kx8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out) {
  repack_rows<BlockQ6_K, kQ6_Kx8BlockBytes, QK_K>(
      W, row_bytes, rows, n, out, [](uint8_t* dst, const BlockQ6_K* blk, int r) {
        if (r == 0) std::memset(dst + 1168, 0, 512);  // the high bits are or-ed in row by row
        std::memcpy(dst + 2 * r, &blk->d, 2);
        for (int s = 0; s < 16; ++s) dst[16 + 8 * s + r] = static_cast<uint8_t>(blk->scales[s]);
        // The 256 quants in element order (0..63), as dequantize_row_q6_K reads them.
        uint8_t q[QK_K];
        for (int h = 0; h < 2; ++h)
          for (int l = 0; l < 32; ++l) {
            const uint8_t* ql = blk->ql + 64 * h;
            const uint8_t qh = blk->qh[32 * h + l];
            q[128 * h + l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh & 3) << 4));
            q[128 * h + l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh >> 2) & 3) << 4));
            q[128 * h + l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh >> 4) & 3) << 4));
            q[128 * h + l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh >> 6) & 3) << 4));
          }
        for (int c = 0; c < 4; ++c)
          for (int k = 0; k < 8; ++k)
            for (int e = 0; e < 4; ++e) {
              const uint8_t lo = q[64 * c + 4 * k + e], hi = q[64 * c + 32 + 4 * k + e];
              dst[144 + 256 * c + 32 * k + 4 * r + e] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
              dst[1168 + 128 * c + 32 * (k / 2) + 4 * r + e] |= static_cast<uint8_t>(((lo >> 4) | ((hi >> 4) << 2)) << (4 * (k % 2)));
            }
      });
}

namespace {

// A KTile for q6_K: the 6-bit quants unsigned through vpdpbusd, each 16-element
// sub-block's integer sum times the rows' int8 scales as floats (one convert and one FMA
// per token and sub-block instead of a two-uop vpmulld and an add), the -32 offset through
// the activations' sums (vpdpwssd on the rows' scale pairs). The unpacking of each weight
// vector is shared by up to eight tokens.
template <int NC>
HEARTH_VNNI void tile_q6_Kx8(const uint8_t* blk, size_t stride, int64_t nb, const BlockQ8_K* const* a, float* const* y, int64_t g,
                             __mmask16 keep) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
  const __m512 minus32 = _mm512_set1_ps(-32.f);
  __m512 acc[NC];
  for (int t = 0; t < NC; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, blk += kQ6_Kx8BlockBytes) {
    const uint8_t* b1 = blk + stride;
    prefetch_ahead<kQ6_Kx8BlockBytes>(blk);
    prefetch_ahead<kQ6_Kx8BlockBytes>(b1);
    const uint8_t *sc0 = blk + 16, *sc1 = b1 + 16;
    __m512 tot[NC];
    for (int t = 0; t < NC; ++t) tot[t] = _mm512_setzero_ps();
    for (int c = 0; c < 4; ++c)
      for (int half = 0; half < 2; ++half) {
        __m512i lo[NC], hi[NC];
        for (int t = 0; t < NC; ++t) lo[t] = hi[t] = _mm512_setzero_si512();
        for (int k = 4 * half; k < 4 * half + 4; ++k) {
          const size_t o = 144 + 256 * c + 32 * k, oh = 1168 + 128 * c + 32 * (k / 2);
          const __m512i v = load_two(blk + o, b1 + o);
          const __m512i h = _mm512_srli_epi16(load_two(blk + oh, b1 + oh), 4 * (k % 2));
          const __m512i wl = _mm512_or_si512(_mm512_and_si512(v, m4), _mm512_slli_epi16(_mm512_and_si512(h, m2), 4));
          const __m512i wh = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4),
                                             _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2), m2), 4));
          dot_k_step<NC>(a, i, c, k, wl, wh, lo, hi);
        }
        const size_t ol = 8 * (4 * c + half), oh = 8 * (4 * c + 2 + half);
        add_scaled<NC>(lo, hi, scales_two<true>(sc0 + ol, sc1 + ol), scales_two<true>(sc0 + oh, sc1 + oh), tot);
      }
    __m512i pairs[8];
    for (int p = 0; p < 8; ++p) {
      const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc0 + 16 * p));
      const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc1 + 16 * p));
      pairs[p] = _mm512_maskz_cvtepi8_epi16(~0u, _mm256_set_m128i(_mm_unpacklo_epi8(x1, _mm_srli_si128(x1, 8)),
                                                                   _mm_unpacklo_epi8(x0, _mm_srli_si128(x0, 8))));
    }
    const __m512 d = halves_two(blk, b1);
    for (int t = 0; t < NC; ++t) {
      __m512i off = _mm512_setzero_si512();
      for (int p = 0; p < 8; ++p) {
        int32_t bs;
        std::memcpy(&bs, a[t][i].bsums + 2 * p, 4);
        off = _mm512_dpwssd_epi32(off, pairs[p], _mm512_set1_epi32(bs));
      }
      const __m512 st = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, off), minus32, tot[t]);
      acc[t] = _mm512_fmadd_ps(st, _mm512_mul_ps(d, _mm512_set1_ps(a[t][i].d)), acc[t]);
    }
  }
  for (int t = 0; t < NC; ++t) _mm512_mask_storeu_ps(y[t] + 8 * g, keep, acc[t]);
}

}  // namespace

constexpr KTile kQ6KTiles[] = {tile_q6_Kx8<1>, tile_q6_Kx8<2>, tile_q6_Kx8<3>, tile_q6_Kx8<4>,
                               tile_q6_Kx8<5>, tile_q6_Kx8<6>, tile_q6_Kx8<7>, tile_q6_Kx8<8>};

HEARTH_VNNI void gemv_q6_Kx8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y) {
  gemv_k_tiles(kQ6KTiles[0], kQ6_Kx8BlockBytes, packed, n, act, g0, g1, y);
}

HEARTH_VNNI void gemm_q6_Kx8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1,
                             float* y, int64_t y_stride) {
  gemm_k_tiles(kQ6KTiles, kQ6_Kx8BlockBytes, packed, n, act, act_bytes, B, g0, g1, y, y_stride);
}

const RepackedTraits* repacked_traits(gguf::GgmlType type, Isa isa) {
  static constexpr RepackedTraits kRows[] = {
      {gguf::GgmlType::Q4_0, q4_0x8_bytes, repack_q4_0x8, gemv_q4_0x8, gemm_q4_0x8, pairs_bytes, prepare_pairs<false>},
      {gguf::GgmlType::Q8_0, q8_0x8_bytes, repack_q8_0x8, gemv_q8_0x8, gemm_q8_0x8, pairs_bytes, prepare_pairs<true>},
      {gguf::GgmlType::Q4_K, q4_Kx8_bytes, repack_q4_Kx8, gemv_q4_Kx8, gemm_q4_Kx8},
      {gguf::GgmlType::Q5_K, q5_Kx8_bytes, repack_q5_Kx8, gemv_q5_Kx8, gemm_q5_Kx8},
      {gguf::GgmlType::Q6_K, q6_Kx8_bytes, repack_q6_Kx8, gemv_q6_Kx8, gemm_q6_Kx8},
  };
  if (isa < Isa::Avx512) return nullptr;
  for (const RepackedTraits& r : kRows)
    if (r.type == type) return &r;
  return nullptr;
}

const void* gemm_input(const RepackedTraits& t, int64_t n, const void* act, size_t act_bytes, int B, std::vector<uint8_t>& scratch) {
  if (!t.prepare) return act;
  scratch.resize(t.prepared_bytes(n, B));
  t.prepare(n, act, act_bytes, B, scratch.data());
  return scratch.data();
}

}  // namespace hearth::kernels
