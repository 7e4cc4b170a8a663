// AVX2 dot products for q4_1, q5_0, q5_1, q2_K, q3_K and q5_K: the shared kernels of
// dot_more_impl.h over maddubs + madd byte products.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/dots.h"
#include "kernels/simd256.h"
#include "quant/fp16.h"

namespace hearth::kernels::avx2 {

using namespace hearth::quant;
using namespace hearth::kernels::simd256;

#define HEARTH_TARGET __attribute__((target("avx2,fma,f16c")))

namespace {

// (|products| small enough for maddubs' 16-bit pairs: unsigned <= 31 here.)
HEARTH_TARGET inline __m256i udot(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
HEARTH_TARGET inline __m256i udot_scaled(__m256i u, __m256i s, int16_t sc_lo, int16_t sc_hi) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set_m128i(_mm_set1_epi16(sc_hi), _mm_set1_epi16(sc_lo)));
}
// |a| times b carrying a's sign, through the unsigned product.
HEARTH_TARGET inline __m256i sdot(__m256i a, __m256i b) { return udot(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)); }

}  // namespace

#include "kernels/dot_more_impl.h"

}  // namespace hearth::kernels::avx2
