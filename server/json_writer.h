// A small JSON writer: objects, arrays, keys and values appended in order, strings
// escaped as Go's encoding/json writes them (so responses match Ollama's byte for byte).
// Keys and values alternate inside objects; the caller keeps the nesting balanced.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/gotemplate.h"

namespace hearth::server {

class JsonWriter {
 public:
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k) {
    comma();
    out_ += tmpl::json_quote(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& str(std::string_view v) { return raw(tmpl::json_quote(v)); }
  JsonWriter& num(int64_t v) { return raw(std::to_string(v)); }
  JsonWriter& num(double v) {
    if (!std::isfinite(v)) return raw("null");
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return raw(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  // A float32 in its shortest form (as Go encodes a float32), e.g. 0.2972847.
  JsonWriter& num(float v) {
    if (!std::isfinite(v)) return raw("null");
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return raw(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  JsonWriter& boolean(bool v) { return raw(v ? "true" : "false"); }
  // Already-encoded JSON text as one value.
  JsonWriter& raw(std::string_view json) {
    comma();
    out_ += json;
    return *this;
  }
  const std::string& text() const { return out_; }

 private:
  JsonWriter& open(char c) {
    comma();
    out_ += c;
    first_.push_back(true);
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    first_.pop_back();
    return *this;
  }
  // A separator before every element but the first of its container, and never right after a key.
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace hearth::server
