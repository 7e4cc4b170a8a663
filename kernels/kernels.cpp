#include "kernels/kernels.h"

#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstring>

#include "kernels/dots.h"
#include "kernels/gemv_fast.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace hearth::kernels {
namespace {

constexpr KernelTraits kRows[] = {
    {GgmlType::F32, GgmlType::F32, {scalar::dot_f32, avx2::dot_f32, avx512::dot_f32}, {}, {nullptr, nullptr, avx512::gemm_f32}},
    {GgmlType::F16, GgmlType::F16, {scalar::dot_f16, avx2::dot_f16, avx512::dot_f16}, {}, {nullptr, nullptr, avx512::gemm_f16}},
    {GgmlType::Q8_0, GgmlType::Q8_0, {scalar::dot_q8_0, avx2::dot_q8_0, avx512::dot_q8_0}, {nullptr, nullptr, avx512::gemv_q8_0}},
    {GgmlType::Q4_0, GgmlType::Q8_0, {scalar::dot_q4_0, avx2::dot_q4_0, avx512::dot_q4_0}, {nullptr, nullptr, avx512::gemv_q4_0}},
    {GgmlType::Q4_K, GgmlType::Q8_K, {scalar::dot_q4_K, avx2::dot_q4_K, avx512::dot_q4_K}, {}, {nullptr, nullptr, avx512::gemm_q4_K}},
    {GgmlType::Q6_K, GgmlType::Q8_K, {scalar::dot_q6_K, avx2::dot_q6_K, avx512::dot_q6_K}, {}, {nullptr, nullptr, avx512::gemm_q6_K}},
    {GgmlType::BF16, GgmlType::BF16, {scalar::dot_bf16, avx2::dot_bf16, avx512::dot_bf16}, {}, {nullptr, nullptr, avx512::gemm_bf16}},
    {GgmlType::Q4_1, GgmlType::Q8_1, {scalar::dot_q4_1, avx2::dot_q4_1, avx512::dot_q4_1}, {}, {nullptr, avx2::gemm_q4_1, avx512::gemm_q4_1}},
    {GgmlType::Q5_0, GgmlType::Q8_0, {scalar::dot_q5_0, avx2::dot_q5_0, avx512::dot_q5_0}, {}, {nullptr, avx2::gemm_q5_0, avx512::gemm_q5_0}},
    {GgmlType::Q5_1, GgmlType::Q8_1, {scalar::dot_q5_1, avx2::dot_q5_1, avx512::dot_q5_1}, {}, {nullptr, avx2::gemm_q5_1, avx512::gemm_q5_1}},
    {GgmlType::Q2_K, GgmlType::Q8_K, {scalar::dot_q2_K, avx2::dot_q2_K, avx512::dot_q2_K}, {}, {nullptr, avx2::gemm_q2_K, avx512::gemm_q2_K}},
    {GgmlType::Q3_K, GgmlType::Q8_K, {scalar::dot_q3_K, avx2::dot_q3_K, avx512::dot_q3_K}, {}, {nullptr, avx2::gemm_q3_K, avx512::gemm_q3_K}},
    {GgmlType::Q5_K, GgmlType::Q8_K, {scalar::dot_q5_K, avx2::dot_q5_K, avx512::dot_q5_K}, {}, {nullptr, avx2::gemm_q5_K, avx512::gemm_q5_K}},
    {GgmlType::IQ4_XS, GgmlType::Q8_K, {scalar::dot_iq4_xs, avx2::dot_iq4_xs, avx512::dot_iq4_xs}, {}, {nullptr, nullptr, avx512::gemm_iq4_xs}},
    {GgmlType::TQ1_0, GgmlType::Q8_K, {scalar::dot_tq1_0, avx2::dot_tq1_0, nullptr}},
    {GgmlType::TQ2_0, GgmlType::Q8_K, {scalar::dot_tq2_0, avx2::dot_tq2_0, nullptr}},
};

constexpr std::array<const KernelTraits*, gguf::kMaxTypeId> make_index() {
  std::array<const KernelTraits*, gguf::kMaxTypeId> idx{};
  for (const KernelTraits& r : kRows) idx[static_cast<uint32_t>(r.weight)] = &r;
  return idx;
}
constexpr auto kIndex = make_index();

// Q8_0 activations as llama.cpp's x86 CPU backend makes them (quantize_row_q8_0 with
// AVX): scale 127 / amax and round-half-even, which differs from the reference
// quantizer's 1 / d and round-half-away in rare ties.
void act_q8_0(const float* x, int64_t n, void* out) {
  auto* y = static_cast<quant::BlockQ8_0*>(out);
  for (int64_t i = 0; i < n / quant::QK8_0; ++i, x += quant::QK8_0) {
    float amax = 0;
    for (int j = 0; j < quant::QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    y[i].d = quant::fp32_to_fp16(d);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < quant::QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  }
}

// The same with AVX2, bit for bit: the same float products rounded to nearest-even.
__attribute__((target("avx2,fma,f16c"))) void act_q8_0_avx2(const float* x, int64_t n, void* out) {
  auto* y = static_cast<quant::BlockQ8_0*>(out);
  const __m256 sign = _mm256_set1_ps(-0.f);
  for (int64_t i = 0; i < n / quant::QK8_0; ++i, x += quant::QK8_0) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    y[i].d = quant::fp32_to_fp16(amax / 127.f);
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}

// Q8_K as quantize_row_q8_K (ggml's CPU backend uses the reference on x86), bit for bit:
// the same largest-magnitude element (the first of equals), the same float products,
// rounded to nearest-even as nearest_int rounds them.
__attribute__((target("avx2,fma,f16c"))) void act_q8_K_avx2(const float* x, int64_t n, void* out) {
  auto* y = static_cast<quant::BlockQ8_K*>(out);
  const __m256 sign = _mm256_set1_ps(-0.f);
  for (int64_t i = 0; i < n / quant::QK_K; ++i, x += quant::QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < quant::QK_K; k += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    if (!(amax > 0)) {
      // All zero (or NaN): the scalar reference decides.
      quant::quantize_q8_K(x, &y[i], quant::QK_K, nullptr);
      continue;
    }
    int j = 0;
    while (std::fabs(x[j]) != amax) ++j;
    const float iscale = -127.f / x[j];
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int k = 0; k < quant::QK_K; k += 32) {
      __m256i q[4];
      for (int v = 0; v < 4; ++v)
        q[v] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + k + 8 * v))), top);
      const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + k),
                          _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    }
    for (int g = 0; g < quant::QK_K / 16; ++g) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += y[i].qs[16 * g + k];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

// Q8_1 likewise (quantize_row_q8_1 with AVX), with s = d * sum(q).
void act_q8_1(const float* x, int64_t n, void* out) {
  auto* y = static_cast<quant::BlockQ8_1*>(out);
  for (int64_t i = 0; i < n / quant::QK8_1; ++i, x += quant::QK8_1) {
    float amax = 0;
    for (int j = 0; j < quant::QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    y[i].d = quant::fp32_to_fp16(d);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < quant::QK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = quant::fp32_to_fp16(d * static_cast<float>(sum));
  }
}

}  // namespace

const KernelTraits* kernel_traits(GgmlType weight) {
  auto id = static_cast<uint32_t>(weight);
  return id < kIndex.size() ? kIndex[id] : nullptr;
}

DotFn dot_fn(GgmlType weight, Isa isa) {
  const KernelTraits* k = kernel_traits(weight);
  if (!k) return nullptr;
  for (int i = static_cast<int>(isa); i >= 0; --i)
    if (k->dot[i]) return k->dot[i];
  return nullptr;
}

GemvFn gemv_fn(GgmlType weight, Isa isa) {
  const KernelTraits* k = kernel_traits(weight);
  if (!k) return nullptr;
  for (int i = static_cast<int>(isa); i >= 0; --i)
    if (k->gemv[i]) return k->gemv[i];
  return nullptr;
}

GemmFn gemm_fn(GgmlType weight, Isa isa) {
  const KernelTraits* k = kernel_traits(weight);
  return k ? k->gemm[static_cast<int>(isa)] : nullptr;
}

size_t activation_bytes(GgmlType act, int64_t n) {
  return gguf::type_bytes(act, static_cast<uint64_t>(n), "activations").value();
}

void quantize_activations(GgmlType act, const float* x, int64_t n, void* out, Isa isa) {
  switch (act) {
    case GgmlType::F32: std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float)); return;
    case GgmlType::F16: quant::quantize_f16(x, out, n, nullptr); return;
    case GgmlType::Q8_0: (isa >= Isa::Avx2 ? act_q8_0_avx2 : act_q8_0)(x, n, out); return;
    case GgmlType::Q8_1: act_q8_1(x, n, out); return;
    case GgmlType::BF16: quant::quantize_bf16(x, out, n, nullptr); return;
    case GgmlType::Q8_K: isa >= Isa::Avx2 ? act_q8_K_avx2(x, n, out) : quant::quantize_q8_K(x, out, n, nullptr); return;
    default: HEARTH_CHECK(false && "no activation quantizer for this type");
  }
}

void gemv(DotFn dot, const void* W, size_t row_bytes, int64_t n, const void* a, int64_t row_begin, int64_t row_end,
          float* y) {
  const auto* w = static_cast<const uint8_t*>(W);
  for (int64_t r = row_begin; r < row_end; ++r) y[r] = dot(n, w + static_cast<size_t>(r) * row_bytes, a);
}

}  // namespace hearth::kernels
