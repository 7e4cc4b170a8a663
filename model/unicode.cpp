#include "model/unicode.h"

#include <algorithm>
#include <array>

namespace hearth::model {
namespace {

struct CodeRange {
  uint32_t first, last;
};
struct CodeMap {
  uint32_t first, last, image;
};
#include "model/unicode_tables.inc"

template <size_t N>
bool in(const CodeRange (&t)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(t), std::end(t), cp, [](uint32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(t) && cp <= (it - 1)->last;
}

template <size_t N>
uint32_t map(const CodeMap (&t)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(t), std::end(t), cp, [](uint32_t v, const CodeMap& r) { return v < r.first; });
  return it != std::begin(t) && cp <= (it - 1)->last ? (it - 1)->image : cp;
}

// byte -> code point of the GPT-2 mapping, and back.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int, 324> to_byte{};
  constexpr ByteMap() {
    for (int& b : to_byte) b = -1;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      to_byte[to_cp[b]] = b;
    }
  }
};
constexpr ByteMap kByteMap;

}  // namespace

std::vector<CodePoint> decode_utf8(std::string_view s) {
  std::vector<CodePoint> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back({0xFFFFFFFFu, static_cast<uint32_t>(i), 1});
      ++i;
      continue;
    }
    out.push_back({cp, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += len;
  }
  return out;
}

bool is_letter(uint32_t cp) { return cp != 0xFFFFFFFFu && in(kLetter, cp); }
bool is_number(uint32_t cp) { return cp != 0xFFFFFFFFu && in(kNumber, cp); }
bool is_punct(uint32_t cp) { return cp != 0xFFFFFFFFu && in(kPunct, cp); }
bool is_space(uint32_t cp) { return cp != 0xFFFFFFFFu && in(kSpace, cp); }
bool is_symbol(uint32_t cp) { return cp != 0xFFFFFFFFu && in(kSymbol, cp); }
bool is_control(uint32_t cp) { return cp != 0xFFFFFFFFu && in(kControl, cp); }
uint32_t to_lower(uint32_t cp) { return map(kLower, cp); }
uint32_t nfd_first(uint32_t cp) { return map(kNfdFirst, cp); }

std::string encode_utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += encode_utf8(kByteMap.to_cp[static_cast<unsigned char>(c)]);
  return out;
}

std::string unicode_to_bytes(std::string_view text) {
  std::string out;
  for (const CodePoint& c : decode_utf8(text)) {
    if (c.cp < kByteMap.to_byte.size() && kByteMap.to_byte[c.cp] >= 0) out += static_cast<char>(kByteMap.to_byte[c.cp]);
    else out.append(text.substr(c.offset, c.length));
  }
  return out;
}

}  // namespace hearth::model
