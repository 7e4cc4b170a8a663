// The loaded models, keyed by the model blob's digest: loaded on first use, shared by
// every request for them, kept for a keep-alive duration after the last request ends,
// evicted least-recently-used beyond a maximum, and refused when their weights and KV
// cache would not fit in the memory available. Knows no HTTP.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runner/runner.h"

namespace hearth::runner {

using Nanos = std::chrono::nanoseconds;
// keep_alive: how long a model stays loaded after its last request. Negative: forever.
inline constexpr Nanos kForever = Nanos::min();

struct CacheOptions {
  size_t max_loaded = 3;               // OLLAMA_MAX_LOADED_MODELS (0 → 3)
  Nanos keep_alive = std::chrono::minutes(5);  // OLLAMA_KEEP_ALIVE
  uint64_t memory_limit = 0;           // bytes a model may take (0: MemAvailable at load time)
};

// What identifies a loaded model: its blob and the options it was loaded with. A request
// for the same blob with other options reloads it, as Ollama does.
struct LoadSpec {
  std::string digest;      // "sha256:…" of the model blob
  std::string path;        // the GGUF file
  RunnerOptions options;
};

// What /api/ps shows of a loaded model.
struct LoadedInfo {
  std::string digest, name;
  uint64_t size = 0;              // the memory estimate: weights + KV cache + scratch
  int context_length = 0;
  std::chrono::system_clock::time_point expires_at;
  bool forever = false;
  size_t waiting = 0, running = 0, slots = 0;  // requests queued; sequences decoding; KV slots
};

class ModelCache {
 public:
  explicit ModelCache(CacheOptions opt);
  ~ModelCache();

  // A request's hold on a loaded model: while it lives the model is not unloaded; when
  // the last one goes the keep-alive clock starts.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) noexcept;
    ~Lease();
    Runner& runner() const { return *runner_; }
    Nanos load_time() const { return load_time_; }

   private:
    friend class ModelCache;
    ModelCache* cache_ = nullptr;
    std::string digest_;
    std::shared_ptr<Runner> runner_;
    Nanos load_time_{0};
  };

  // The model for `spec`, loaded (or reloaded with new options) if needed. `keep_alive`,
  // when given, becomes the model's keep-alive (it is sticky, as Ollama's). `name` is
  // what /api/ps shows.
  Result<Lease> acquire(const LoadSpec& spec, const std::string& name, std::optional<Nanos> keep_alive);
  // Unloads the model once idle (keep_alive 0 on a load-only request).
  void expire(const std::string& digest);
  std::vector<LoadedInfo> loaded() const;
  // The memory estimate of a model file with these options.
  static Result<uint64_t> estimate(const model::Model& m, const RunnerOptions& o);

 private:
  struct Entry {
    std::shared_ptr<Runner> runner;
    RunnerOptions options;
    std::string name;
    uint64_t size = 0;
    int refs = 0;
    Nanos keep_alive{0};
    std::chrono::steady_clock::time_point expires;  // when idle
    std::chrono::system_clock::time_point expires_wall;
    uint64_t last_used = 0;
  };
  void release(const std::string& digest);
  void janitor();
  // Drops idle entries past their time; under mu_. Returns the runners to destroy
  // outside the lock.
  std::vector<std::shared_ptr<Runner>> collect(bool evict_one_lru);

  CacheOptions opt_;
  mutable std::mutex mu_;
  std::mutex load_mu_;  // one load at a time
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
  uint64_t clock_ = 0;
  bool stop_ = false;
  std::thread janitor_;
};

// Parses a keep_alive value as Ollama does: a number of seconds (negative: forever) or a
// Go duration string ("5m", "1h30m", "-1m"; "-1" without a unit is an error).
Result<Nanos> parse_keep_alive(double seconds);
Result<Nanos> parse_keep_alive(const std::string& text);

}  // namespace hearth::runner
