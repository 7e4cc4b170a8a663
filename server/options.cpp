#include "server/options.h"

#include <functional>
#include <map>

namespace hearth::server {

using tmpl::Value;

ModelOptions default_model_options() {
  ModelOptions o;
  model::SamplingOptions& s = o.gen.sampling;
  s.temperature = 0.8f;
  s.top_k = 40;
  s.top_p = 0.9f;
  s.min_p = 0.0f;
  s.typical_p = 1.0f;
  s.repeat_last_n = 64;
  s.repeat_penalty = 1.0f;
  s.presence_penalty = 0.0f;
  s.frequency_penalty = 0.0f;
  s.seed = -1;
  o.gen.num_predict = -1;
  o.gen.num_keep = 4;
  return o;
}

namespace {

enum class Kind { Int, Float, Bool, List, Bias };

struct Setter {
  Kind kind;
  std::function<void(const Value&, ModelOptions&)> set;
};

double number_of(const Value& v) { return v.kind == Value::Kind::Int ? static_cast<double>(v.i) : v.f; }

template <class T>
Setter integer(T ModelOptions::*field) {
  return {Kind::Int, [field](const Value& v, ModelOptions& o) { o.*field = static_cast<T>(number_of(v)); }};
}
template <class T>
Setter sampling_int(T model::SamplingOptions::*field) {
  return {Kind::Int, [field](const Value& v, ModelOptions& o) { o.gen.sampling.*field = static_cast<T>(number_of(v)); }};
}
Setter sampling_float(float model::SamplingOptions::*field) {
  return {Kind::Float, [field](const Value& v, ModelOptions& o) { o.gen.sampling.*field = static_cast<float>(number_of(v)); }};
}
Setter ignored(Kind k) {
  return {k, [](const Value&, ModelOptions&) {}};
}

// Every option Ollama's Options struct has; those a CPU engine has no use for (GPU
// layers, mmap) are type-checked and otherwise ignored.
const std::map<std::string, Setter, std::less<>>& setters() {
  using S = model::SamplingOptions;
  static const std::map<std::string, Setter, std::less<>> table = {
      {"num_ctx", integer(&ModelOptions::num_ctx)},
      {"num_batch", integer(&ModelOptions::num_batch)},
      {"num_thread", integer(&ModelOptions::num_thread)},
      {"num_gpu", ignored(Kind::Int)},
      {"main_gpu", ignored(Kind::Int)},
      {"use_mmap", ignored(Kind::Bool)},
      {"draft_num_predict", ignored(Kind::Int)},
      {"num_keep", {Kind::Int, [](const Value& v, ModelOptions& o) { o.gen.num_keep = static_cast<int>(number_of(v)); }}},
      {"num_predict", {Kind::Int, [](const Value& v, ModelOptions& o) { o.gen.num_predict = static_cast<int>(number_of(v)); }}},
      {"seed", sampling_int(&S::seed)},
      {"top_k", sampling_int(&S::top_k)},
      {"repeat_last_n", sampling_int(&S::repeat_last_n)},
      {"top_p", sampling_float(&S::top_p)},
      {"min_p", sampling_float(&S::min_p)},
      {"typical_p", sampling_float(&S::typical_p)},
      {"temperature", sampling_float(&S::temperature)},
      {"repeat_penalty", sampling_float(&S::repeat_penalty)},
      {"presence_penalty", sampling_float(&S::presence_penalty)},
      {"frequency_penalty", sampling_float(&S::frequency_penalty)},
      // Beyond Ollama: {"<token id>": bias in [-100, 100]} (what OpenAI's logit_bias becomes).
      {"logit_bias", {Kind::Bias, [](const Value& v, ModelOptions& o) {
                        o.gen.sampling.logit_bias.clear();
                        for (const auto& [id, b] : *v.map)
                          o.gen.sampling.logit_bias.emplace_back(std::stoi(id), static_cast<float>(number_of(b)));
                      }}},
      {"stop", {Kind::List, [](const Value& v, ModelOptions& o) {
                  o.gen.stop.clear();
                  for (const Value& s : *v.list) o.gen.stop.push_back(s.s);
                }}},
  };
  return table;
}

bool fits(Kind k, const Value& v) {
  switch (k) {
    case Kind::Int: case Kind::Float: return v.kind == Value::Kind::Int || v.kind == Value::Kind::Float;
    case Kind::Bool: return v.kind == Value::Kind::Bool;
    case Kind::List:
      if (v.kind != Value::Kind::List) return false;
      for (const Value& e : *v.list)
        if (e.kind != Value::Kind::String) return false;
      return true;
    case Kind::Bias:
      if (v.kind != Value::Kind::Map) return false;
      for (const auto& [id, b] : *v.map) {
        if (id.empty() || id.size() > 9 || id.find_first_not_of("0123456789") != std::string::npos) return false;
        if (b.kind != Value::Kind::Int && b.kind != Value::Kind::Float) return false;
        if (number_of(b) < -100 || number_of(b) > 100) return false;
      }
      return true;
  }
  return false;
}

const char* type_name(Kind k) {
  switch (k) {
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Bool: return "bool";
    case Kind::List: return "array";
    case Kind::Bias: return "object of token ids to numbers in [-100, 100]";
  }
  return "";
}

}  // namespace

Status apply_options(const Value& options, ModelOptions& out) {
  if (options.kind == Value::Kind::Nil) return {};
  if (options.kind != Value::Kind::Map) return Error{"options must be an object"};
  for (const auto& [key, v] : *options.map) {
    if (v.kind == Value::Kind::Nil) continue;
    auto it = setters().find(key);
    if (it == setters().end()) continue;  // unknown or deprecated: ignored, as Ollama does
    if (!fits(it->second.kind, v)) return Error{"option \"" + key + "\" must be of type " + type_name(it->second.kind)};
    it->second.set(v, out);
  }
  return {};
}

}  // namespace hearth::server
