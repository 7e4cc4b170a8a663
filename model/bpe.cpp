#include "model/bpe.h"

#include <queue>

#include "model/unicode.h"

namespace hearth::model {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFEu;  // beyond the end

struct Cps {
  const std::vector<CodePoint>& v;
  uint32_t at(size_t i) const { return i < v.size() ? v[i].cp : kNone; }
  bool letter(size_t i) const { return i < v.size() && is_letter(v[i].cp); }
  bool number(size_t i) const { return i < v.size() && is_number(v[i].cp); }
  bool space(size_t i) const { return i < v.size() && is_space(v[i].cp); }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < v.size() && !is_space(v[i].cp) && !is_letter(v[i].cp) && !is_number(v[i].cp); }
  bool newline(size_t i) const { return at(i) == '\r' || at(i) == '\n'; }
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
  if (j < c.v.size() && j - i > 1) return j - i - 1;
  return j - i;
}

size_t next_gpt2(const Cps& c, size_t i) {
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

size_t next_llama3(const Cps& c, size_t i, size_t max_digits) {
  if (size_t n = contraction(c, i, true)) return n;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    size_t j = i;
    if (!c.letter(j) && !c.newline(j) && !c.number(j) && c.letter(j + 1)) ++j;
    if (c.letter(j)) {
      while (c.letter(j)) ++j;
      return j - i;
    }
  }
  // \p{N}{1,max}
  if (c.number(i)) {
    size_t j = i;
    while (c.number(j) && j - i < max_digits) ++j;
    return j - i;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
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

void split_range(PreTokenizer p, std::string_view text, std::vector<std::string_view>& out) {
  const std::vector<CodePoint> cps = decode_utf8(text);
  const Cps c{cps};
  for (size_t i = 0; i < cps.size();) {
    const size_t n = p == PreTokenizer::Llama3 ? next_llama3(c, i, 3)
                   : p == PreTokenizer::Qwen2  ? next_llama3(c, i, 1)
                                               : next_gpt2(c, i);
    const size_t end = i + n;
    const uint32_t b0 = cps[i].offset, b1 = end < cps.size() ? cps[end].offset : static_cast<uint32_t>(text.size());
    out.push_back(text.substr(b0, b1 - b0));
    i = end;
  }
}

}  // namespace

bool pre_tokenizer_for(std::string_view pre, PreTokenizer& out) {
  if (pre == "gpt-2" || pre == "mpt" || pre == "olmo" || pre == "jais") out = PreTokenizer::Gpt2;
  else if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell" ||
           pre == "exaone" || pre == "minerva-7b")
    out = PreTokenizer::Starcoder;
  else if (pre == "llama-bpe" || pre == "llama3" || pre == "smaug-bpe" || pre == "falcon3" || pre == "pixtral")
    out = PreTokenizer::Llama3;
  else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2" || pre == "hunyuan")
    out = PreTokenizer::Qwen2;
  else
    return false;
  return true;
}

std::vector<std::string_view> pretokenize(PreTokenizer p, std::string_view text) {
  std::vector<std::string_view> out;
  if (p != PreTokenizer::Starcoder) {
    split_range(p, text, out);
    return out;
  }
  // \p{N}: every digit on its own, the text between digits split by the GPT-2 rules.
  const std::vector<CodePoint> cps = decode_utf8(text);
  size_t start = 0;
  for (const CodePoint& cp : cps) {
    if (!is_number(cp.cp)) continue;
    if (cp.offset > start) split_range(PreTokenizer::Gpt2, text.substr(start, cp.offset - start), out);
    out.push_back(text.substr(cp.offset, cp.length));
    start = cp.offset + cp.length;
  }
  if (start < text.size()) split_range(PreTokenizer::Gpt2, text.substr(start), out);
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
