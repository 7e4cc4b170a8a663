#include "quant/quant.h"

#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "quant/cpu.h"
#include "quant/fp16.h"

#include <immintrin.h>

namespace hearth::quant {
namespace {

constexpr QuantTraits kRows[] = {
    {GgmlType::F32, quantize_f32, dequantize_f32, false},
    {GgmlType::F16, quantize_f16, dequantize_f16, false},
    {GgmlType::BF16, quantize_bf16, dequantize_bf16, false},
    {GgmlType::Q4_0, quantize_q4_0, dequantize_q4_0, true},
    {GgmlType::Q4_1, quantize_q4_1, dequantize_q4_1, true},
    {GgmlType::Q5_0, quantize_q5_0, dequantize_q5_0, true},
    {GgmlType::Q5_1, quantize_q5_1, dequantize_q5_1, true},
    {GgmlType::Q8_0, quantize_q8_0, dequantize_q8_0, false},
    {GgmlType::Q8_1, quantize_q8_1, dequantize_q8_1, false},
    {GgmlType::Q2_K, quantize_q2_K, dequantize_q2_K, true},
    {GgmlType::Q3_K, quantize_q3_K, dequantize_q3_K, true},
    {GgmlType::Q4_K, quantize_q4_K, dequantize_q4_K, true},
    {GgmlType::Q5_K, quantize_q5_K, dequantize_q5_K, true},
    {GgmlType::Q6_K, quantize_q6_K, dequantize_q6_K, true},
    {GgmlType::Q8_K, quantize_q8_K, dequantize_q8_K, false},
    {GgmlType::IQ4_NL, quantize_iq4_nl, dequantize_iq4_nl, true},
    {GgmlType::IQ4_XS, quantize_iq4_xs, dequantize_iq4_xs, true},
    {GgmlType::TQ1_0, quantize_tq1_0, dequantize_tq1_0, false},
    {GgmlType::TQ2_0, quantize_tq2_0, dequantize_tq2_0, false},
};

constexpr std::array<const QuantTraits*, gguf::kMaxTypeId> make_index() {
  std::array<const QuantTraits*, gguf::kMaxTypeId> idx{};
  for (const QuantTraits& r : kRows) idx[static_cast<uint32_t>(r.type)] = &r;
  return idx;
}
constexpr auto kIndex = make_index();

std::string type_name(GgmlType t) {
  const gguf::TypeInfo* ti = gguf::type_info(static_cast<uint32_t>(t));
  return ti ? std::string(ti->name) : "type " + std::to_string(static_cast<uint32_t>(t));
}

}  // namespace

const QuantTraits* quant_traits(GgmlType t) {
  auto id = static_cast<uint32_t>(t);
  return id < kIndex.size() ? kIndex[id] : nullptr;
}

Result<size_t> quantize_rows(GgmlType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                             const float* imatrix) {
  const QuantTraits* q = quant_traits(t);
  if (!q) return Error{"quantizing to " + type_name(t) + " is not supported"};
  auto row_bytes = gguf::type_bytes(t, static_cast<uint64_t>(n_per_row), "row");
  if (!row_bytes) return row_bytes.error();
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < nrows; ++r)
    q->quantize(src + r * n_per_row, out + static_cast<size_t>(r) * row_bytes.value(), n_per_row, imatrix);
  return static_cast<size_t>(nrows) * row_bytes.value();
}

Status dequantize(GgmlType t, const void* src, float* dst, int64_t n) {
  const QuantTraits* q = quant_traits(t);
  if (!q) return Error{"dequantizing " + type_name(t) + " is not supported"};
  if (n % gguf::type_info(t).block_size != 0)
    return Error{std::to_string(n) + " elements is not a multiple of the " + type_name(t) + " block size"};
  q->dequantize(src, dst, n);
  return {};
}

Status validate_quantized(GgmlType t, const void* data, size_t bytes) {
  const auto* b = static_cast<const uint8_t*>(data);
  auto bad = [&](size_t at) {
    return Error{"quantized " + type_name(t) + " data has a non-finite value at byte " + std::to_string(at) +
                 " (does the input contain NaN or Inf?)"};
  };
  if (t == GgmlType::F32) {
    for (size_t i = 0; i + 4 <= bytes; i += 4) {
      float f;
      std::memcpy(&f, b + i, 4);
      if (!std::isfinite(f)) return bad(i);
    }
    return {};
  }
  // Offsets of the half-precision scales within one block.
  struct Halves { GgmlType t; int n; size_t off[2]; };
  static constexpr Halves kScales[] = {
      {GgmlType::F16, 1, {0, 0}},    {GgmlType::BF16, 1, {0, 0}},  {GgmlType::Q4_0, 1, {0, 0}},
      {GgmlType::Q4_1, 2, {0, 2}},   {GgmlType::Q5_0, 1, {0, 0}},  {GgmlType::Q5_1, 2, {0, 2}},
      {GgmlType::Q8_0, 1, {0, 0}},   {GgmlType::Q8_1, 2, {0, 2}},  {GgmlType::Q2_K, 2, {80, 82}},
      {GgmlType::Q3_K, 1, {108, 0}}, {GgmlType::Q4_K, 2, {0, 2}},  {GgmlType::Q5_K, 2, {0, 2}},
      {GgmlType::Q6_K, 1, {208, 0}},   {GgmlType::IQ4_NL, 1, {0, 0}}, {GgmlType::TQ1_0, 1, {52, 0}},
      {GgmlType::TQ2_0, 1, {64, 0}}, {GgmlType::IQ4_XS, 1, {0, 0}},
  };
  for (const Halves& h : kScales) {
    if (h.t != t) continue;
    const size_t block = gguf::type_info(t).type_size;
    for (size_t i = 0; i + block <= bytes; i += block) {
      for (int k = 0; k < h.n; ++k) {
        uint16_t v;
        std::memcpy(&v, b + i + h.off[k], 2);
        const bool finite = t == GgmlType::BF16 ? (v & 0x7f80u) != 0x7f80u : (v & 0x7c00u) != 0x7c00u;
        if (!finite) return bad(i + h.off[k]);
      }
    }
  }
  return {};
}

void quantize_f32(const float* x, void* y, int64_t n, const float*) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
void quantize_f16(const float* x, void* y, int64_t n, const float*) {
  auto* h = static_cast<uint16_t*>(y);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
}
void quantize_bf16(const float* x, void* y, int64_t n, const float*) {
  auto* h = static_cast<uint16_t*>(y);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(x[i]);
}
void dequantize_f32(const void* x, float* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
namespace {
// F16C's conversion is exact, so it gives fp16_to_fp32's values (NaNs aside: F16C
// quiets signalling NaNs, which validation rejects in any case).
__attribute__((target("avx2,f16c"))) void f16_to_f32_f16c(const uint16_t* h, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) y[i] = fp16_to_fp32(h[i]);
}
const bool kF16c = active_isa() >= Isa::Avx2;
}  // namespace

void dequantize_f16(const void* x, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(x);
  if (kF16c) return f16_to_f32_f16c(h, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(h[i]);
}
void dequantize_bf16(const void* x, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(x);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(h[i]);
}

}  // namespace hearth::quant
