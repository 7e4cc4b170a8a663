#include "model/perplexity.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace hearth::model {

double token_nll(const float* l, int64_t n_vocab, TokenId next) {
  float mx = l[0];
  for (int64_t v = 1; v < n_vocab; ++v) mx = std::max(mx, l[v]);
  double sum = 0;
  for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(l[v] - mx);
  return -(l[next] - mx - std::log(sum));
}

std::pair<double, double> ppl_estimate(double nll, double nll2, int64_t n) {
  if (n == 0) return {0, 0};
  const double mean = nll / n, mean2 = nll2 / n, ppl = std::exp(mean), var = mean2 - mean * mean;
  return {ppl, var > 0 && n > 1 ? std::sqrt(var / (n - 1)) * ppl : 0};
}

Result<PerplexityResult> perplexity(const Model& m, const std::string& text, int n_ctx, int max_chunks, int threads,
                                    const std::function<void(int, double)>& on_chunk, KvType kv) {
  if (n_ctx < 4) return Error{"the context must be at least 4 tokens, not " + std::to_string(n_ctx)};
  if (std::string why = Context::unsupported(m, kv); !why.empty()) return Error{why};
  auto toks = m.vocab().tokenize(text, true, true);
  if (!toks) return toks.error();
  std::vector<TokenId> tokens = std::move(toks.value());
  const int available = static_cast<int>(tokens.size() / n_ctx);
  if (available == 0)
    return Error{"the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " + std::to_string(n_ctx)};
  PerplexityResult r;
  r.n_ctx = n_ctx;
  r.n_chunks = max_chunks < 0 ? available : std::min(max_chunks, available);
  const int first = n_ctx / 2;
  const int64_t n_vocab = m.hparams().n_vocab;
  double nll = 0, nll2 = 0;
  Context ctx(m, n_ctx, threads, kv);
  for (int c = 0; c < r.n_chunks; ++c) {
    ctx.reset();
    const size_t start = static_cast<size_t>(c) * n_ctx;
    std::vector<TokenId> chunk(tokens.begin() + start, tokens.begin() + start + n_ctx - 1);
    if (m.vocab().add_bos()) chunk[0] = m.vocab().bos();
    // The first half only fills the cache; the second half's logits are scored.
    if (Status s = ctx.eval(std::span<const TokenId>(chunk).first(first)); !s) return s.error();
    auto score = [&](size_t i, const float* l) {
      const double v = token_nll(l, n_vocab, tokens[start + first + i + 1]);
      nll += v;
      nll2 += v * v;
      ++r.tokens_scored;
    };
    if (Status s = ctx.eval(std::span<const TokenId>(chunk).subspan(first), score); !s) return s.error();
    r.running_ppl.push_back(std::exp(nll / r.tokens_scored));
    if (on_chunk) on_chunk(c, r.running_ppl.back());
  }
  std::tie(r.ppl, r.ppl_err) = ppl_estimate(nll, nll2, r.tokens_scored);
  return r;
}

}  // namespace hearth::model
