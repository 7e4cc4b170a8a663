#include "model/imatrix.h"

#include <cmath>
#include <tuple>
#include <vector>

#include "model/perplexity.h"

namespace hearth::model {
namespace {

// The matrices llama-imatrix collects: every layer's, and the output projection when asked
// (a tied output reads token_embd.weight, which it never collects).
bool collected(const std::string& name, bool process_output) {
  return name.rfind("blk.", 0) == 0 || (process_output && name == "output.weight");
}

}  // namespace

Result<ImatrixSummary> compute_imatrix(const Model& m, std::string_view text, const ImatrixOptions& o,
                                       quant::ImatrixStats& stats,
                                       const std::function<Status(const ImatrixProgress&)>& on_chunk) {
  const int n_ctx = o.n_ctx;
  if (n_ctx < 4) return Error{"the context must be at least 4 tokens, not " + std::to_string(n_ctx)};
  if (stats.chunk_size() != n_ctx)
    return Error{"the statistics count chunks of " + std::to_string(stats.chunk_size()) + " tokens, not " + std::to_string(n_ctx)};
  if (m.hparams().family != Family::Decoder) return Error{"imatrix needs a decoder model; this one is an encoder"};
  if (std::string why = Context::unsupported(m, o.kv); !why.empty()) return Error{why};
  auto toks = m.vocab().tokenize(text, true, false);
  if (!toks) return toks.error();
  std::vector<TokenId>& tokens = toks.value();
  const size_t skipped = static_cast<size_t>(o.skip_chunks) * n_ctx;
  if (o.skip_chunks > 0) {
    if (skipped + 2 * static_cast<size_t>(n_ctx) >= tokens.size())
      return Error{"there will be not enough tokens left after removing " + std::to_string(o.skip_chunks) + " chunks"};
    tokens.erase(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(skipped));
  }
  if (tokens.size() < 2 * static_cast<size_t>(n_ctx))
    return Error{"the text tokenizes to " + std::to_string(tokens.size()) + " tokens; a context of " + std::to_string(n_ctx) +
                 " needs at least " + std::to_string(2 * n_ctx)};
  const int available = static_cast<int>(tokens.size() / n_ctx);
  ImatrixSummary r;
  r.n_chunks = o.max_chunks < 0 ? available : std::min(o.max_chunks, available);

  Context ctx(m, n_ctx, o.threads, o.kv);
  ctx.set_flash_attn(o.flash_attn);
  std::string failure;  // the first error of the statistics
  ctx.observe_matmuls([&](const Weight& w, const float* x, int B) {
    if (failure.empty() && collected(w.info->name, o.process_output))
      if (Status s = stats.add(w.info->name, x, w.cols(), B); !s) failure = s.message();
  });
  // Logits: every row's when output.weight is collected (llama-imatrix asks for all), else
  // only the second half's, which the perplexity scores.
  const int first = n_ctx / 2;
  const int64_t n_vocab = m.hparams().n_vocab;
  std::vector<BatchRow> rows(static_cast<size_t>(n_ctx));
  std::vector<float> logits;
  double nll = 0, nll2 = 0;
  int64_t scored = 0;
  for (int c = 0; c < r.n_chunks; ++c) {
    const size_t start = static_cast<size_t>(c) * n_ctx;
    for (int i = 0; i < n_ctx; ++i) {
      const bool scores = o.compute_ppl && i >= first && i < n_ctx - 1;
      rows[i] = {tokens[start + i], i, 0, o.process_output || scores, false};
    }
    if (m.vocab().add_bos()) rows[0].token = m.vocab().bos();
    ctx.reset();
    if (Status s = ctx.decode(rows, &logits); !s) return s.error();
    if (!failure.empty()) return Error{failure};
    r.tokens += n_ctx;
    ImatrixProgress p{c + 1, r.n_chunks, 0};
    if (o.compute_ppl) {
      const size_t offset = o.process_output ? static_cast<size_t>(first) : 0;  // logits row of position `first`
      for (int i = first; i < n_ctx - 1; ++i) {
        const double v = token_nll(&logits[(offset + static_cast<size_t>(i - first)) * n_vocab], n_vocab, tokens[start + i + 1]);
        nll += v;
        nll2 += v * v;
        ++scored;
      }
      p.ppl = std::exp(nll / scored);
    }
    if (on_chunk)
      if (Status s = on_chunk(p); !s) return s.error();
  }
  if (o.compute_ppl) std::tie(r.ppl, r.ppl_err) = ppl_estimate(nll, nll2, scored);
  return r;
}

}  // namespace hearth::model
