#include "runner/model_cache.h"

#include <tuple>

#include "gguf/dump.h"

#include <cmath>
#include <cstdio>
#include <fstream>

namespace hearth::runner {

using SteadyClock = std::chrono::steady_clock;
using WallClock = std::chrono::system_clock;

namespace {

// MemAvailable from /proc/meminfo, in bytes (0 when unknown).
uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}


}  // namespace

Result<uint64_t> ModelCache::estimate(const model::Model& m, const RunnerOptions& o) {
  const model::HParams& h = m.hparams();
  uint64_t weights = 0;
  for (const gguf::TensorInfo& t : m.file().tensors) weights += t.n_bytes;
  const uint64_t kv = h.family == model::Family::Encoder ? 0 : model::Context::kv_bytes(h, o.n_ctx, o.parallel, o.kv);
  // Scratch of the forward pass: a micro-batch of activations and of logits.
  const uint64_t scratch = uint64_t{model::Context::kUbatch} * 4 *
                           (uint64_t{h.n_embd} * 8 + uint64_t{h.n_ff} * 2 + h.n_vocab + uint64_t{h.n_head} * h.head_dim * 2);
  return weights + kv + scratch;
}

ModelCache::ModelCache(CacheOptions opt) : opt_(opt) {
  if (opt_.max_loaded == 0) opt_.max_loaded = 3;
  janitor_ = std::thread([this] { janitor(); });
}

ModelCache::~ModelCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  janitor_.join();
}

ModelCache::Lease::Lease(Lease&& o) noexcept { *this = std::move(o); }
ModelCache::Lease& ModelCache::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    if (cache_) cache_->release(digest_);
    cache_ = std::exchange(o.cache_, nullptr);
    digest_ = std::move(o.digest_);
    runner_ = std::move(o.runner_);
    load_time_ = o.load_time_;
  }
  return *this;
}
ModelCache::Lease::~Lease() {
  if (cache_) cache_->release(digest_);
}

Result<ModelCache::Lease> ModelCache::acquire(const LoadSpec& spec, const std::string& name, std::optional<Nanos> keep_alive) {
  const auto t0 = SteadyClock::now();
  auto hold = [&](Entry& e) {
    ++e.refs;
    e.last_used = ++clock_;
    if (keep_alive) e.keep_alive = *keep_alive;
    e.name = name;
    Lease l;
    l.cache_ = this;
    l.digest_ = spec.digest;
    l.runner_ = e.runner;
    return l;
  };
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(spec.digest);
    if (it != entries_.end() && it->second.options == spec.options) {
      Lease l = hold(it->second);
      l.load_time_ = std::chrono::duration_cast<Nanos>(SteadyClock::now() - t0);
      return l;
    }
  }
  std::lock_guard load_lock(load_mu_);
  std::vector<std::shared_ptr<Runner>> dropped;  // destroyed after the lock is released
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(spec.digest);
    if (it != entries_.end() && it->second.options == spec.options) {  // loaded while we waited
      Lease l = hold(it->second);
      l.load_time_ = std::chrono::duration_cast<Nanos>(SteadyClock::now() - t0);
      return l;
    }
    if (it != entries_.end()) {  // other options: reload (a running request keeps the old one alive)
      dropped.push_back(it->second.runner);
      entries_.erase(it);
    }
    while (entries_.size() >= opt_.max_loaded) {
      auto more = collect(true);
      if (more.empty())
        return Error{"server busy: " + std::to_string(entries_.size()) + " models are loaded and in use (OLLAMA_MAX_LOADED_MODELS=" +
                     std::to_string(opt_.max_loaded) + ")"};
      dropped.insert(dropped.end(), more.begin(), more.end());
    }
  }
  dropped.clear();
  auto loaded = model::Model::load(spec.path);
  if (!loaded) return loaded.error();
  std::shared_ptr<const model::Model> m(std::move(loaded.value()));
  if (std::string why = model::Context::unsupported(*m, spec.options.kv); !why.empty()) return Error{why};
  auto need = estimate(*m, spec.options);
  if (!need) return need.error();
  const uint64_t limit = opt_.memory_limit ? opt_.memory_limit : mem_available();
  if (limit && need.value() > limit)
    // Ollama's wording, with its format.HumanBytes2 (binary units, one decimal).
    return Error{"model requires more system memory (" + gguf::human_bytes(need.value(), 1) + ") than is available (" + gguf::human_bytes(limit, 1) + ")"};
  auto runner = std::make_shared<Runner>(std::move(m), spec.options);
  std::lock_guard lock(mu_);
  Entry& e = entries_[spec.digest];
  e.runner = std::move(runner);
  e.options = spec.options;
  e.size = need.value();
  e.keep_alive = opt_.keep_alive;
  Lease l = hold(e);
  l.load_time_ = std::chrono::duration_cast<Nanos>(SteadyClock::now() - t0);
  return l;
}

void ModelCache::release(const std::string& digest) {
  std::shared_ptr<Runner> drop;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(digest);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    if (--e.refs > 0) return;
    if (e.keep_alive == Nanos::zero()) {
      drop = std::move(e.runner);
      entries_.erase(it);
    } else if (e.keep_alive != kForever && e.keep_alive > Nanos::zero()) {
      e.expires = SteadyClock::now() + e.keep_alive;
      e.expires_wall = WallClock::now() + std::chrono::duration_cast<WallClock::duration>(e.keep_alive);
    }
  }
  cv_.notify_all();
}

void ModelCache::expire(const std::string& digest) {
  std::shared_ptr<Runner> drop;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(digest);
    if (it == entries_.end()) return;
    it->second.keep_alive = Nanos::zero();
    if (it->second.refs == 0) {
      drop = std::move(it->second.runner);
      entries_.erase(it);
    }
  }
}

std::vector<std::shared_ptr<Runner>> ModelCache::collect(bool evict_one_lru) {
  std::vector<std::shared_ptr<Runner>> out;
  const auto now = SteadyClock::now();
  auto lru = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    const bool idle = e.refs == 0;
    if (idle && e.keep_alive != kForever && e.keep_alive >= Nanos::zero() && e.expires <= now) {
      out.push_back(e.runner);
      it = entries_.erase(it);
      continue;
    }
    if (idle && (lru == entries_.end() || e.last_used < lru->second.last_used)) lru = it;
    ++it;
  }
  if (evict_one_lru && out.empty() && lru != entries_.end()) {
    out.push_back(lru->second.runner);
    entries_.erase(lru);
  }
  return out;
}

void ModelCache::janitor() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(200));
    auto dropped = collect(false);
    lock.unlock();
    dropped.clear();  // runners join their threads outside the lock
    lock.lock();
  }
}

std::vector<LoadedInfo> ModelCache::loaded() const {
  std::lock_guard lock(mu_);
  std::vector<LoadedInfo> out;
  for (const auto& [digest, e] : entries_) {
    LoadedInfo i;
    i.digest = digest;
    i.name = e.name;
    i.size = e.size;
    i.context_length = e.options.n_ctx;
    i.forever = e.keep_alive == kForever;
    std::tie(i.waiting, i.running) = e.runner->load();
    i.slots = static_cast<size_t>(e.options.parallel);
    // While in use, the time it would expire if it went idle now (Ollama shows a stale value).
    // Forever shows as 200 years from now (Ollama's 292 years pass the end of int64
    // nanoseconds since 1970).
    i.expires_at = e.refs > 0 || e.expires_wall == WallClock::time_point{}
                       ? WallClock::now() + (i.forever ? std::chrono::hours(24 * 365 * 200)
                                                       : std::chrono::duration_cast<WallClock::duration>(e.keep_alive))
                       : e.expires_wall;
    out.push_back(std::move(i));
  }
  std::sort(out.begin(), out.end(), [](const LoadedInfo& a, const LoadedInfo& b) { return a.expires_at > b.expires_at; });
  return out;
}

// Longer than this is forever: clocks plus such a duration stay inside int64 nanoseconds.
constexpr double kLongestSeconds = 100.0 * 365 * 86400;

Result<Nanos> parse_keep_alive(double seconds) {
  if (!std::isfinite(seconds)) return Error{"invalid keep_alive value"};
  if (seconds < 0 || seconds > kLongestSeconds) return kForever;
  return std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(seconds));
}

// Go's time.ParseDuration: [-+]? then one or more number+unit pairs (ns us µs ms s m h);
// "0" alone needs no unit.
Result<Nanos> parse_keep_alive(const std::string& text) {
  const std::string quoted = "\"" + text + "\"";
  std::string_view s = text;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Nanos::zero();
  if (s.empty()) return Error{"time: invalid duration " + quoted};
  long double total = 0;
  while (!s.empty()) {
    size_t k = 0;
    while (k < s.size() && (std::isdigit(static_cast<unsigned char>(s[k])) || s[k] == '.')) ++k;
    if (k == 0) return Error{"time: invalid duration " + quoted};
    const std::string num(s.substr(0, k));
    if (std::count(num.begin(), num.end(), '.') > 1 || num == ".") return Error{"time: invalid duration " + quoted};
    s.remove_prefix(k);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    const std::string unit(s.substr(0, u));
    s.remove_prefix(u);
    static const std::pair<const char*, long double> units[] = {{"ns", 1}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"\xCE\xBCs", 1e3},
                                                                {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    if (unit.empty()) return Error{"time: missing unit in duration " + quoted};
    const auto* it = std::find_if(std::begin(units), std::end(units), [&](const auto& p) { return unit == p.first; });
    if (it == std::end(units)) return Error{"time: unknown unit \"" + unit + "\" in duration " + quoted};
    total += std::stold(num) * it->second;
  }
  if (total > 9.2e18L) return Error{"time: invalid duration " + quoted};
  if (neg || total > kLongestSeconds * 1e9L) return kForever;  // negative: keep the model forever
  return Nanos(static_cast<int64_t>(total));
}

}  // namespace hearth::runner
