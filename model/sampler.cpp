#include "model/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace hearth::model {

TokenId argmax(const std::vector<float>& logits) {
  TokenId best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<TokenId>(i);
  return best;
}

Sampler::Sampler(const SamplingOptions& opt)
    : opt_(opt),
      rng_(opt.seed >= 0 ? static_cast<uint64_t>(opt.seed)
                         : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {}

void Sampler::accept(TokenId t) {
  recent_.push_back(t);
  if (opt_.repeat_last_n >= 0 && recent_.size() > static_cast<size_t>(opt_.repeat_last_n)) recent_.pop_front();
}

TokenId Sampler::sample(std::vector<float>& logits) {
  for (const auto& [t, bias] : opt_.logit_bias)
    if (t >= 0 && static_cast<size_t>(t) < logits.size()) logits[static_cast<size_t>(t)] += bias;
  // Repetition penalties over the recent window (llama.cpp's penalties sampler).
  if (!recent_.empty() && (opt_.repeat_penalty != 1.0f || opt_.presence_penalty != 0.0f || opt_.frequency_penalty != 0.0f)) {
    std::unordered_map<TokenId, int> count;
    for (TokenId t : recent_) ++count[t];
    for (auto [t, c] : count) {
      if (t < 0 || static_cast<size_t>(t) >= logits.size()) continue;
      float& l = logits[t];
      l = l <= 0 ? l * opt_.repeat_penalty : l / opt_.repeat_penalty;
      l -= static_cast<float>(c) * opt_.frequency_penalty + (c > 0 ? 1.0f : 0.0f) * opt_.presence_penalty;
    }
  }
  if (opt_.temperature <= 0) return argmax(logits);

  struct Cand {
    TokenId id;
    float logit, p;
  };
  std::vector<Cand> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<TokenId>(i), logits[i], 0.f};
  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  auto softmax = [&] {
    const float mx = c.front().logit;
    double sum = 0;
    for (Cand& x : c) sum += (x.p = std::exp(x.logit - mx));
    for (Cand& x : c) x.p = static_cast<float>(x.p / sum);
  };
  // top-k
  const size_t k = opt_.top_k > 0 ? std::min(c.size(), static_cast<size_t>(opt_.top_k)) : c.size();
  std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(k), c.end(), by_logit);
  c.resize(k);
  softmax();
  // typical: keep the tokens closest to the expected surprise, up to mass typical_p
  if (opt_.typical_p < 1.0f && c.size() > 1) {
    double ent = 0;
    for (const Cand& x : c) ent -= x.p * std::log(std::max(x.p, 1e-30f));
    std::vector<size_t> idx(c.size());
    std::iota(idx.begin(), idx.end(), size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return std::fabs(-std::log(c[a].p) - ent) < std::fabs(-std::log(c[b].p) - ent);
    });
    double mass = 0;
    size_t keep = 0;
    for (; keep < idx.size(); ++keep) {
      mass += c[idx[keep]].p;
      if (mass >= opt_.typical_p) {
        ++keep;
        break;
      }
    }
    std::vector<Cand> kept;
    for (size_t i = 0; i < std::min(keep, idx.size()); ++i) kept.push_back(c[idx[i]]);
    std::sort(kept.begin(), kept.end(), by_logit);
    c = std::move(kept);
    softmax();
  }
  // top-p: the smallest prefix with mass >= top_p
  if (opt_.top_p < 1.0f) {
    double mass = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      mass += c[i].p;
      if (mass >= opt_.top_p) {
        keep = i + 1;
        break;
      }
    }
    c.resize(std::max<size_t>(1, keep));
  }
  // min-p: drop tokens below min_p times the best one's probability
  if (opt_.min_p > 0.0f) {
    const float floor = c.front().p * opt_.min_p;
    size_t keep = 1;
    while (keep < c.size() && c[keep].p >= floor) ++keep;
    c.resize(keep);
  }
  // temperature, then a draw
  for (Cand& x : c) x.logit /= opt_.temperature;
  softmax();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng_), acc = 0;
  TokenId last = c.front().id;  // when rounding leaves r past the sum: the last possible token
  for (const Cand& x : c) {
    acc += x.p;
    if (r < acc) return x.id;
    if (x.p > 0) last = x.id;
  }
  return last;
}

}  // namespace hearth::model
