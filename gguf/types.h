// The ggml tensor type table: one row per type id that can appear in a GGUF file.
//
// Type facts live here and nowhere else (STYLE habit 2). Compute-side facts (dot
// products, activation types) are added by kernels/ in its own table indexed by the
// same id.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "gguf/result.h"

namespace hearth::gguf {

// Numbering is ggml's (ggml.h enum ggml_type). Gaps are ids ggml retired
// (Q4_2, Q4_3, the Q4_0_x_y and IQ4_NL_x_y repacks); a file using one is rejected.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeInfo {
  GgmlType type;
  std::string_view name;    // ggml_type_name(): "f32", "q4_K", ...
  uint32_t block_size;      // elements per block
  uint32_t type_size;       // bytes per block
  bool quantized;
};

inline constexpr uint32_t kMaxTypeId = 40;  // one past the largest id we know

// The row for a type id, or nullptr when the id is unknown or retired.
const TypeInfo* type_info(uint32_t id);
inline const TypeInfo& type_info(GgmlType t) { return *type_info(static_cast<uint32_t>(t)); }

// Case-insensitive lookup by ggml name ("q4_k" finds Q4_K).
std::optional<GgmlType> type_from_name(std::string_view name);

// Bytes of n elements of type t; n must be a multiple of the block size and the
// result must not overflow. The error names `what` (a tensor name, usually).
Result<uint64_t> type_bytes(GgmlType t, uint64_t n, std::string_view what);

}  // namespace hearth::gguf
