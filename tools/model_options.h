// Option parsing shared by the verbs that run a model file in this process (run, eval,
// perplexity, imatrix, bench model).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "model/llama.h"
#include "tools/commands.h"

namespace hearth::cli {

// Reads "--flag value" options; returns false (after printing why) on a bad value.
struct Opts {
  const Args& a;
  size_t i = 0;
  std::string verb;
  bool bad = false;
  std::optional<std::string> value() {
    if (i + 1 >= a.size()) {
      std::fprintf(stderr, "hearth %s: %s needs a value\n", verb.c_str(), a[i].c_str());
      bad = true;
      return std::nullopt;
    }
    return a[++i];
  }
  template <class T> bool number(T& out) {
    auto v = value();
    if (!v) return false;
    char* end = nullptr;
    const double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end) {
      std::fprintf(stderr, "hearth %s: %s needs a number, not '%s'\n", verb.c_str(), a[i - 1].c_str(), v->c_str());
      bad = true;
      return false;
    }
    out = static_cast<T>(d);
    return true;
  }
};

// Reads the value of --kv-type (f16, f32 or q8_0) into kv; false, with a message, otherwise.
bool kv_type_option(Opts& o, model::KvType& kv);

// Loads a model for `verb`, refusing a KV cache type it cannot use; prints the error.
std::unique_ptr<model::Model> load_model(const char* verb, const std::string& path, model::KvType kv);

}  // namespace hearth::cli
