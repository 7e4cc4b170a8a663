#include "gguf/types.h"

#include <array>
#include <cctype>
#include <string>

namespace hearth::gguf {
namespace {

constexpr TypeInfo kRows[] = {
    {GgmlType::F32, "f32", 1, 4, false},
    {GgmlType::F16, "f16", 1, 2, false},
    {GgmlType::Q4_0, "q4_0", 32, 18, true},
    {GgmlType::Q4_1, "q4_1", 32, 20, true},
    {GgmlType::Q5_0, "q5_0", 32, 22, true},
    {GgmlType::Q5_1, "q5_1", 32, 24, true},
    {GgmlType::Q8_0, "q8_0", 32, 34, true},
    {GgmlType::Q8_1, "q8_1", 32, 36, true},
    {GgmlType::Q2_K, "q2_K", 256, 84, true},
    {GgmlType::Q3_K, "q3_K", 256, 110, true},
    {GgmlType::Q4_K, "q4_K", 256, 144, true},
    {GgmlType::Q5_K, "q5_K", 256, 176, true},
    {GgmlType::Q6_K, "q6_K", 256, 210, true},
    {GgmlType::Q8_K, "q8_K", 256, 292, true},
    {GgmlType::IQ2_XXS, "iq2_xxs", 256, 66, true},
    {GgmlType::IQ2_XS, "iq2_xs", 256, 74, true},
    {GgmlType::IQ3_XXS, "iq3_xxs", 256, 98, true},
    {GgmlType::IQ1_S, "iq1_s", 256, 50, true},
    {GgmlType::IQ4_NL, "iq4_nl", 32, 18, true},
    {GgmlType::IQ3_S, "iq3_s", 256, 110, true},
    {GgmlType::IQ2_S, "iq2_s", 256, 82, true},
    {GgmlType::IQ4_XS, "iq4_xs", 256, 136, true},
    {GgmlType::I8, "i8", 1, 1, false},
    {GgmlType::I16, "i16", 1, 2, false},
    {GgmlType::I32, "i32", 1, 4, false},
    {GgmlType::I64, "i64", 1, 8, false},
    {GgmlType::F64, "f64", 1, 8, false},
    {GgmlType::IQ1_M, "iq1_m", 256, 56, true},
    {GgmlType::BF16, "bf16", 1, 2, false},
    {GgmlType::TQ1_0, "tq1_0", 256, 54, true},
    {GgmlType::TQ2_0, "tq2_0", 256, 66, true},
    {GgmlType::MXFP4, "mxfp4", 32, 17, true},
};

// Dense index by id, built at compile time (no lazily initialised global state).
constexpr std::array<const TypeInfo*, kMaxTypeId> make_index() {
  std::array<const TypeInfo*, kMaxTypeId> idx{};
  for (const TypeInfo& r : kRows) idx[static_cast<uint32_t>(r.type)] = &r;
  return idx;
}
constexpr auto kIndex = make_index();

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

}  // namespace

const TypeInfo* type_info(uint32_t id) { return id < kMaxTypeId ? kIndex[id] : nullptr; }

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const TypeInfo& r : kRows)
    if (iequals(r.name, name)) return r.type;
  return std::nullopt;
}

Result<uint64_t> type_bytes(GgmlType t, uint64_t n, std::string_view what) {
  const TypeInfo& ti = type_info(t);
  if (n % ti.block_size != 0) {
    return Error{std::string(what) + ": " + std::to_string(n) + " elements is not a multiple of the " +
                 std::string(ti.name) + " block size " + std::to_string(ti.block_size)};
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n / ti.block_size, uint64_t{ti.type_size}, &bytes)) {
    return Error{std::string(what) + ": byte size of " + std::to_string(n) + " " +
                 std::string(ti.name) + " elements overflows 64 bits"};
  }
  return bytes;
}

}  // namespace hearth::gguf
