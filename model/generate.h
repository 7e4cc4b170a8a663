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

Result<GenerateResult> generate(Context& ctx, const std::vector<TokenId>& prompt, const GenerateOptions& opt,
                                const std::function<void(const std::string&)>& on_text = {});

}  // namespace hearth::model
