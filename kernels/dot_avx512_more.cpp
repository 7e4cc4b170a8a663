// AVX-512 VNNI dot products for q4_1, q5_0, q5_1, q2_K, q3_K and q5_K: the shared
// kernels of dot_more_impl.h over vpdpbusd (bytes) and vpdpwssd (scaled pairs).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/dots.h"
#include "kernels/simd256.h"
#include "quant/fp16.h"

namespace hearth::kernels::avx512 {

using namespace hearth::quant;
using namespace hearth::kernels::simd256;

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace {

HEARTH_TARGET inline __m256i udot(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
HEARTH_TARGET inline __m256i udot_scaled(__m256i u, __m256i s, int16_t sc_lo, int16_t sc_hi) {
  return _mm256_dpwssd_epi32(_mm256_setzero_si256(), _mm256_maddubs_epi16(u, s),
                             _mm256_set_m128i(_mm_set1_epi16(sc_hi), _mm_set1_epi16(sc_lo)));
}
HEARTH_TARGET inline __m256i sdot(__m256i a, __m256i b) { return udot(_mm256_abs_epi8(a), _mm256_sign_epi8(b, a)); }

}  // namespace

#include "kernels/dot_more_impl.h"

}  // namespace hearth::kernels::avx512
