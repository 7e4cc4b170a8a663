#include "model/bpe.h"

#include <cstring>
#include <queue>
#include <span>

#include "model/unicode.h"

namespace hearth::model {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFEu;  // beyond the end of the segment

// The code points of one segment [.., end) of the text; positions at or past `end`
// read as kNone, so look-aheads stop at the segment's edge as llama.cpp's do.
struct Cps {
  const std::vector<CodePoint>& v;
  size_t end;
  uint32_t at(size_t i) const { return i < end ? v[i].cp : kNone; }
  bool letter(size_t i) const { return i < end && is_letter(v[i].cp); }
  bool number(size_t i) const { return i < end && is_number(v[i].cp); }
  bool space(size_t i) const { return i < end && is_space(v[i].cp); }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < end && !is_space(v[i].cp) && !is_letter(v[i].cp) && !is_number(v[i].cp); }
  bool newline(size_t i) const { return at(i) == '\r' || at(i) == '\n'; }
  bool ascii_digit(size_t i) const { return at(i) >= '0' && at(i) <= '9'; }
};

uint32_t lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// Length of a contraction at i ('s 't 'm 'd 're 've 'll), 0 if none.
size_t contraction(const Cps& c, size_t i, bool any_case) {
  if (c.at(i) != '\'') return 0;
  auto ch = [&](size_t k) { return any_case ? lower(c.at(k)) : c.at(k); };
  const uint32_t a = ch(i + 1), b = ch(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S) then \s+ at i (c.space(i) holds): the run, less its last character when a
// non-space follows and the run is longer than one.
size_t whitespace_run(const Cps& c, size_t i) {
  size_t j = i;
  while (c.space(j)) ++j;
  if (j < c.end && j - i > 1) return j - i - 1;
  return j - i;
}

// A stage matches at position i and returns the match's length, 0 for none. The stages
// that mirror one complete regular expression of HF tokenizers match everywhere.
using Stage = size_t (*)(const Cps& c, size_t i);

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t gpt2(const Cps& c, size_t i) {
  if (size_t n = contraction(c, i, false)) return n;
  const size_t s = c.at(i) == ' ' ? 1 : 0;  // the optional leading space
  size_t j = i + s;
  if (c.letter(j)) {
    while (c.letter(j)) ++j;
    return j - i;
  }
  if (c.number(j)) {
    while (c.number(j)) ++j;
    return j - i;
  }
  if (c.other(j)) {
    while (c.other(j)) ++j;
    return j - i;
  }
  if (c.space(i)) return whitespace_run(c, i);
  return 1;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
size_t llama3_with(const Cps& c, size_t i, size_t max_digits) {
  if (size_t n = contraction(c, i, true)) return n;
  {
    size_t j = i;
    if (!c.letter(j) && !c.newline(j) && !c.number(j) && c.letter(j + 1)) ++j;
    if (c.letter(j)) {
      while (c.letter(j)) ++j;
      return j - i;
    }
  }
  if (c.number(i)) {
    size_t j = i;
    while (c.number(j) && j - i < max_digits) ++j;
    return j - i;
  }
  {
    size_t j = i + (c.at(i) == ' ' ? 1 : 0);
    if (c.other(j)) {
      while (c.other(j)) ++j;
      while (c.newline(j)) ++j;
      return j - i;
    }
  }
  if (c.space(i)) {
    // \s*[\r\n]+ : through the last newline of the whitespace run
    size_t j = i, last_nl = SIZE_MAX;
    while (c.space(j)) {
      if (c.newline(j)) last_nl = j;
      ++j;
    }
    if (last_nl != SIZE_MAX) return last_nl + 1 - i;
    return whitespace_run(c, i);
  }
  return 1;
}
size_t llama3(const Cps& c, size_t i) { return llama3_with(c, i, 3); }
size_t qwen2(const Cps& c, size_t i) { return llama3_with(c, i, 1); }

// The length of the run of code points from i that satisfy `in`.
template <typename F>
size_t run(const Cps& c, size_t i, F in) {
  size_t j = i;
  while (j < c.end && in(c.v[j].cp)) ++j;
  return j - i;
}
// \s?X+
template <typename F>
size_t space_then_run(const Cps& c, size_t i, F in) {
  if (c.space(i) && !in(c.at(i))) {
    const size_t n = run(c, i + 1, in);
    return n ? n + 1 : 0;
  }
  return run(c, i, in);
}

struct Range {
  uint32_t first, last;
};
template <size_t N>
bool in_ranges(const Range (&t)[N], uint32_t cp) {
  for (const Range& r : t)
    if (cp >= r.first && cp <= r.last) return true;
  return false;
}

// llama.cpp runs the regular expressions without \p{..} on code points with every
// non-ASCII white space replaced by U+000B, so such a character never matches a
// literal class; `literal` is that view.
bool literal(uint32_t cp, bool (*in)(uint32_t)) { return !(cp > 0x7F && is_space(cp)) && in(cp); }

// DeepSeek LLM's cased letters: A-Za-zµÀ-ÖØ-öø-ƺ ... (the Unicode letters with case of
// its tokenizer's Unicode version).
constexpr Range kDeepseekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。]
constexpr Range kDeepseekPunct[] = {{0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F},
                                    {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
// [一-龥ࠀ-一가-퟿]
constexpr Range kDeepseekCjk[] = {{0x4E00, 0x9FA5}, {0x800, 0x4E00}, {0xAC00, 0xD7FF}};

bool ds_letter(uint32_t cp) { return in_ranges(kDeepseekLetters, cp); }
bool ds_punct(uint32_t cp) { return in_ranges(kDeepseekPunct, cp); }
bool ds_cjk(uint32_t cp) { return in_ranges(kDeepseekCjk, cp); }
// The ASCII symbols falcon's and the default pre-tokenizer group with punctuation.
bool falcon_punct(uint32_t cp) { return is_punct(cp) || (cp < 0x80 && std::strchr("$+<=>^~|`", static_cast<int>(cp))); }
bool default_punct(uint32_t cp) { return cp != '`' && falcon_punct(cp); }

// [\r\n]
size_t newline(const Cps& c, size_t i) { return c.newline(i) ? 1 : 0; }
// \s?[cased letters]+, \s?[punctuation]+, \s+$, [CJK]+ (deepseek-llm)
size_t ds_letters(const Cps& c, size_t i) { return space_then_run(c, i, [](uint32_t cp) { return literal(cp, ds_letter); }); }
size_t ds_puncts(const Cps& c, size_t i) { return space_then_run(c, i, [](uint32_t cp) { return literal(cp, ds_punct); }); }
size_t trailing_space(const Cps& c, size_t i) {
  const size_t n = run(c, i, is_space);
  return i + n == c.end ? n : 0;
}
size_t cjk(const Cps& c, size_t i) { return run(c, i, [](uint32_t cp) { return literal(cp, ds_cjk); }); }
// \p{N}+, \p{N}, \s?\p{L}+, \s?\p{P}+
size_t numbers(const Cps& c, size_t i) { return run(c, i, is_number); }
size_t one_number(const Cps& c, size_t i) { return c.number(i) ? 1 : 0; }
size_t space_letters(const Cps& c, size_t i) { return space_then_run(c, i, is_letter); }
size_t space_puncts(const Cps& c, size_t i) { return space_then_run(c, i, is_punct); }
// [\p{P}\$\+<=>\^~\|`]+ (falcon) and the same without ` (default)
size_t falcon_puncts(const Cps& c, size_t i) { return run(c, i, falcon_punct); }
size_t default_puncts(const Cps& c, size_t i) { return run(c, i, default_punct); }
// [0-9][0-9][0-9]
size_t three_digits(const Cps& c, size_t i) { return c.ascii_digit(i) && c.ascii_digit(i + 1) && c.ascii_digit(i + 2) ? 3 : 0; }

// The regular expressions of each pre-tokenizer, applied in turn as llama.cpp does:
// each splits every piece the previous ones made into its matches and the text
// between them.
std::span<const Stage> stages_of(PreTokenizer p) {
  static constexpr Stage kGpt2[] = {gpt2};
  static constexpr Stage kStarcoder[] = {one_number, gpt2};
  static constexpr Stage kLlama3[] = {llama3};
  static constexpr Stage kQwen2[] = {qwen2};
  static constexpr Stage kDeepseekLlm[] = {newline, ds_letters, ds_puncts, trailing_space, cjk, numbers};
  static constexpr Stage kDeepseekCoder[] = {newline, space_letters, space_puncts, cjk, one_number};
  static constexpr Stage kFalcon[] = {falcon_puncts, gpt2, three_digits};
  static constexpr Stage kDefault[] = {default_puncts, gpt2, numbers, three_digits};
  auto list = [](const auto& a) { return std::span<const Stage>(a); };
  switch (p) {
    case PreTokenizer::Gpt2: return list(kGpt2);
    case PreTokenizer::Starcoder: return list(kStarcoder);
    case PreTokenizer::Llama3: return list(kLlama3);
    case PreTokenizer::Qwen2: return list(kQwen2);
    case PreTokenizer::DeepseekLlm: return list(kDeepseekLlm);
    case PreTokenizer::DeepseekCoder: return list(kDeepseekCoder);
    case PreTokenizer::Falcon: return list(kFalcon);
    case PreTokenizer::Default: return list(kDefault);
  }
  return list(kGpt2);
}

}  // namespace

bool pre_tokenizer_for(std::string_view pre, PreTokenizer& out) {
  if (pre == "gpt-2" || pre == "mpt" || pre == "olmo" || pre == "jais") out = PreTokenizer::Gpt2;
  else if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell" ||
           pre == "exaone" || pre == "minerva-7b")
    out = PreTokenizer::Starcoder;
  else if (pre == "llama-bpe" || pre == "llama3" || pre == "smaug-bpe" || pre == "falcon3" || pre == "pixtral" ||
           pre == "dbrx")
    out = PreTokenizer::Llama3;
  else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2" || pre == "hunyuan")
    out = PreTokenizer::Qwen2;
  else if (pre == "deepseek-llm") out = PreTokenizer::DeepseekLlm;
  else if (pre == "deepseek-coder") out = PreTokenizer::DeepseekCoder;
  else if (pre == "falcon") out = PreTokenizer::Falcon;
  else if (pre == "default" || pre == "gpt-neox" || pre.empty()) out = PreTokenizer::Default;
  else
    return false;
  return true;
}

std::vector<std::string_view> pretokenize(PreTokenizer p, std::string_view text) {
  const std::vector<CodePoint> cps = decode_utf8(text);
  struct Piece {
    size_t begin, end;  // code point indices
  };
  std::vector<Piece> pieces, next;
  if (!cps.empty()) pieces.push_back({0, cps.size()});
  for (Stage stage : stages_of(p)) {
    next.clear();
    for (const Piece& pc : pieces) {
      const Cps c{cps, pc.end};
      size_t gap = pc.begin;
      for (size_t i = pc.begin; i < pc.end;) {
        const size_t n = stage(c, i);
        if (n == 0) {
          ++i;
          continue;
        }
        if (i > gap) next.push_back({gap, i});
        next.push_back({i, i + n});
        i += n;
        gap = i;
      }
      if (gap < pc.end) next.push_back({gap, pc.end});
    }
    pieces.swap(next);
  }
  std::vector<std::string_view> out;
  out.reserve(pieces.size());
  for (const Piece& pc : pieces) {
    const uint32_t b0 = cps[pc.begin].offset;
    const uint32_t b1 = pc.end < cps.size() ? cps[pc.end].offset : static_cast<uint32_t>(text.size());
    out.push_back(text.substr(b0, b1 - b0));
  }
  return out;
}

void BpeMerges::add(std::string_view rule, int rank) {
  const size_t sp = rule.find(' ', 1);
  if (sp == std::string_view::npos) return;
  std::string key(rule.substr(0, sp));
  key += '\n';
  key += rule.substr(sp + 1);
  ranks_.emplace(std::move(key), rank);
}

int BpeMerges::rank(std::string_view left, std::string_view right) const {
  std::string key(left);
  key += '\n';
  key += right;
  auto it = ranks_.find(key);
  return it == ranks_.end() ? -1 : it->second;
}

std::vector<std::string> bpe_merge(std::string_view word, const BpeMerges& merges) {
  struct Sym {
    size_t start, n;
    int prev, next;
  };
  std::vector<Sym> sym;
  for (const CodePoint& cp : decode_utf8(word)) {
    const int idx = static_cast<int>(sym.size());
    sym.push_back({cp.offset, cp.length, idx - 1, idx + 1});
  }
  if (sym.empty()) return {};
  sym.back().next = -1;
  struct Bigram {
    int left, right, rank;
    size_t size;
  };
  auto worse = [](const Bigram& a, const Bigram& b) { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> q(worse);
  auto text = [&](int i) { return word.substr(sym[i].start, sym[i].n); };
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const int rk = merges.rank(text(l), text(r));
    if (rk >= 0) q.push({l, r, rk, sym[l].n + sym[r].n});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!q.empty()) {
    const Bigram b = q.top();
    q.pop();
    Sym& L = sym[b.left];
    Sym& R = sym[b.right];
    if (L.n == 0 || R.n == 0 || L.n + R.n != b.size) continue;  // stale
    L.n += R.n;
    R.n = 0;
    L.next = R.next;
    if (R.next >= 0) sym[R.next].prev = b.left;
    try_add(L.prev, b.left);
    try_add(b.left, L.next);
  }
  std::vector<std::string> out;
  for (int i = 0; i != -1; i = sym[i].next) out.emplace_back(text(i));
  return out;
}

}  // namespace hearth::model
