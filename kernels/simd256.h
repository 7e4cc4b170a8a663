// The 256-bit helpers every x86 kernel file uses: horizontal sums, half to float, an
// unaligned load. Compiled for AVX2 + FMA + F16C; the AVX-512 kernels call them too (a
// function may inline a callee whose target is a subset of its own).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace hearth::kernels::simd256 {

#define HEARTH_SIMD256 __attribute__((target("avx2,fma,f16c")))

HEARTH_SIMD256 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

HEARTH_SIMD256 inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

HEARTH_SIMD256 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

HEARTH_SIMD256 inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Prefetches every cache line of the block 2 KiB ahead of p. Decoding streams each weight
// once, and the hardware prefetchers alone left about half the read bandwidth unused
// (Q4_0 1.1B decoding: 24 -> 34.6 t/s with it, see the README).
template <size_t BlockBytes>
inline void prefetch_ahead(const void* p) {
  for (size_t o = 0; o < BlockBytes; o += 64) _mm_prefetch(static_cast<const char*>(p) + 2048 + o, _MM_HINT_T0);
}

#undef HEARTH_SIMD256

}  // namespace hearth::kernels::simd256
