// GEMV for q4_0 and q8_0 weights on AVX-512 VNNI (256-bit vpdpbusd), four rows at a
// time: each activation block, its scale and its correction term are loaded once for
// four weight rows, and every row keeps its own accumulator (independent FMA chains).
//
// vpdpbusd multiplies unsigned by signed bytes, so the weights are made unsigned
// (q4_0: the stored nibble 0..15, i.e. q + 8; q8_0: q + 128) and the offset is taken
// back through -offset * sum(y) per 4-byte lane, precomputed once per call. Integer
// sums are exact; the float accumulation matches dot() within rounding.
#include <immintrin.h>

#include <vector>

#include "kernels/gemv_fast.h"
#include "kernels/simd256.h"
#include "quant/blocks.h"

namespace hearth::kernels::avx512 {

using namespace hearth::quant;
using namespace hearth::kernels::simd256;

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace {

HEARTH_TARGET inline __m256i unsigned_weights(const BlockQ4_0& x) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}
HEARTH_TARGET inline __m256i unsigned_weights(const BlockQ8_0& x) {
  return _mm256_xor_si256(load(x.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
}

template <class Block>
HEARTH_TARGET void gemv_tiles(int offset, const void* W, size_t row_bytes, int64_t n, const void* act, int64_t r0,
                              int64_t r1, float* out) {
  const int64_t nb = n / 32;
  const auto* y = static_cast<const BlockQ8_0*>(act);
  // Per activation block: scale as float, and the offset correction per 4-byte lane.
  std::vector<float> dy(static_cast<size_t>(nb));
  std::vector<int32_t> corr(static_cast<size_t>(nb) * 8);
  const __m256i off = _mm256_set1_epi8(static_cast<char>(offset));
  for (int64_t b = 0; b < nb; ++b) {
    dy[b] = h2f(y[b].d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&corr[8 * b]),
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), off, load(y[b].qs))));
  }
  const auto* base = static_cast<const uint8_t*>(W);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const Block* x[4];
    for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const Block*>(base + static_cast<size_t>(r + k) * row_bytes);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i yq = load(y[b].qs);
      const __m256i c = load(&corr[8 * b]);
      const float d = dy[b];
      for (int k = 0; k < 4; ++k) {
        const __m256i s = _mm256_dpbusd_epi32(c, unsigned_weights(x[k][b]), yq);
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(h2f(x[k][b].d) * d), acc[k]);
      }
    }
    for (int k = 0; k < 4; ++k) out[r + k] = hsum(acc[k]);
  }
  for (; r < r1; ++r) {
    const Block* x = reinterpret_cast<const Block*>(base + static_cast<size_t>(r) * row_bytes);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i s = _mm256_dpbusd_epi32(load(&corr[8 * b]), unsigned_weights(x[b]), load(y[b].qs));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(h2f(x[b].d) * dy[b]), acc);
    }
    out[r] = hsum(acc);
  }
}

}  // namespace

void gemv_q4_0(const void* W, size_t row_bytes, int64_t n, const void* act, int64_t r0, int64_t r1, float* y) {
  gemv_tiles<BlockQ4_0>(8, W, row_bytes, n, act, r0, r1, y);
}
void gemv_q8_0(const void* W, size_t row_bytes, int64_t n, const void* act, int64_t r0, int64_t r1, float* y) {
  gemv_tiles<BlockQ8_0>(128, W, row_bytes, n, act, r0, r1, y);
}

}  // namespace hearth::kernels::avx512
