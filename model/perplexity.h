// Perplexity as llama-perplexity computes it: the whole text tokenized with BOS, cut
// into chunks of n_ctx tokens whose first token is replaced by BOS, each chunk
// evaluated from an empty cache, and only the second half of each chunk scored
// (positions n_ctx/2 .. n_ctx-2 predicting the next token).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"

namespace hearth::model {

struct PerplexityResult {
  double ppl = 0, ppl_err = 0;  // exp(mean NLL), and ppl times the standard error of the NLL
  int n_ctx = 0, n_chunks = 0;
  int64_t tokens_scored = 0;
  std::vector<double> running_ppl;  // after each chunk
};

// -log p(next) under `logits`: the log-softmax with its sum of exponentials in double, as
// llama.cpp's perplexity and imatrix tools compute it.
double token_nll(const float* logits, int64_t n_vocab, TokenId next);
// The estimate from the sums of the NLL and of its square over n scored tokens: ppl and
// ppl times the standard error of the mean NLL (0 when it cannot be estimated).
std::pair<double, double> ppl_estimate(double nll, double nll2, int64_t n);

// max_chunks < 0: all the chunks the text has.
Result<PerplexityResult> perplexity(const Model& m, const std::string& text, int n_ctx, int max_chunks, int threads,
                                    const std::function<void(int chunk, double ppl)>& on_chunk = {}, KvType kv = KvType::F16);

}  // namespace hearth::model
