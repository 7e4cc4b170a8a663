#include "quant/ftype.h"

#include <cctype>
#include <charconv>
#include <string>

namespace hearth::quant {
namespace {

using gguf::GgmlType;

constexpr FileTypeInfo kFileTypes[] = {
    {"Q4_0", FileType::Q4_0, GgmlType::Q4_0, false, "q4_0; output q6_K"},
    {"Q4_1", FileType::Q4_1, GgmlType::Q4_1, false, "q4_1; output q6_K"},
    {"Q5_0", FileType::Q5_0, GgmlType::Q5_0, false, "q5_0; output q6_K"},
    {"Q5_1", FileType::Q5_1, GgmlType::Q5_1, false, "q5_1; output q6_K"},
    {"Q8_0", FileType::Q8_0, GgmlType::Q8_0, false, "q8_0 everywhere"},
    {"Q2_K", FileType::Q2_K, GgmlType::Q2_K, false, "q2_K; q3_K ffn_down and attn_output, q3_K/q4_K attn_v"},
    {"Q2_K_S", FileType::Q2_K_S, GgmlType::Q2_K, true, "q2_K; q4_K in the first eighth of ffn_down (needs --imatrix)"},
    {"Q3_K_S", FileType::Q3_K_S, GgmlType::Q3_K, false, "q3_K everywhere but output"},
    {"Q3_K_M", FileType::Q3_K_M, GgmlType::Q3_K, false, "q3_K; q4_K/q5_K attn_v, attn_output, ffn_down"},
    {"Q3_K_L", FileType::Q3_K_L, GgmlType::Q3_K, false, "q3_K; q5_K attn_v, attn_output, ffn_down"},
    {"Q4_K_S", FileType::Q4_K_S, GgmlType::Q4_K, false, "q4_K; q5_K in the first attn_v and ffn_down layers"},
    {"Q4_K_M", FileType::Q4_K_M, GgmlType::Q4_K, false, "q4_K; q6_K in half of attn_v and ffn_down"},
    {"Q5_K_S", FileType::Q5_K_S, GgmlType::Q5_K, false, "q5_K everywhere but output"},
    {"Q5_K_M", FileType::Q5_K_M, GgmlType::Q5_K, false, "q5_K; q6_K in half of attn_v and ffn_down"},
    {"Q6_K", FileType::Q6_K, GgmlType::Q6_K, false, "q6_K everywhere"},
    {"IQ4_NL", FileType::IQ4_NL, GgmlType::IQ4_NL, false, "iq4_nl (non-linear 4-bit); q5_K attn_v with GQA >= 4"},
    {"IQ4_XS", FileType::IQ4_XS, GgmlType::IQ4_XS, false, "iq4_xs (4.25 bpw, iq4_nl's grid); q5_K attn_v with GQA >= 4"},
    {"TQ1_0", FileType::TQ1_0, GgmlType::TQ1_0, false, "ternary, 1.69 bpw; q4_K token_embd, q6_K output"},
    {"TQ2_0", FileType::TQ2_0, GgmlType::TQ2_0, false, "ternary, 2.06 bpw; q4_K token_embd, q6_K output"},
    {"F16", FileType::F16, GgmlType::F16, false, "f16 matrices, f32 norms"},
    {"BF16", FileType::BF16, GgmlType::BF16, false, "bf16 matrices, f32 norms"},
    {"F32", FileType::ALL_F32, GgmlType::F32, false, "f32 everywhere"},
};

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

}  // namespace

std::span<const FileTypeInfo> file_types() { return kFileTypes; }

std::optional<FileTypeInfo> parse_file_type(std::string_view s) {
  std::string u = upper(s);
  if (u == "Q3_K") u = "Q3_K_M";
  if (u == "Q4_K") u = "Q4_K_M";
  if (u == "Q5_K") u = "Q5_K_M";
  for (const FileTypeInfo& f : kFileTypes)
    if (f.name == u) return f;
  uint32_t n = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), n);
  if (r.ec == std::errc() && r.ptr == s.data() + s.size())
    for (const FileTypeInfo& f : kFileTypes)
      if (static_cast<uint32_t>(f.ftype) == n) return f;
  return std::nullopt;
}

const FileTypeInfo& file_type_info(FileType t) {
  for (const FileTypeInfo& f : kFileTypes)
    if (f.ftype == t) return f;
  return kFileTypes[0];  // unreachable for a valid FileType
}

}  // namespace hearth::quant
