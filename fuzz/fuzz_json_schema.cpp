// libFuzzer target: the bytes before the first NUL are a JSON schema, the bytes after it
// pick tokens. Any schema must compile or give an Error; a compiled one is walked with a
// small vocabulary (every byte, and some longer pieces): at every step the token mask and
// the per-token check agree, some token (or the end) is always possible, and the walk
// stays within the matcher's limits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "model/grammar_matcher.h"
#include "model/json_schema.h"

using namespace hearth::model;

namespace {

const std::shared_ptr<const TokenTrie>& trie() {
  static const std::shared_ptr<const TokenTrie> t = [] {
    std::vector<std::string> texts = {""};  // token 0: the end of generation
    for (int b = 0; b < 256; ++b) texts.emplace_back(1, static_cast<char>(b));
    for (const char* s : {"{\"", "\":", "\",", "\"}", "true", "false", "null", "  ", "\n  ", "12", "-0.5", "é", "\\u00e9", "[]", "{}"})
      texts.emplace_back(s);
    return std::make_shared<const TokenTrie>(texts);
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const size_t cut = std::find(text, text + size, '\0') - text;
  auto g = compile_json_schema(std::string_view(text, cut));
  if (!g) {
    if (g.message().empty()) __builtin_trap();  // every error says what is wrong
    return 0;
  }
  GrammarMatcher m(g.value(), trie(), {0});
  const size_t V = trie()->vocab_size();
  std::vector<float> logits(V);
  for (size_t i = cut + 1; i < size; ++i) {
    std::fill(logits.begin(), logits.end(), 0.f);
    const size_t n = m.mask(logits.data());
    if (!m.error().empty()) return 0;  // too ambiguous: refused, within bounds
    std::vector<TokenId> allowed;
    for (size_t t = 0; t < V; ++t) {
      const bool in = !std::isinf(logits[t]);
      if (in != m.allows(static_cast<TokenId>(t))) __builtin_trap();
      if (in) allowed.push_back(static_cast<TokenId>(t));
    }
    if (allowed.size() != n || allowed.empty()) __builtin_trap();
    const TokenId pick = allowed[data[i] % allowed.size()];
    if (pick == 0) return 0;  // the document ended
    m.accept(pick);
  }
  return 0;
}
