#include "tools/model_options.h"

namespace hearth::cli {

bool kv_type_option(Opts& o, model::KvType& kv) {
  auto v = o.value();
  if (!v) return false;
  if (*v == "f16") kv = model::KvType::F16;
  else if (*v == "f32") kv = model::KvType::F32;
  else if (*v == "q8_0") kv = model::KvType::Q8_0;
  else {
    std::fprintf(stderr, "hearth %s: --kv-type must be f16, f32 or q8_0, not '%s'\n", o.verb.c_str(), v->c_str());
    return false;
  }
  return true;
}

std::unique_ptr<model::Model> load_model(const char* verb, const std::string& path, model::KvType kv) {
  auto m = model::Model::load(path);
  if (!m) {
    std::fprintf(stderr, "hearth %s: %s\n", verb, m.message().c_str());
    return nullptr;
  }
  if (std::string why = model::Context::unsupported(*m.value(), kv); !why.empty()) {
    std::fprintf(stderr, "hearth %s: %s: %s\n", verb, path.c_str(), why.c_str());
    return nullptr;
  }
  return std::move(m.value());
}

}  // namespace hearth::cli
