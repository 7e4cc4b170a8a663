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

TextStream::Step TextStream::push(TokenId t) {
  Step out;
  if (vocab_.is_eog(t)) {
    out.text = held_ + utf8_.flush();
    held_.clear();
    out.stop = true;
    return out;
  }
  held_ += utf8_.push(vocab_.piece(t, false));
  // Stop strings: cut at the first one; hold back a tail that might begin one.
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    if (size_t at = held_.find(s); at != std::string::npos) {
      out.text = held_.substr(0, at);
      held_.clear();
      out.stop = true;
      return out;
    }
  }
  size_t keep = 0;
  for (const std::string& s : stop_)
    for (size_t k = std::min(s.empty() ? 0 : s.size() - 1, held_.size()); k > keep; --k)
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string TextStream::flush() {
  std::string out = held_ + utf8_.flush();
  held_.clear();
  return out;
}

Result<std::vector<TokenId>> fit_prompt(const std::vector<TokenId>& prompt, int n_ctx, const GenerateOptions& opt,
                                        bool add_bos, int* truncated) {
  *truncated = 0;
  const size_t free = static_cast<size_t>(n_ctx);
  if (prompt.size() <= free) return prompt;
  if (!opt.shift)
    return Error{"the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context's " + std::to_string(free) +
                 " free positions (and context shift is off)"};
  const size_t keep = std::min(free - 1, static_cast<size_t>(std::max(0, opt.num_keep)) + (add_bos ? 1 : 0));
  const size_t discard = prompt.size() - free;
  std::vector<TokenId> out(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(keep));
  out.insert(out.end(), prompt.begin() + static_cast<std::ptrdiff_t>(keep + discard), prompt.end());
  *truncated = static_cast<int>(discard);
  return out;
}

std::pair<int, int> shift_amounts(int n_past, int n_ctx, const GenerateOptions& opt, bool add_bos) {
  const int keep = std::min(n_ctx - 2, std::max(0, opt.num_keep) + (add_bos ? 1 : 0));
  return {keep, std::max(1, (n_past - keep) / 2)};
}

int64_t predict_limit(const GenerateOptions& opt, int n_ctx) {
  return opt.num_predict >= 0 ? opt.num_predict : opt.shift ? 10 * int64_t{n_ctx} : INT64_MAX;
}

Result<GenerateResult> generate(Context& ctx, const std::vector<TokenId>& prompt, const GenerateOptions& opt,
                                const std::function<void(const std::string&)>& on_text) {
  GenerateResult r;
  if (prompt.empty()) return Error{"the prompt has no tokens"};
  const Vocab& vocab = ctx.model().vocab();
  if (prompt.size() > static_cast<size_t>(ctx.n_ctx() - ctx.n_past()) && ctx.n_past() != 0)
    return Error{"the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context's " +
                 std::to_string(ctx.n_ctx() - ctx.n_past()) + " free positions"};
  auto fitted = fit_prompt(prompt, ctx.n_ctx(), opt, vocab.add_bos(), &r.truncated);
  if (!fitted) return fitted.error();
  r.prompt_tokens = std::move(fitted.value());
  Sampler sampler(opt.sampling);
  auto t0 = std::chrono::steady_clock::now();
  if (Status s = ctx.eval(std::span<const TokenId>(r.prompt_tokens)); !s) return s.error();
  for (TokenId t : r.prompt_tokens) sampler.accept(t);
  r.prompt_seconds = since(t0);
  t0 = std::chrono::steady_clock::now();
  TextStream text(vocab, opt.stop);
  r.stop_reason = "length";
  auto emit = [&](const std::string& s) {
    if (!s.empty() && on_text) on_text(s);
    r.text += s;
  };
  const int64_t limit = predict_limit(opt, ctx.n_ctx());
  for (int64_t i = 0; i < limit; ++i) {
    std::vector<float> logits = ctx.logits();
    const TokenId t = sampler.sample(logits);
    r.tokens.push_back(t);
    const TextStream::Step step = text.push(t);
    emit(step.text);
    if (step.stop) {
      r.stop_reason = "stop";
      break;
    }
    sampler.accept(t);
    if (ctx.n_past() >= ctx.n_ctx()) {
      if (!opt.shift) break;
      const auto [keep, discard] = shift_amounts(ctx.n_past(), ctx.n_ctx(), opt, vocab.add_bos());
      if (Status s = ctx.shift(keep, discard); !s) return s.error();
      ++r.shifts;
    }
    if (Status s = ctx.eval(t); !s) return s.error();
  }
  if (r.stop_reason == "length") emit(text.flush());
  r.gen_seconds = since(t0);
  return r;
}

}  // namespace hearth::model
