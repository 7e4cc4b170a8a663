#include "model/generate.h"

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace hearth::model {
namespace {

// Bytes of the UTF-8 sequence starting with c (1 for continuation/invalid bytes).
size_t seq_len(unsigned char c) {
  if (c >= 0xF0) return 4;
  if (c >= 0xE0) return 3;
  if (c >= 0xC0) return 2;
  return 1;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  size_t i = 0, complete = 0;
  while (i < pending_.size()) {
    const size_t n = seq_len(static_cast<unsigned char>(pending_[i]));
    if (i + n > pending_.size()) break;
    i += n;
    complete = i;
  }
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

Result<GenerateResult> generate(Context& ctx, const std::vector<TokenId>& prompt, const GenerateOptions& opt,
                                const std::function<void(const std::string&)>& on_text) {
  GenerateResult r;
  r.prompt_tokens = prompt;
  if (prompt.empty()) return Error{"the prompt has no tokens"};
  const Vocab& vocab = ctx.model().vocab();
  const size_t free = static_cast<size_t>(ctx.n_ctx() - ctx.n_past());
  if (prompt.size() > free) {
    // As Ollama's runner does: with shifting on and a fresh context, keep the first
    // num_keep tokens (after BOS) and drop the oldest of the rest until the prompt fills
    // the context exactly; otherwise refuse.
    if (!opt.shift || ctx.n_past() != 0)
      return Error{"the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context's " + std::to_string(free) +
                   " free positions" + (opt.shift ? "" : " (and context shift is off)")};
    const size_t keep = std::min(free - 1, static_cast<size_t>(std::max(0, opt.num_keep)) + (vocab.add_bos() ? 1 : 0));
    const size_t discard = prompt.size() - free;
    r.prompt_tokens.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(keep));
    r.prompt_tokens.insert(r.prompt_tokens.end(), prompt.begin() + static_cast<std::ptrdiff_t>(keep + discard), prompt.end());
    r.truncated = static_cast<int>(discard);
  }
  Sampler sampler(opt.sampling);
  auto t0 = std::chrono::steady_clock::now();
  if (Status s = ctx.eval(std::span<const TokenId>(r.prompt_tokens)); !s) return s.error();
  for (TokenId t : r.prompt_tokens) sampler.accept(t);
  r.prompt_seconds = since(t0);
  t0 = std::chrono::steady_clock::now();
  Utf8Stream utf8;
  std::string held;  // text held back while it could be the start of a stop string
  r.stop_reason = "length";
  auto emit = [&](const std::string& s) {
    if (!s.empty() && on_text) on_text(s);
    r.text += s;
  };
  // -1 is unbounded; with context shift that is capped at ten contexts, as Ollama does.
  const int64_t limit = opt.num_predict >= 0 ? opt.num_predict : opt.shift ? 10 * int64_t{ctx.n_ctx()} : INT64_MAX;
  for (int64_t i = 0; i < limit; ++i) {
    std::vector<float> logits = ctx.logits();
    const TokenId t = sampler.sample(logits);
    if (vocab.is_eog(t)) {
      r.tokens.push_back(t);
      r.stop_reason = "stop";
      emit(held + utf8.flush());
      held.clear();
      break;
    }
    r.tokens.push_back(t);
    sampler.accept(t);
    held += utf8.push(vocab.piece(t, false));
    // Stop strings: cut at the first one; hold back a tail that might begin one.
    bool stopped = false;
    for (const std::string& s : opt.stop) {
      if (s.empty()) continue;
      if (size_t at = held.find(s); at != std::string::npos) {
        emit(held.substr(0, at));
        held.clear();
        stopped = true;
        break;
      }
    }
    if (stopped) {
      r.stop_reason = "stop";
      break;
    }
    size_t keep = 0;
    for (const std::string& s : opt.stop)
      for (size_t k = std::min(s.size() - 1, held.size()); k > keep; --k)
        if (held.compare(held.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
    emit(held.substr(0, held.size() - keep));
    held.erase(0, held.size() - keep);
    if (ctx.n_past() >= ctx.n_ctx()) {
      if (!opt.shift) break;
      // As Ollama's runner: keep BOS and num_keep tokens, discard half of the others.
      const int keep = std::min(ctx.n_ctx() - 2, std::max(0, opt.num_keep) + (vocab.add_bos() ? 1 : 0));
      const int discard = std::max(1, (ctx.n_past() - keep) / 2);
      if (Status s = ctx.shift(keep, discard); !s) return s.error();
      ++r.shifts;
    }
    if (Status s = ctx.eval(t); !s) return s.error();
  }
  if (r.stop_reason == "length") emit(held + utf8.flush());
  r.gen_seconds = since(t0);
  return r;
}

}  // namespace hearth::model
