#include "server/create.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gguf/gguf.h"
#include "quant/ftype.h"
#include "quant/model_quantizer.h"
#include "server/modelfile.h"
#include "server/prompt.h"

namespace hearth::server {

namespace fs = std::filesystem;
using tmpl::Value;

namespace {

constexpr const char* kModel = "application/vnd.ollama.image.model";
constexpr const char* kProjector = "application/vnd.ollama.image.projector";
constexpr const char* kAdapter = "application/vnd.ollama.image.adapter";
constexpr const char* kTemplate = "application/vnd.ollama.image.template";
constexpr const char* kSystem = "application/vnd.ollama.image.system";
constexpr const char* kLicense = "application/vnd.ollama.image.license";
constexpr const char* kParams = "application/vnd.ollama.image.params";
constexpr const char* kMessages = "application/vnd.ollama.image.messages";

std::string jstr(std::string_view s) { return tmpl::json_quote(s); }
std::string status_line(const std::string& s) { return "{\"status\":" + jstr(s) + "}"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A key of a JSON object, matched case-insensitively as Go's decoder does.
const Value* key(const Value& obj, std::string_view k) {
  if (obj.kind != Value::Kind::Map) return nullptr;
  const Value* found = nullptr;
  for (const auto& [name, v] : *obj.map) {
    if (name.size() != k.size()) continue;
    bool same = true;
    for (size_t i = 0; same && i < k.size(); ++i)
      same = std::tolower(static_cast<unsigned char>(name[i])) == std::tolower(static_cast<unsigned char>(k[i]));
    if (same && (!found || name == k)) found = &v;
  }
  return found;
}

// llama.cpp's general.file_type names, as Ollama reports them.
std::string file_type_name(uint64_t ft) {
  static const std::map<uint64_t, std::string> names = {
      {0, "F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"}, {9, "Q5_1"}, {10, "Q2_K"},
      {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"},
      {17, "Q5_K_M"}, {18, "Q6_K"}, {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"}, {25, "IQ4_NL"}, {26, "IQ3_S"}, {27, "IQ3_M"}, {28, "IQ2_S"}, {29, "IQ2_M"},
      {30, "IQ4_XS"}, {31, "IQ1_M"}, {32, "BF16"}, {36, "TQ1_0"}, {37, "TQ2_0"}};
  auto it = names.find(ft);
  return it == names.end() ? "unknown" : it->second;
}

// What a GGUF is, for the manifest and the config blob.
struct GgufFacts {
  std::string media = kModel;
  std::string arch;
  std::string file_type;  // "F16", "Q4_K_M", …
  uint64_t params = 0;
  std::string chat_template;
};

Result<GgufFacts> inspect(const fs::path& p, const std::string& shown) {
  auto g = gguf::GgufFile::open(p.string());
  if (!g) return Error{"invalid GGUF file \"" + shown + "\": " + g.message()};
  const gguf::Metadata& md = g.value().metadata;
  GgufFacts f;
  if (auto a = md.get_string("general.architecture")) f.arch = a.value();
  for (const gguf::TensorInfo& t : g.value().tensors) f.params += t.n_elements;
  if (auto ft = md.get_uint("general.file_type")) {
    f.file_type = file_type_name(ft.value());
  } else {
    // No general.file_type: the type of the largest tensor, as a file type name.
    uint64_t best = 0;
    for (const gguf::TensorInfo& t : g.value().tensors)
      if (t.n_elements >= best) {
        best = t.n_elements;
        std::string n(gguf::type_info(t.type).name);
        std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        f.file_type = n;
      }
  }
  if (auto ct = md.get_string("tokenizer.chat_template")) f.chat_template = ct.value();
  const std::string type = md.get_string("general.type").ok() ? md.get_string("general.type").value() : "";
  if (type == "adapter") f.media = kAdapter;
  else if (f.arch == "clip" || type == "mmproj" || type == "projector") f.media = kProjector;
  return f;
}

bool relative_path(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.find('\\') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

std::string supported_types() {
  std::string s;
  for (const quant::FileTypeInfo& t : quant::file_types()) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

bool float_source(const std::string& ft) { return ft == "F32" || ft == "F16" || ft == "BF16"; }

}  // namespace

std::string human_number(uint64_t n) {
  char b[32];
  auto whole = [](double x) { return x == std::floor(x); };
  if (n >= 1000000000ULL) {
    const double x = static_cast<double>(n) / 1e9;
    std::snprintf(b, sizeof b, whole(x) ? "%.0fB" : "%.1fB", x);
  } else if (n >= 1000000ULL) {
    const double x = static_cast<double>(n) / 1e6;
    std::snprintf(b, sizeof b, whole(x) ? "%.0fM" : "%.2fM", x);
  } else if (n >= 1000ULL) {
    std::snprintf(b, sizeof b, "%.0fK", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(b, sizeof b, "%llu", static_cast<unsigned long long>(n));
  }
  return b;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

Result<CreateRequest> parse_create_request(std::string_view json) {
  auto doc = tmpl::from_json(json);
  if (!doc) return Error{"invalid JSON body: " + doc.message().substr(std::string("invalid JSON: ").size())};
  const Value& v = doc.value();
  if (v.kind != Value::Kind::Map) return Error{"invalid JSON body: expected an object"};
  CreateRequest r;
  auto str = [&](std::initializer_list<const char*> names, std::string& out, bool* present = nullptr) -> Status {
    for (const char* n : names)
      if (const Value* x = key(v, n); x && x->kind != Value::Kind::Nil) {
        if (x->kind != Value::Kind::String) return Error{std::string("invalid value for '") + n + "': expected a string"};
        if (out.empty()) out = x->s;
        if (present) *present = true;
      }
    return {};
  };
  auto digests = [&](const char* name, std::vector<std::pair<std::string, std::string>>& out) -> Status {
    const Value* x = key(v, name);
    if (!x || x->kind == Value::Kind::Nil) return {};
    if (x->kind != Value::Kind::Map) return Error{std::string("invalid value for '") + name + "': expected an object"};
    for (const auto& [file, d] : *x->map) {
      if (d.kind != Value::Kind::String) return Error{std::string("invalid value for '") + name + "': digests are strings"};
      out.emplace_back(file, d.s);
    }
    return {};
  };
  for (Status s : {str({"model", "name"}, r.model), str({"from"}, r.from),
                   str({"template"}, r.template_text, &r.has_template), str({"system"}, r.system, &r.has_system),
                   str({"quantize", "quantization"}, r.quantize), digests("files", r.files), digests("adapters", r.adapters)})
    if (!s) return s.error();
  if (const Value* l = key(v, "license"); l && l->kind != Value::Kind::Nil) {
    r.has_license = true;
    if (l->kind == Value::Kind::String) {
      r.license.push_back(l->s);
    } else if (l->kind == Value::Kind::List) {
      for (const Value& e : *l->list) {
        if (e.kind != Value::Kind::String) return Error{"invalid value for 'license': expected a string or a list of strings"};
        r.license.push_back(e.s);
      }
    } else {
      return Error{"invalid value for 'license': expected a string or a list of strings"};
    }
  }
  if (const Value* p = key(v, "parameters"); p && p->kind != Value::Kind::Nil) {
    if (p->kind != Value::Kind::Map) return Error{"invalid value for 'parameters': expected an object"};
    r.parameters = *p;
  }
  if (const Value* m = key(v, "messages"); m && m->kind != Value::Kind::Nil) {
    if (m->kind != Value::Kind::List) return Error{"invalid value for 'messages': expected a list"};
    tmpl::List msgs;
    for (const Value& e : *m->list) {
      const Value* role = key(e, "role");
      const Value* content = key(e, "content");
      if (!role || role->kind != Value::Kind::String) return Error{"invalid value for 'messages': every message needs a role"};
      tmpl::Map one;
      one["role"] = *role;
      one["content"] = content && content->kind == Value::Kind::String ? *content : Value::str("");
      msgs.push_back(Value::of_map(std::move(one)));
    }
    r.messages = Value::of_list(std::move(msgs));
  }
  if (const Value* s = key(v, "stream"); s && s->kind == Value::Kind::Bool) r.stream = s->b;
  return r;
}

std::optional<CreateError> ModelCreator::validate(const CreateRequest& r) {
  const ModelName name = ModelName::parse(r.model);
  if (r.model.empty() || !name.valid()) return CreateError{400, "invalid model name"};
  if (r.from.empty() && r.files.empty()) return CreateError{400, "neither 'from' or 'files' was specified"};
  std::string source_type;
  for (const auto* list : {&r.files, &r.adapters})
    for (const auto& [file, digest] : *list) {
      if (!relative_path(file)) return CreateError{400, "file path must be relative"};
      if (digest.empty() || !Store::valid_digest(digest)) return CreateError{400, "invalid digest format"};
      if (!store_.has_blob(digest)) return CreateError{400, "blob \"" + digest + "\" for file \"" + file + "\" not found; upload it with POST /api/blobs/" + digest};
      auto facts = inspect(store_.blob_path(digest), file);
      if (!facts) return CreateError{400, facts.message()};
      if (facts.value().media == kModel) source_type = facts.value().file_type;
    }
  if (r.adapters.size() > 1) return CreateError{400, "only one adapter is currently supported"};
  if (!r.from.empty()) {
    const ModelName from = ModelName::parse(r.from);
    if (!from.valid()) return CreateError{400, "invalid from name \"" + r.from + "\""};
    auto base = store_.find(from);
    if (!base) return CreateError{404, "model '" + r.from + "' not found"};
    if (source_type.empty())
      if (const Layer* m = base.value().layer(kModel)) {
        auto facts = inspect(store_.blob_path(m->digest), r.from);
        if (!facts) return CreateError{400, facts.message()};
        source_type = facts.value().file_type;
      }
  }
  if (r.has_template) {
    if (auto t = parse_model_template(r.template_text); !t) return CreateError{400, "template error: " + t.message()};
  }
  if (!r.quantize.empty()) {
    auto ft = quant::parse_file_type(r.quantize);
    if (!ft) return CreateError{400, "unsupported quantization type " + r.quantize + " - supported types are " + supported_types()};
    if (!float_source(source_type)) return CreateError{400, "quantization is only supported for F16, BF16 and F32 models"};
  }
  if (r.parameters.kind == Value::Kind::Map)
    for (const auto& entry : *r.parameters.map)
      if (!known_option(entry.first)) return CreateError{400, "unknown parameter '" + entry.first + "'"};
  return std::nullopt;
}

Status ModelCreator::run(const CreateRequest& r, const CreateProgress& progress, const std::atomic<bool>* cancel) {
  const ModelName name = ModelName::parse(r.model);
  std::vector<Layer> layers;
  Value config = Value::of_map();
  std::optional<Manifest> base;
  std::string base_params, chat_template;
  GgufFacts model_facts;
  bool have_model_facts = false;
  // Every blob the manifest will reference is pinned before it is used, so deleting another
  // model that shares it cannot remove it meanwhile (write_manifest checks them all again).
  Store::Pins pins(store_);

  // 1. The base: an existing model's layers, or the uploaded GGUF files.
  if (!r.from.empty()) {
    auto b = store_.find(ModelName::parse(r.from));
    if (!b) return b.error();
    base = b.value();
    pins.add(base->config.digest);
    for (Layer l : base->layers) {
      pins.add(l.digest);
      if (l.media_type == kModel || l.media_type == kProjector || l.media_type == kAdapter) {
        if (l.from.empty()) l.from = base->name.shortest();
      }
      if (l.media_type == kParams) base_params = store_.blob_text(l.digest);
      layers.push_back(l);
    }
    if (auto c = tmpl::from_json(store_.blob_text(base->config.digest)); c && c.value().kind == Value::Kind::Map)
      config = c.value();
    if (const Layer* m = base->layer(kModel)) {
      auto facts = inspect(store_.blob_path(m->digest), r.from);
      if (!facts) return facts.error();
      model_facts = facts.value();
      have_model_facts = true;
      chat_template = facts.value().chat_template;
    }
  }
  for (const auto* list : {&r.files, &r.adapters})
    for (const auto& [file, digest] : *list) {
      progress(status_line("parsing GGUF"));
      pins.add(digest);
      auto facts = inspect(store_.blob_path(digest), file);
      if (!facts) return facts.error();
      Layer l;
      l.media_type = list == &r.adapters ? kAdapter : facts.value().media;
      l.digest = Store::canonical_digest(digest);
      l.size = static_cast<int64_t>(fs::file_size(store_.blob_path(digest)));
      if (l.media_type == kModel) {
        // A new model replaces the base's.
        layers.erase(std::remove_if(layers.begin(), layers.end(), [](const Layer& x) { return x.media_type == kModel; }),
                     layers.end());
        model_facts = facts.value();
        have_model_facts = true;
        chat_template = facts.value().chat_template;
      }
      layers.push_back(l);
    }

  // 2. Quantization of the model layer.
  if (!r.quantize.empty()) {
    auto it = std::find_if(layers.begin(), layers.end(), [](const Layer& l) { return l.media_type == kModel; });
    if (it == layers.end()) return Error{"no model to quantize"};
    const quant::FileTypeInfo ft = *quant::parse_file_type(r.quantize);
    const std::string target(ft.name);
    if (target != model_facts.file_type) {
      const std::string what = "quantizing " + model_facts.file_type + " model to " + target;
      progress(status_line(what));
      // The output is at most the source's size: it must fit beside the disk reserve.
      if (auto full = store_.lacks_space(fs::file_size(store_.blob_path(it->digest)))) return Error{*full};
      const fs::path tmp = store_.temp_blob_path("quantize");
      quant::QuantizeOptions opt;
      opt.ftype = ft.ftype;
      opt.cancel = cancel;
      opt.turns = turns_;
      // Progress in bytes of tensor data read, against the source's size.
      const uint64_t total = fs::file_size(store_.blob_path(it->digest));
      uint64_t done = 0;
      auto q = quant::quantize_model(store_.blob_path(it->digest).string(), tmp.string(), opt, [&](const quant::Progress& p) {
        done = std::min(total, done + p.in_bytes);
        progress("{\"status\":" + jstr(what) + ",\"digest\":\"0000000000000000000\",\"total\":" + std::to_string(total) +
                 ",\"completed\":" + std::to_string(done) + "}");
      });
      if (!q) return Error{"quantizing: " + q.message()};
      progress(status_line("verifying conversion"));
      auto facts = inspect(tmp, "quantized model");
      if (!facts) {
        std::error_code ec;
        fs::remove(tmp, ec);
        return facts.error();
      }
      auto digest = store_.adopt_file(tmp);
      if (!digest) return digest.error();
      pins.add(digest.value());
      if (!store_.has_blob(digest.value())) return Error{"quantized blob " + digest.value() + " vanished"};
      it->digest = digest.value();
      it->size = static_cast<int64_t>(fs::file_size(store_.blob_path(digest.value())));
      it->from.clear();
      model_facts = facts.value();
    }
  }

  // 3. Text and JSON layers, replacing the base's of the same kind.
  auto replace = [&](const char* media, const std::vector<std::string>& blobs) -> Status {
    layers.erase(std::remove_if(layers.begin(), layers.end(), [&](const Layer& x) { return x.media_type == media; }),
                 layers.end());
    for (const std::string& bytes : blobs) {
      const std::string hex = sha256_hex(bytes);
      Layer l;
      l.media_type = media;
      l.digest = "sha256:" + hex;
      l.size = static_cast<int64_t>(bytes.size());
      pins.add(l.digest);
      if (!store_.has_blob(l.digest)) {
        auto d = store_.write_blob_bytes(bytes);
        if (!d) return d.error();
      }
      layers.push_back(l);
    }
    return {};
  };
  std::string detected;
  Value params = Value::of_map();
  if (!base_params.empty())
    if (auto p = tmpl::from_json(base_params); p && p.value().kind == Value::Kind::Map) params = p.value();
  const bool has_template_layer =
      std::any_of(layers.begin(), layers.end(), [](const Layer& l) { return l.media_type == kTemplate; });
  if (r.has_template) {
    if (Status s = replace(kTemplate, {r.template_text}); !s) return s;
  } else if (!has_template_layer && !chat_template.empty() && !templates_.empty()) {
    // Ollama's detection: the known chat template nearest by edit distance, if under 100.
    if (auto index = tmpl::from_json(slurp(templates_ / "index.json")); index && index.value().kind == Value::Kind::List) {
      size_t best = SIZE_MAX;
      for (const Value& e : *index.value().list) {
        const size_t d = edit_distance(chat_template, e.field("template").s);
        if (d < best) {
          best = d;
          detected = e.field("name").s;
        }
      }
      if (best >= 100) detected.clear();
    }
    if (!detected.empty()) {
      const std::string text = slurp(templates_ / (detected + ".gotmpl"));
      if (Status s = replace(kTemplate, {text}); !s) return s;
      if (auto p = tmpl::from_json(slurp(templates_ / (detected + ".json"))); p && p.value().kind == Value::Kind::Map)
        for (const auto& [k, v] : *p.value().map) (*params.map)[k] = v;
    }
  }
  if (r.has_system && !r.system.empty())
    if (Status s = replace(kSystem, {r.system}); !s) return s;
  if (r.has_license)
    if (Status s = replace(kLicense, r.license); !s) return s;
  bool params_changed = !detected.empty();
  if (r.parameters.kind == Value::Kind::Map) {
    for (const auto& [k, v] : *r.parameters.map) {
      if (v.kind == Value::Kind::Nil) continue;
      Value val = v;
      if (k == "stop" && v.kind == Value::Kind::String) val = Value::of_list({v});  // stop is always a list
      (*params.map)[k] = val;
      params_changed = true;
    }
  }
  if (params_changed && !params.map->empty())
    if (Status s = replace(kParams, {tmpl::to_json(params)}); !s) return s;
  if (r.messages.kind == Value::Kind::List && !r.messages.list->empty()) {
    // api.Message's field order: role, then content.
    std::string msgs = "[";
    for (const Value& m : *r.messages.list)
      msgs += (msgs.size() > 1 ? "," : "") + std::string("{\"role\":") + jstr(m.field("role").s) + ",\"content\":" + jstr(m.field("content").s) + "}";
    if (Status s = replace(kMessages, {msgs + "]"}); !s) return s;
  }

  // Layers in Ollama's order: model, projectors, adapters, then the rest as added.
  std::stable_sort(layers.begin(), layers.end(), [](const Layer& a, const Layer& b) {
    auto rank = [](const Layer& l) { return l.media_type == kModel ? 0 : l.media_type == kProjector ? 1 : l.media_type == kAdapter ? 2 : 3; };
    return rank(a) < rank(b);
  });

  // 4. The config blob.
  if (have_model_facts) {
    tmpl::Map& c = *config.map;
    c["model_format"] = Value::str("gguf");
    c["model_family"] = Value::str(model_facts.arch);
    c["model_families"] = Value::of_list({Value::str(model_facts.arch)});
    c["model_type"] = Value::str(human_number(model_facts.params));
    c["file_type"] = Value::str(model_facts.file_type);
  }
  const auto field = [&](const char* k) {
    const Value& v = config.field(k);
    return v.kind == Value::Kind::Nil ? std::string("\"\"") : tmpl::to_json(v);
  };
  // ConfigV2's field order, then any other fields the base carried.
  std::string cfg = "{\"model_format\":" + field("model_format") + ",\"model_family\":" + field("model_family") +
                    ",\"model_families\":" + (config.field("model_families").kind == Value::Kind::Nil ? std::string("null") : tmpl::to_json(config.field("model_families"))) +
                    ",\"model_type\":" + field("model_type") + ",\"file_type\":" + field("file_type");
  static const std::set<std::string> fixed = {"model_format", "model_family", "model_families", "model_type", "file_type",
                                              "architecture", "os", "rootfs"};
  for (const auto& [k, v] : *config.map)
    if (!fixed.count(k)) cfg += "," + jstr(k) + ":" + tmpl::to_json(v);
  cfg += ",\"architecture\":\"amd64\",\"os\":\"linux\"}";
  pins.add("sha256:" + sha256_hex(cfg));
  auto cfg_digest = store_.write_blob_bytes(cfg);
  if (!cfg_digest) return cfg_digest.error();

  // 5. Progress per layer, the manifest, and the old manifest's leftovers.
  for (const Layer& l : layers) {
    if (!detected.empty() && l.media_type == kTemplate) {
      progress(status_line("using autodetected template " + detected));
      continue;
    }
    const bool reused = (base && std::any_of(base->layers.begin(), base->layers.end(), [&](const Layer& b) { return b.digest == l.digest; })) ||
                        std::any_of(r.files.begin(), r.files.end(), [&](const auto& f) { return Store::canonical_digest(f.second) == l.digest; });
    progress(status_line((reused ? "using existing layer " : "creating new layer ") + l.digest));
  }
  std::string manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
                         "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":" +
                         jstr(cfg_digest.value()) + ",\"size\":" + std::to_string(cfg.size()) + "},\"layers\":[";
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    manifest += (i ? "," : "") + std::string("{\"mediaType\":") + jstr(l.media_type) + ",\"digest\":" + jstr(l.digest) +
                ",\"size\":" + std::to_string(l.size);
    if (!l.from.empty()) manifest += ",\"from\":" + jstr(l.from);
    manifest += "}";
  }
  manifest += "]}\n";
  progress(status_line("writing manifest"));
  // A case variant of an existing name reuses its spelling (one manifest per model).
  ModelName target = name;
  std::vector<std::string> old_blobs;
  if (auto existing = store_.find(name)) {
    target = existing.value().name;
    old_blobs.push_back(existing.value().config.digest);
    for (const Layer& l : existing.value().layers) old_blobs.push_back(l.digest);
  }
  if (Status s = store_.write_manifest(target, manifest); !s) return s;
  pins.release();  // the manifest holds them now; the replaced one's may go
  store_.drop_unreferenced(old_blobs);
  progress(status_line("success"));
  return {};
}

}  // namespace hearth::server
