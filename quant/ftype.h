// llama.cpp file types ("Q4_K_M" ...): the mix a model quantizer aims for.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "gguf/types.h"

namespace hearth::quant {

// Numbering is llama.cpp's (enum llama_ftype), stored as general.file_type.
enum class FileType : uint32_t {
  ALL_F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9,
  Q2_K = 10, Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15,
  Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18, Q2_K_S = 21, IQ4_NL = 25, IQ4_XS = 30, BF16 = 32, TQ1_0 = 36, TQ2_0 = 37,
};

struct FileTypeInfo {
  std::string_view name;     // as llama-quantize spells it
  FileType ftype;
  gguf::GgmlType base;       // the type most tensors get
  bool needs_imatrix;        // llama-quantize refuses to make it without one
  std::string_view summary;  // what the mix does
};

std::span<const FileTypeInfo> file_types();
// By name (case-insensitive; the aliases Q3_K, Q4_K, Q5_K mean the _M mixes) or number.
std::optional<FileTypeInfo> parse_file_type(std::string_view s);
const FileTypeInfo& file_type_info(FileType t);

}  // namespace hearth::quant
