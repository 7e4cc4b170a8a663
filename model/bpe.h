// Byte-level BPE (GPT-2 style, tokenizer.ggml.model = "gpt2"): the pre-tokenizers of
// the common models (the regular expressions of HF tokenizers, written out by hand as
// llama.cpp does), then merges by rank over GPT-2's byte-to-character mapping.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth::model {

enum class PreTokenizer {
  Gpt2,       // gpt-2, mpt, olmo: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Starcoder,  // starcoder, refact, command-r, smollm: each digit apart, then Gpt2
  Llama3,     // llama-bpe: case-insensitive contractions, [^\r\n\p{L}\p{N}]?\p{L}+, \p{N}{1,3}, ...
  Qwen2,      // as Llama3 with single digits
  DeepseekLlm,    // newlines, cased letters, ASCII/CJK punctuation, trailing space, CJK, numbers
  DeepseekCoder,  // newlines, \s?\p{L}+, \s?\p{P}+, CJK, each digit apart
  Falcon,         // punctuation and ASCII symbols, then Gpt2, then digits in threes
  Default,        // llama.cpp's default (gpt-neox and a GGUF without tokenizer.ggml.pre)
};

// The pre-tokenizer a GGUF's tokenizer.ggml.pre names, or false if Hearth lacks it.
bool pre_tokenizer_for(std::string_view pre, PreTokenizer& out);

// Splits text into pre-tokens (views into `text`, covering it completely, in order).
std::vector<std::string_view> pretokenize(PreTokenizer p, std::string_view text);

class BpeMerges {
 public:
  // "left right" merge rules, rank = index.
  void add(std::string_view rule, int rank);
  // Rank of merging two adjacent symbols, or -1.
  int rank(std::string_view left, std::string_view right) const;
  bool empty() const { return ranks_.empty(); }

 private:
  std::unordered_map<std::string, int> ranks_;  // key: left + '\n' + right
};

// Merges the byte-level-encoded word into symbols (strings of the vocabulary's alphabet).
std::vector<std::string> bpe_merge(std::string_view word, const BpeMerges& merges);

}  // namespace hearth::model
