#include "quant/quantize_options.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>

namespace hearth::quant {

Result<TensorTypeRule> parse_tensor_type_rule(std::string_view arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string_view::npos) return Error{"malformed tensor type '" + std::string(arg) + "' (want NAME=TYPE)"};
  if (eq == 0) return Error{"missing tensor name in '" + std::string(arg) + "'"};
  if (eq + 1 == arg.size()) return Error{"missing quantization type in '" + std::string(arg) + "'"};
  TensorTypeRule r;
  r.pattern = std::string(arg.substr(0, eq));
  std::transform(r.pattern.begin(), r.pattern.end(), r.pattern.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string type(arg.substr(eq + 1));
  auto t = gguf::type_from_name(type);
  if (!t) return Error{"invalid quantization type '" + type + "' in '" + std::string(arg) + "'"};
  r.type = *t;
  try {
    std::regex check(r.pattern);
  } catch (const std::regex_error& e) {
    return Error{"invalid tensor name pattern '" + r.pattern + "': " + e.what()};
  }
  return r;
}

Result<KvOverride> parse_kv_override(std::string_view arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq >= 128)
    return Error{"malformed KV override '" + std::string(arg) + "' (want KEY=TYPE:VALUE, a key of 1-127 characters)"};
  KvOverride o{std::string(arg.substr(0, eq)), {}};
  const std::string rest(arg.substr(eq + 1));
  auto value_of = [&](const char* prefix) -> std::optional<std::string> {
    const size_t n = std::strlen(prefix);
    if (rest.compare(0, n, prefix) != 0) return std::nullopt;
    return rest.substr(n);
  };
  if (auto v = value_of("int:")) {
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || *end || errno == ERANGE || std::llabs(x) > 0xffffffffLL)
      return Error{"invalid int value '" + *v + "' in KV override '" + std::string(arg) + "'"};
    o.value = gguf::Value::of<uint32_t>(static_cast<uint32_t>(std::llabs(x)));
  } else if (auto v = value_of("float:")) {
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (v->empty() || *end) return Error{"invalid float value '" + *v + "' in KV override '" + std::string(arg) + "'"};
    o.value = gguf::Value::of<float>(static_cast<float>(x));
  } else if (auto v = value_of("bool:")) {
    if (*v != "true" && *v != "false") return Error{"invalid boolean value for KV override '" + std::string(arg) + "'"};
    o.value = gguf::Value::of<bool>(*v == "true");
  } else if (auto v = value_of("str:")) {
    if (v->size() > 127) return Error{"malformed KV override '" + o.key + "': the value cannot exceed 127 characters"};
    o.value = gguf::Value::string(*v);
  } else {
    return Error{"invalid type for KV override '" + std::string(arg) + "' (int, float, bool or str)"};
  }
  return o;
}

Result<std::vector<int>> parse_layer_list(std::string_view arg) {
  std::vector<int> v;
  size_t at = 0;
  while (at <= arg.size()) {
    const size_t comma = std::min(arg.find(',', at), arg.size());
    const std::string id(arg.substr(at, comma - at));
    char* end = nullptr;
    const long x = std::strtol(id.c_str(), &end, 10);
    if (id.empty() || *end || x < 0 || x > 1000000) return Error{"invalid layer id '" + id + "'"};
    v.push_back(static_cast<int>(x));
    at = comma + 1;
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

void filter_imatrix(Imatrix& m, const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  auto any_in = [](const std::string& name, const std::vector<std::string>& parts) {
    return std::any_of(parts.begin(), parts.end(), [&](const std::string& p) { return name.find(p) != std::string::npos; });
  };
  for (auto it = m.values.begin(); it != m.values.end();) {
    const bool keep = (include.empty() || any_in(it->first, include)) && !any_in(it->first, exclude);
    it = keep ? std::next(it) : m.values.erase(it);
  }
}

}  // namespace hearth::quant
