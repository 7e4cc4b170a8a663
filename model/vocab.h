// Tokenizers read from GGUF metadata (tokenizer.ggml.*).
//
// SentencePiece-style ("llama": llama 2, mistral, phi-3, the stories models) with byte
// fallback and the leading-space rule, and byte-level BPE ("gpt2": llama 3, qwen2,
// gpt-2, starcoder, deepseek, falcon, ...) with its pre-tokenizers, and WordPiece
// ("bert"); special-token splitting for all, as llama.cpp does it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf.h"
#include "model/bpe.h"

namespace hearth::model {

using TokenId = int32_t;

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Vocab {
 public:
  static Result<Vocab> from_gguf(const gguf::GgufFile& f);

  // Empty when this tokenizer can tokenize; otherwise why not (the vocabulary still
  // loads, so a model can run on token ids).
  const std::string& unsupported() const { return unsupported_; }

  // add_special: BOS (and EOS) as the metadata says; parse_special: text that spells a
  // control token becomes that token (user-defined tokens are always matched).
  // A character the vocabulary cannot express (no byte tokens) is an error.
  Result<std::vector<TokenId>> tokenize(std::string_view text, bool add_special, bool parse_special) const;
  // The text of one token: control and unknown tokens only with `special`; byte tokens
  // as their byte (possibly half a UTF-8 character).
  std::string piece(TokenId id, bool special) const;

  size_t size() const { return text_.size(); }
  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId sep() const { return sep_; }  // WordPiece's [SEP] (-1 when the file names none)
  bool add_bos() const { return add_bos_; }
  // SentencePiece's leading-space rule: tokenizing puts a space before the text.
  bool add_space_prefix() const { return add_space_prefix_; }
  bool is_eog(TokenId id) const;
  TokenType type(TokenId id) const { return type_[static_cast<size_t>(id)]; }
  const std::string& text(TokenId id) const { return text_[static_cast<size_t>(id)]; }

 private:
  struct Fragment {
    TokenId token = -1;  // >= 0: a special token; else raw text [offset, offset + length)
    size_t offset = 0, length = 0;
  };
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;
  Status tokenize_spm(std::string_view text, std::vector<TokenId>& out) const;
  Status tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const;
  Status tokenize_wpm(std::string_view text, std::vector<TokenId>& out) const;
  Result<TokenId> byte_token(uint8_t b) const;
  TokenId find(std::string_view s) const;

  std::string model_, unsupported_;
  std::vector<std::string> text_;
  std::vector<float> score_;
  std::vector<TokenType> type_;
  std::vector<bool> rstrip_;
  std::unordered_map<std::string, TokenId> id_of_;
  std::vector<TokenId> specials_;  // control/user-defined/unknown, longest text first
  TokenId bos_ = -1, eos_ = -1, eot_ = -1, unk_ = -1, sep_ = -1;
  size_t max_token_len_ = 0;
  bool add_bos_ = true, add_eos_ = false, add_space_prefix_ = true;
  bool bpe_ = false, wpm_ = false, ignore_merges_ = false;
  PreTokenizer pre_ = PreTokenizer::Gpt2;
  BpeMerges merges_;
};

}  // namespace hearth::model
