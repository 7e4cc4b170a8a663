#include "model/vocab.h"

#include "model/unicode.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <queue>

namespace hearth::model {
namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

size_t utf8_len(uint8_t c) {
  static constexpr size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

std::string escape_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    if (c == ' ') out += kSpace;
    else out += c;
  }
  return out;
}

std::string unescape_spaces(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Result<Vocab> Vocab::from_gguf(const gguf::GgufFile& f) {
  Vocab v;
  auto model = f.metadata.get_string("tokenizer.ggml.model");
  if (!model) return Error{f.name() + ": " + model.message()};
  v.model_ = model.value();
  if (v.model_ == "gpt2") {
    v.bpe_ = true;
    auto pre = f.metadata.get_string("tokenizer.ggml.pre");
    const std::string pre_name = pre.ok() ? pre.value() : "default";
    if (!pre_tokenizer_for(pre_name, v.pre_))
      v.unsupported_ = f.name() + ": BPE pre-tokenizer '" + pre_name + "' is not supported yet";
    v.ignore_merges_ = v.pre_ == PreTokenizer::Llama3;
    auto merges = f.metadata.get_array("tokenizer.ggml.merges", gguf::ValueType::STRING);
    if (!merges) return Error{f.name() + ": " + merges.message()};
    for (size_t i = 0; i < merges.value()->strings.size(); ++i) v.merges_.add(merges.value()->strings[i], static_cast<int>(i));
  } else if (v.model_ == "bert") {
    v.wpm_ = true;
  } else if (v.model_ != "llama") {
    v.unsupported_ = f.name() + ": tokenizer '" + v.model_ + "' is not supported yet (supported: llama, gpt2, bert)";
  }
  auto toks = f.metadata.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  if (!toks) return Error{f.name() + ": " + toks.message()};
  v.text_ = toks.value()->strings;
  const size_t n = v.text_.size();
  if (n == 0 || n > (size_t{1} << 31)) return Error{f.name() + ": tokenizer.ggml.tokens has " + std::to_string(n) + " tokens"};
  v.score_.assign(n, 0.f);
  if (f.metadata.contains("tokenizer.ggml.scores")) {
    auto sc = f.metadata.get_array("tokenizer.ggml.scores", gguf::ValueType::F32);
    if (!sc) return Error{f.name() + ": " + sc.message()};
    if (sc.value()->count != n) return Error{f.name() + ": tokenizer.ggml.scores has " + std::to_string(sc.value()->count) + " entries for " + std::to_string(n) + " tokens"};
    for (size_t i = 0; i < n; ++i) v.score_[i] = sc.value()->at<float>(i);
  }
  v.type_.assign(n, TokenType::Normal);
  if (f.metadata.contains("tokenizer.ggml.token_type")) {
    auto tt = f.metadata.get_array("tokenizer.ggml.token_type", gguf::ValueType::I32);
    if (!tt) return Error{f.name() + ": " + tt.message()};
    if (tt.value()->count != n) return Error{f.name() + ": tokenizer.ggml.token_type has " + std::to_string(tt.value()->count) + " entries for " + std::to_string(n) + " tokens"};
    for (size_t i = 0; i < n; ++i) {
      const int32_t t = tt.value()->at<int32_t>(i);
      v.type_[i] = t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::Undefined;
    }
  }
  for (size_t i = 0; i < n; ++i) v.id_of_.emplace(v.text_[i], static_cast<TokenId>(i));
  auto id_key = [&](const char* key, TokenId fallback) -> Result<TokenId> {
    if (!f.metadata.contains(key)) return fallback;
    auto id = f.metadata.get_uint(key);
    if (!id) return Error{f.name() + ": " + id.message()};
    if (id.value() == 0xffffffffu) return TokenId{-1};
    if (id.value() >= n) return Error{f.name() + ": key '" + std::string(key) + "' is " + std::to_string(id.value()) + ", outside the vocabulary of " + std::to_string(n)};
    return static_cast<TokenId>(id.value());
  };
  // Defaults as llama.cpp's: SentencePiece 1/2/0, BPE 11/11/none, WordPiece
  // [CLS] 101 (begins a sequence), [SEP] 102 (ends one), [UNK] 100.
  auto bos = id_key("tokenizer.ggml.bos_token_id", v.bpe_ ? 11 : 1), eos = id_key("tokenizer.ggml.eos_token_id", v.bpe_ ? 11 : 2),
       unk = id_key("tokenizer.ggml.unknown_token_id", v.bpe_ ? -1 : 0), eot = id_key("tokenizer.ggml.eot_token_id", -1);
  if (v.wpm_) {
    bos = id_key("tokenizer.ggml.cls_token_id", 101);
    eos = id_key("tokenizer.ggml.eos_token_id", -1);
    unk = id_key("tokenizer.ggml.unknown_token_id", 100);
  }
  auto sep = id_key("tokenizer.ggml.seperator_token_id", v.wpm_ ? 102 : -1);
  for (auto* r : {&bos, &eos, &unk, &eot, &sep})
    if (!*r) return r->error();
  v.bos_ = bos.value();
  v.eos_ = eos.value();
  v.unk_ = unk.value();
  v.eot_ = eot.value();
  v.sep_ = sep.value();
  for (const std::string& t : v.text_) v.max_token_len_ = std::max(v.max_token_len_, t.size());
  auto flag = [&](const char* key, bool fallback) {
    auto b = f.metadata.get<bool>(key);
    return b.ok() ? b.value() : fallback;
  };
  v.add_bos_ = flag("tokenizer.ggml.add_bos_token", !v.bpe_ || v.pre_ == PreTokenizer::Llama3);
  v.add_eos_ = flag("tokenizer.ggml.add_eos_token", false);
  v.add_space_prefix_ = !v.bpe_ && flag("tokenizer.ggml.add_space_prefix", true);

  for (size_t i = 0; i < n; ++i) {
    const TokenType t = v.type_[i];
    if (t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown)
      v.specials_.push_back(static_cast<TokenId>(i));
  }
  std::stable_sort(v.specials_.begin(), v.specials_.end(),
                   [&](TokenId a, TokenId b) { return v.text_[a].size() > v.text_[b].size(); });
  // llama.cpp strips spaces to the right of phi-3's special tokens (but not of <unk>,
  // <s>, <|endoftext|>).
  v.rstrip_.assign(n, false);
  auto general_name = f.metadata.get_string("general.name");
  const std::string name = lower(general_name.ok() ? general_name.value() : std::string());
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (TokenId id : v.specials_) v.rstrip_[id] = true;
    for (const char* t : {"</s>"})
      if (TokenId id = v.find(t); id >= 0) v.rstrip_[id] = true;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
      if (TokenId id = v.find(t); id >= 0) v.rstrip_[id] = false;
  }
  return v;
}

TokenId Vocab::find(std::string_view s) const {
  auto it = id_of_.find(std::string(s));
  return it == id_of_.end() ? -1 : it->second;
}

bool Vocab::is_eog(TokenId id) const { return id >= 0 && (id == eos_ || id == eot_); }

std::vector<Vocab::Fragment> Vocab::split_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  for (TokenId sid : specials_) {
    const TokenType t = type_[sid];
    if (!parse_special && (t == TokenType::Control || t == TokenType::Unknown)) continue;
    const std::string& st = text_[sid];
    if (st.empty()) continue;
    std::vector<Fragment> next;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t off = fr.offset, len = fr.length;
      while (len > 0) {
        const size_t m = text.substr(0, off + len).find(st, off);
        if (m == std::string_view::npos) break;
        if (m > off) next.push_back({-1, off, m - off});
        next.push_back({sid, 0, 0});
        size_t roff = m + st.size(), rlen = off + len - roff;
        if (rstrip_[sid])
          while (rlen > 0 && std::isspace(static_cast<unsigned char>(text[roff]))) {
            ++roff;
            --rlen;
          }
        off = roff;
        len = rlen;
      }
      if (len > 0) next.push_back({-1, off, len});
    }
    frags = std::move(next);
  }
  return frags;
}

Result<TokenId> Vocab::byte_token(uint8_t b) const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  if (TokenId id = find(buf); id >= 0) return id;
  const char one[2] = {static_cast<char>(b), 0};
  if (TokenId id = find(std::string_view(one, 1)); id >= 0) return id;
  return Error{"byte 0x" + std::string(buf + 3, 2) + " cannot be tokenized: the vocabulary has no byte tokens and no token for it"};
}

// SentencePiece BPE: start from characters, repeatedly merge the adjacent pair whose
// merged text is the highest-scoring token (leftmost on ties), then spell out what
// did not become a token as byte tokens.
Status Vocab::tokenize_spm(std::string_view text, std::vector<TokenId>& out) const {
  struct Sym {
    size_t start, n;
    int prev, next;
  };
  std::vector<Sym> sym;
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
    const int idx = static_cast<int>(sym.size());
    sym.push_back({off, n, idx - 1, off + n == text.size() ? -1 : idx + 1});
    off += n;
  }
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  auto worse = [](const Bigram& a, const Bigram& b) { return a.score < b.score || (a.score == b.score && a.left > b.left); };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string s(text.substr(sym[l].start, sym[l].n + sym[r].n));
    const TokenId id = find(s);
    if (id < 0) return;
    queue.push({l, r, score_[id], s.size()});
    rev_merge[s] = {l, r};
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Sym& L = sym[b.left];
    Sym& R = sym[b.right];
    if (L.n == 0 || R.n == 0 || L.n + R.n != b.size) continue;  // stale: one side already merged
    L.n += R.n;
    R.n = 0;
    L.next = R.next;
    if (R.next >= 0) sym[R.next].prev = b.left;
    try_add(L.prev, b.left);
    try_add(b.left, L.next);
  }
  // Emit each final symbol: as a token, else (as llama.cpp's resegment) as the pair it
  // was last proposed from, else as byte tokens. Merges only form tokens, so in
  // practice this is "token or bytes"; the depth bound guards malformed input.
  std::function<Status(int, int)> emit = [&](int i, int depth) -> Status {
    const std::string s(text.substr(sym[i].start, sym[i].n));
    if (TokenId id = find(s); id >= 0) {
      out.push_back(id);
      return {};
    }
    auto p = rev_merge.find(s);
    if (p != rev_merge.end() && depth < 64 && p->second.first != i) {
      if (Status st = emit(p->second.first, depth + 1); !st) return st;
      return emit(p->second.second, depth + 1);
    }
    for (char c : s) {
      auto bt = byte_token(static_cast<uint8_t>(c));
      if (!bt) return bt.error();
      out.push_back(bt.value());
    }
    return {};
  };
  for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next)
    if (Status st = emit(i, 0); !st) return st;
  return {};
}

// WordPiece as llama.cpp's BERT tokenizer: each code point reduced to the first of its
// NFD decomposition and lowercased, controls dropped; words split at white space, with
// punctuation, ASCII symbols and CJK ideographs as words of their own; each word, with
// the "▁" that marks a word start, taken greedily as the longest tokens from the left,
// and [UNK] for a word that cannot be spelled completely.
Status Vocab::tokenize_wpm(std::string_view text, std::vector<TokenId>& out) const {
  auto chinese = [](uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  };
  std::vector<std::string> words(1);
  for (const CodePoint& cp : decode_utf8(text)) {
    if (cp.cp == 0xFFFFFFFFu) continue;  // invalid UTF-8 (llama.cpp's U+FFFD, dropped)
    const uint32_t c = nfd_first(cp.cp);
    if (is_space(c)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    const std::string s = encode_utf8(to_lower(c));
    if (is_punct(c) || (c < 0x7F && is_symbol(c)) || chinese(c)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  for (const std::string& w : words) {
    if (w.empty()) continue;
    const std::string word = std::string(kSpace) + w;
    const size_t n = word.size(), start = out.size();
    for (size_t i = 0; i < n;) {
      size_t j = std::min(n, i + max_token_len_ + 1);
      TokenId id = -1;
      for (; j > i; --j)
        if ((id = find(std::string_view(word).substr(i, j - i))) >= 0) break;
      if (id < 0) {
        out.resize(start);
        break;
      }
      out.push_back(id);
      i = j;
    }
    if (out.size() == start) {
      if (unk_ < 0) return Error{"word '" + w + "' cannot be tokenized: the vocabulary has no [UNK] token"};
      out.push_back(unk_);
    }
  }
  return {};
}

// Byte-level BPE: pre-tokenize, map each word's bytes to GPT-2's characters, merge.
Status Vocab::tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const {
  for (std::string_view word : pretokenize(pre_, text)) {
    const std::string encoded = bytes_to_unicode(word);
    if (ignore_merges_) {
      if (TokenId id = find(encoded); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    for (const std::string& sym : bpe_merge(encoded, merges_)) {
      if (TokenId id = find(sym); id >= 0) {
        out.push_back(id);
        continue;
      }
      // A symbol that is not a token: its characters one by one.
      for (const CodePoint& cp : decode_utf8(sym)) {
        const TokenId id = find(std::string_view(sym).substr(cp.offset, cp.length));
        if (id < 0) return Error{"text cannot be tokenized: no token for '" + std::string(sym.substr(cp.offset, cp.length)) + "'"};
        out.push_back(id);
      }
    }
  }
  return {};
}

Result<std::vector<TokenId>> Vocab::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  if (!unsupported_.empty()) return Error{unsupported_};
  std::vector<TokenId> out;
  bool prev_special = true;  // the first text gets the space prefix
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  for (const Fragment& fr : split_special(text, parse_special)) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    if (bpe_ || wpm_) {
      std::string_view raw = text.substr(fr.offset, fr.length);
      if (Status st = bpe_ ? tokenize_bpe(raw, out) : tokenize_wpm(raw, out); !st) return st.error();
      prev_special = false;
      continue;
    }
    std::string s;
    if (add_space_prefix_ && prev_special) s = " ";
    s += text.substr(fr.offset, fr.length);
    if (Status st = tokenize_spm(escape_spaces(s), out); !st) return st.error();
    prev_special = false;
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  if (add_special && wpm_ && sep_ >= 0) out.push_back(sep_);
  return out;
}

std::string Vocab::piece(TokenId id, bool special) const {
  if (id < 0 || static_cast<size_t>(id) >= text_.size()) return {};
  const TokenType t = type_[id];
  const bool is_special = t == TokenType::Control || t == TokenType::Unknown;
  if (!special && is_special) return {};
  if (is_special || t == TokenType::UserDefined) return text_[id];
  if (t == TokenType::Normal) return bpe_ ? unicode_to_bytes(text_[id]) : unescape_spaces(text_[id]);
  if (t == TokenType::Byte) {
    unsigned b = 0;
    if (std::sscanf(text_[id].c_str(), "<0x%02X>", &b) == 1) return std::string(1, static_cast<char>(b));
  }
  return {};
}

}  // namespace hearth::model
