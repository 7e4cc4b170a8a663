// Choosing the next token from the logits: greedy, or llama.cpp's chain (repetition
// penalties, top-k, typical, top-p, min-p, temperature, then a draw from a seeded
// generator), with Ollama's option names and defaults.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "model/vocab.h"

namespace hearth::model {

struct SamplingOptions {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // <= 0: off
  float top_p = 0.9f;           // >= 1: off
  float min_p = 0.0f;           // <= 0: off
  float typical_p = 1.0f;       // >= 1: off
  int repeat_last_n = 64;       // window for the penalties (0: off, -1: whole context)
  float repeat_penalty = 1.0f;  // 1: off (Ollama's default today; 1.1 before)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t seed = -1;            // < 0: from the clock
  // Added to the logits of these tokens before anything else (OpenAI's logit_bias: -100
  // bans a token, +100 all but forces it). Ids outside the vocabulary are skipped.
  std::vector<std::pair<TokenId, float>> logit_bias;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opt);
  // Picks a token from `logits` (which it may modify). Greedy: the largest logit, the
  // lowest id on ties (llama.cpp's greedy sampler).
  TokenId sample(std::vector<float>& logits);
  // Records a token (prompt or generated) for the repetition penalties.
  void accept(TokenId t);

 private:
  SamplingOptions opt_;
  std::mt19937_64 rng_;
  std::deque<TokenId> recent_;
};

TokenId argmax(const std::vector<float>& logits);

}  // namespace hearth::model
