// Prompt in, tokens out: evaluate the prompt, then sample and evaluate one token at a
// time until num_predict, an end-of-generation token or a stop string; stream the text
// in whole UTF-8 characters.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/llama.h"
#include "model/sampler.h"

namespace hearth::model {

struct GenerateOptions {
  SamplingOptions sampling;
  int num_predict = 128;           // new tokens at most (< 0: unbounded; with shift, ten contexts)
  std::vector<std::string> stop;   // stop strings (not included in the output)
  // When the context fills: shift it (Ollama's default) keeping the first num_keep tokens
  // after BOS and discarding half of the rest, or stop with stop_reason "length". A
  // prompt longer than a fresh context is cut likewise (the first num_keep tokens, then
  // its newest ones) when shifting is on, and refused when it is off.
  bool shift = true;
  int num_keep = 4;
};

struct GenerateResult {
  std::vector<TokenId> prompt_tokens, tokens;  // the prompt as evaluated; tokens: the generated ones
  int truncated = 0;                           // prompt tokens dropped to fit the context
  std::string text;
  std::string stop_reason;                     // "length", "stop" (eog or stop string)
  int shifts = 0;                              // context shifts made
  double prompt_seconds = 0, gen_seconds = 0;
};

// Turns token pieces into text that never ends inside a UTF-8 character.
class Utf8Stream {
 public:
  // Appends bytes; returns what is complete so far.
  std::string push(const std::string& bytes);
  std::string flush();  // whatever is left (possibly invalid)

 private:
  std::string pending_;
};

// What a sequence's sampled tokens become as text: whole UTF-8 characters, cut at the
// first stop string (which is not emitted), with a tail held back while it could still
// become one. Shared by generate() and the runner's sequences.
class TextStream {
 public:
  TextStream(const Vocab& vocab, std::vector<std::string> stop) : vocab_(vocab), stop_(std::move(stop)) {}
  struct Step {
    std::string text;   // what may be shown now
    bool stop = false;  // an end-of-generation token or a stop string ended the text
  };
  // The next sampled token.
  Step push(TokenId t);
  // The end of generation for another reason (length, cancel): whatever is held back.
  std::string flush();

 private:
  const Vocab& vocab_;
  std::vector<std::string> stop_;
  Utf8Stream utf8_;
  std::string held_;  // text held back while it could be the start of a stop string
};

// A prompt fitted to a fresh context of n_ctx positions as Ollama's runner does: as it is
// when it fits; else, with shifting on, the first num_keep tokens (after BOS) and then the
// newest ones (`truncated` says how many were dropped); else an error.
Result<std::vector<TokenId>> fit_prompt(const std::vector<TokenId>& prompt, int n_ctx, const GenerateOptions& opt,
                                        bool add_bos, int* truncated);

// Ollama's context shift for a full sequence: keep BOS and num_keep tokens, discard half
// of the others. Returns {keep, discard}.
std::pair<int, int> shift_amounts(int n_past, int n_ctx, const GenerateOptions& opt, bool add_bos);

// The most tokens a request may generate: num_predict, or when it is negative ten
// contexts with shifting on (as Ollama caps it), unbounded without.
int64_t predict_limit(const GenerateOptions& opt, int n_ctx);

Result<GenerateResult> generate(Context& ctx, const std::vector<TokenId>& prompt, const GenerateOptions& opt,
                                const std::function<void(const std::string&)>& on_text = {});

}  // namespace hearth::model
