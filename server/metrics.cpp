#include "server/metrics.h"

#include <cstdio>

#include "server/name.h"

namespace hearth::server {

void Metrics::Histogram::add(double v) {
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (v <= kBuckets[i]) ++counts[i];
  ++count;
  sum += v;
}

void Metrics::request(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::generation(int prompt_tokens, int cached_tokens, int generated) {
  std::lock_guard lock(mu_);
  prompt_ += static_cast<uint64_t>(prompt_tokens);
  cached_ += static_cast<uint64_t>(cached_tokens);
  generated_ += static_cast<uint64_t>(generated);
  ++generations_;
}

void Metrics::first_token(double seconds) {
  std::lock_guard lock(mu_);
  ttft_.add(seconds);
}

void Metrics::inter_token(double seconds) {
  std::lock_guard lock(mu_);
  itl_.add(seconds);
}

namespace {

// A label value as the exposition format escapes it.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string Metrics::exposition(const std::vector<runner::LoadedInfo>& loaded) const {
  std::lock_guard lock(mu_);
  std::string out;
  family(out, "hearth_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (const auto& [key, n] : requests_)
    out += "hearth_requests_total{route=\"" + label(key.first) + "\",status=\"" + std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    family(out, name, "counter", help);
    out += std::string(name) + " " + std::to_string(v) + "\n";
  };
  counter("hearth_generations_total", "Generations finished.", generations_);
  counter("hearth_prompt_tokens_total", "Prompt tokens of finished generations, reused from the cache or not.", prompt_);
  counter("hearth_prompt_tokens_cached_total", "Prompt tokens reused from a slot's cache instead of evaluated.", cached_);
  counter("hearth_generated_tokens_total", "Tokens generated.", generated_);
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    family(out, name, "histogram", help);
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += std::string(name) + "_bucket{le=\"" + number(kBuckets[i]) + "\"} " + std::to_string(h.counts[i]) + "\n";
    out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    out += std::string(name) + "_sum " + number(h.sum) + "\n" + name + "_count " + std::to_string(h.count) + "\n";
  };
  histogram("hearth_time_to_first_token_seconds", "From a request's arrival to its first generated token.", ttft_);
  histogram("hearth_inter_token_latency_seconds", "Between consecutive generated tokens of a streamed answer.", itl_);
  family(out, "hearth_loaded_models", "gauge", "Models loaded.");
  out += "hearth_loaded_models " + std::to_string(loaded.size()) + "\n";
  auto per_model = [&](const char* name, const char* help, auto value) {
    family(out, name, "gauge", help);
    for (const runner::LoadedInfo& m : loaded)
      out += std::string(name) + "{model=\"" + label(ModelName::parse(m.name).shortest()) + "\"} " + std::to_string(value(m)) + "\n";
  };
  per_model("hearth_loaded_model_bytes", "Memory estimate of a loaded model (weights, KV cache, scratch).", [](const auto& m) { return m.size; });
  per_model("hearth_queue_depth", "Requests waiting for a slot.", [](const auto& m) { return m.waiting; });
  per_model("hearth_busy_slots", "KV slots decoding a sequence.", [](const auto& m) { return m.running; });
  per_model("hearth_slots", "KV slots (OLLAMA_NUM_PARALLEL).", [](const auto& m) { return m.slots; });
  return out;
}

}  // namespace hearth::server
