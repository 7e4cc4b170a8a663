// Prometheus metrics (GET /metrics, text exposition format 0.0.4): requests by route and
// status, prompt / cached / generated tokens, time to first token and inter-token latency
// histograms, and, read when scraped, queue depth, busy slots and loaded models with their
// bytes. Thread-safe: HTTP threads record, any thread scrapes.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runner/model_cache.h"

namespace hearth::server {

class Metrics {
 public:
  // One answered request (its route pattern, e.g. "/api/chat", and status).
  void request(const std::string& route, int status);
  // One finished generation: prompt tokens in all, of which reused from the cache, and generated.
  void generation(int prompt_tokens, int cached_tokens, int generated);
  void first_token(double seconds);
  void inter_token(double seconds);
  // The text exposition of everything, with the loaded models' state now.
  std::string exposition(const std::vector<runner::LoadedInfo>& loaded) const;

  // Histogram buckets, seconds (upper bounds; +Inf implied).
  static constexpr std::array<double, 12> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
    void add(double v);
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // guarded by mu_
  uint64_t prompt_ = 0, cached_ = 0, generated_ = 0, generations_ = 0;
  Histogram ttft_, itl_;
};

}  // namespace hearth::server
