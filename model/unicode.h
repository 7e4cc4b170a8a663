// The little Unicode the tokenizers need: UTF-8 decoding that never fails (invalid
// bytes become lone units), general-category classes from generated tables, and the
// byte-level encoding of GPT-2 style BPE vocabularies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::model {

struct CodePoint {
  uint32_t cp;        // 0xFFFFFFFF for an invalid byte
  uint32_t offset;    // byte offset in the text
  uint32_t length;    // bytes
};

std::vector<CodePoint> decode_utf8(std::string_view s);
bool is_letter(uint32_t cp);
bool is_number(uint32_t cp);
bool is_punct(uint32_t cp);
bool is_space(uint32_t cp);    // White_Space
bool is_symbol(uint32_t cp);   // S*
bool is_control(uint32_t cp);  // Cc, Cf, Co, Cs
// The simple lowercase mapping (the code point itself when it has none or several).
uint32_t to_lower(uint32_t cp);
// The first code point of the canonical decomposition (NFD), as llama.cpp's WordPiece
// normalizes: accents dropped, a Hangul syllable reduced to its leading jamo.
uint32_t nfd_first(uint32_t cp);
std::string encode_utf8(uint32_t cp);

// GPT-2's reversible byte <-> printable code point mapping.
std::string bytes_to_unicode(std::string_view bytes);
// The inverse; characters outside the mapping are kept as they are.
std::string unicode_to_bytes(std::string_view text);

}  // namespace hearth::model
