#include "server/api.h"

#include "server/http.h"
#include <simdjson.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <limits>
#include <algorithm>
#include <mutex>
#include <set>
#include <atomic>
#include <sstream>

#include "gguf/gguf.h"
#include "server/anthropic.h"
#include "server/create.h"
#include "server/embed.h"
#include "server/gotemplate.h"
#include "server/guard.h"
#include "server/json_writer.h"
#include "server/openai.h"
#include "server/rerank.h"
#include "server/responses.h"
#include "server/prompt.h"
#include "server/store.h"
#include "server/tokens.h"
#include "server/transfer.h"

namespace hearth::server {
namespace {

namespace fs = std::filesystem;

// A JSON string as Go's encoding/json writes it (HTML-safe escapes included).
std::string q(std::string_view s) { return tmpl::json_quote(s); }

void json(http::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json; charset=utf-8");
}
void error(http::Response& res, int status, const std::string& message) {
  json(res, status, "{\"error\":" + q(message) + "}");
}

// RFC 3339 with nanoseconds in the local zone, as Go marshals time.Time.
std::string rfc3339(fs::file_time_type t) {
  const auto sys = std::chrono::file_clock::to_sys(t);
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sys.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  const long frac = static_cast<long>(ns % 1000000000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (frac > 0) {
    char f[16];
    std::snprintf(f, sizeof f, ".%09ld", frac);
    std::string digits = f;
    while (digits.back() == '0') digits.pop_back();
    s += digits;
  }
  if (tm.tm_gmtoff == 0) return s + "Z";
  const long off = tm.tm_gmtoff / 60;
  std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", off < 0 ? '-' : '+', std::labs(off) / 60, std::labs(off) % 60);
  return s + buf;
}

std::string rfc3339_sys(std::chrono::system_clock::time_point t) {
  return rfc3339(std::chrono::file_clock::from_sys(t));
}

int64_t unix_seconds(fs::file_time_type t) {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::file_clock::to_sys(t).time_since_epoch())
      .count();
}

// A JSON request body; empty or malformed bodies answer 400. Keys match
// case-insensitively, the last duplicate wins, unknown keys are ignored.
class Body {
 public:
  bool parse(const http::Request& req, http::Response& res) {
    if (req.body.empty()) {
      error(res, 400, "missing request body");
      return false;
    }
    text_ = req.body;
    if (auto err = parser_.parse(text_).get(doc_); err) {
      error(res, 400, std::string("invalid JSON body: ") + simdjson::error_message(err));
      return false;
    }
    return true;
  }
  bool flag(std::string_view key, bool absent = false) const {
    bool out = absent;
    each(key, [&](simdjson::dom::element v) { bool b; if (!v.get(b)) out = b; });
    return out;
  }
  std::string str(std::string_view key) const {
    std::string out;
    each(key, [&](simdjson::dom::element v) { std::string_view sv; if (!v.get(sv)) out = sv; });
    return out;
  }

 private:
  // Calls f on every top-level value whose key equals `key` (lower case) ignoring case,
  // in order, so the last duplicate wins.
  template <class F>
  void each(std::string_view key, F f) const {
    simdjson::dom::object obj;
    if (doc_.get(obj)) return;
    for (auto field : obj) {
      std::string_view k = field.key;
      bool same = k.size() == key.size();
      for (size_t i = 0; same && i < k.size(); ++i) same = std::tolower(static_cast<unsigned char>(k[i])) == key[i];
      if (same) f(field.value);
    }
  }
  simdjson::dom::parser parser_;
  simdjson::dom::element doc_;
  std::string text_;
};

// A GGUF value as JSON (model_info): arrays longer than 5 become [] unless verbose.
std::string value_json(const gguf::Value& v, bool verbose);

std::string scalar_json(gguf::ValueType t, uint64_t bits) {
  using VT = gguf::ValueType;
  char buf[64];
  switch (t) {
    case VT::U8: case VT::U16: case VT::U32: case VT::U64: return std::to_string(bits);
    case VT::I8: return std::to_string(static_cast<int8_t>(bits));
    case VT::I16: return std::to_string(static_cast<int16_t>(bits));
    case VT::I32: return std::to_string(static_cast<int32_t>(bits));
    case VT::I64: return std::to_string(static_cast<int64_t>(bits));
    case VT::BOOL: return bits ? "true" : "false";
    case VT::F32: {
      float f;
      uint32_t b = static_cast<uint32_t>(bits);
      std::memcpy(&f, &b, 4);
      if (!std::isfinite(f)) return "null";
      auto r = std::to_chars(buf, buf + sizeof buf, f);
      return std::string(buf, r.ptr);
    }
    case VT::F64: {
      double d;
      std::memcpy(&d, &bits, 8);
      if (!std::isfinite(d)) return "null";
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      return std::string(buf, r.ptr);
    }
    default: return "null";
  }
}

std::string value_json(const gguf::Value& v, bool verbose) {
  if (v.type() == gguf::ValueType::STRING) return q(v.str());
  if (v.type() != gguf::ValueType::ARRAY) return scalar_json(v.type(), v.raw_bits());
  const gguf::Array& a = v.arr();
  if (a.count > 5 && !verbose) return "[]";
  std::string o = "[";
  for (uint64_t i = 0; i < a.count; ++i) {
    if (i) o += ",";
    if (a.elem == gguf::ValueType::STRING) {
      o += q(a.strings[i]);
    } else if (a.elem == gguf::ValueType::ARRAY) {
      o += value_json(a.arrays[i], verbose);
    } else {
      uint64_t bits = 0;
      const size_t sz = gguf::scalar_size(a.elem);
      std::memcpy(&bits, a.raw.data() + i * sz, sz);
      o += scalar_json(a.elem, bits);
    }
  }
  return o + "]";
}

// A value as a Modelfile's """…""" string. The grammar has no escapes, so a """ inside (or
// a " just before the closing quotes) would end the value early and let the rest be read as
// instructions (a `FROM` line injected through a system prompt): such quotes get a
// backslash, which keeps the value one value.
std::string triple_quoted(std::string text) {
  for (size_t at = 0; (at = text.find("\"\"\"", at)) != std::string::npos; at += 4) text.replace(at, 3, "\"\"\\\"");
  if (!text.empty() && text.back() == '"') text.replace(text.size() - 1, 1, "\\\"");
  return "\"\"\"" + text + "\"\"\"";
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

uint64_t uint_or_zero(const gguf::Metadata& md, const std::string& key) {
  auto v = md.get_uint(key);
  return v.ok() ? v.value() : 0;
}

}  // namespace

Result<ServeOptions> serve_options_from_env() {
  ServeOptions o;
  const char* h = std::getenv("HEARTH_HOST");
  if (!h || !*h) h = std::getenv("OLLAMA_HOST");
  if (h && *h) {
    std::string s = h;
    if (auto p = s.find("://"); p != std::string::npos) s = s.substr(p + 3);
    while (!s.empty() && s.back() == '/') s.pop_back();
    const size_t colon = s.rfind(':');
    if (colon != std::string::npos && s.find(']', colon) == std::string::npos) {
      const std::string port = s.substr(colon + 1);
      s = s.substr(0, colon);
      char* end = nullptr;
      const long p = std::strtol(port.c_str(), &end, 10);
      if (port.empty() || *end || p < 0 || p > 65535) return Error{"OLLAMA_HOST: bad port '" + port + "'"};
      o.port = static_cast<int>(p);
    }
    if (!s.empty()) o.host = s;
  }
  o.models = Store::default_root();
  if (const char* k = std::getenv("HEARTH_API_KEY"); k && *k) o.api_key = k;
  if (const char* origins = std::getenv("OLLAMA_ORIGINS"); origins && *origins) {
    std::string all = origins;
    for (size_t start = 0; start <= all.size();) {
      size_t end = all.find(',', start);
      if (end == std::string::npos) end = all.size();
      std::string one = all.substr(start, end - start);
      while (!one.empty() && one.front() == ' ') one.erase(0, 1);
      while (!one.empty() && one.back() == ' ') one.pop_back();
      if (!one.empty()) o.origins.push_back(one);
      start = end + 1;
    }
  }
  const char* noprune = std::getenv("OLLAMA_NOPRUNE");
  o.prune = !(noprune && *noprune && std::string(noprune) != "0" && std::string(noprune) != "false");
  if (const char* t = std::getenv("HEARTH_TEMPLATES"); t && *t) o.templates = t;
  // Serving: positive integers, else a clear error naming the variable.
  for (auto [var, out] : {std::pair{"OLLAMA_NUM_PARALLEL", &o.inference.parallel}, std::pair{"OLLAMA_CONTEXT_LENGTH", &o.inference.default_num_ctx},
                          std::pair{"HEARTH_THREADS", &o.inference.threads}}) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end || n < 0 || n > 1 << 20) return Error{std::string(var) + ": '" + v + "' is not a count"};
    if (n > 0) *out = static_cast<int>(n);
  }
  for (auto [var, out] : {std::pair{"OLLAMA_MAX_QUEUE", &o.inference.max_queue}, std::pair{"OLLAMA_MAX_LOADED_MODELS", &o.inference.cache.max_loaded}}) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end || n < 0) return Error{std::string(var) + ": '" + v + "' is not a count"};
    if (n > 0) *out = static_cast<size_t>(n);
  }
  if (const char* k = std::getenv("OLLAMA_KEEP_ALIVE"); k && *k) {
    // Ollama: a Go duration or a plain number of seconds; invalid values fall back to 5m.
    char* end = nullptr;
    const double secs = std::strtod(k, &end);
    auto d = *end ? runner::parse_keep_alive(std::string(k)) : runner::parse_keep_alive(secs);
    if (d) o.inference.cache.keep_alive = d.value();
  }
  if (const char* kv = std::getenv("OLLAMA_KV_CACHE_TYPE"); kv && *kv) {
    const std::string t = kv;
    if (t == "f16") o.inference.kv = model::KvType::F16;
    else if (t == "f32") o.inference.kv = model::KvType::F32;
    else if (t == "q8_0") o.inference.kv = model::KvType::Q8_0;
    else return Error{"OLLAMA_KV_CACHE_TYPE: '" + t + "' is not one of f16, f32, q8_0"};
  }
  return o;
}

// The HTTP limits as configured, with the worker count filled in: enough for every request
// the runners may hold (the streams and OLLAMA_MAX_QUEUE waiting ones) and management
// calls beside them; idle and slow connections hold none (http.h).
http::Limits limits(const ServeOptions& opt) {
  http::Limits l = opt.http;
  if (l.workers == 0)
    l.workers = std::min<size_t>(1024, opt.inference.max_queue + static_cast<size_t>(opt.inference.parallel) + 64);
  return l;
}

InferenceOptions shared(InferenceOptions o, quant::ComputeTurns* turns, Metrics* metrics) {
  o.turns = turns;
  o.metrics = metrics;
  return o;
}

// The route a request's path belongs to, for metrics labels: parameters replaced, unknown
// paths as "other" (so a scan of random paths cannot grow the label set).
std::string route_of(const std::string& path) {
  static const std::set<std::string> kExact = {
      "/", "/api/version", "/api/tags", "/api/ps", "/api/generate", "/api/chat", "/api/show", "/api/create", "/api/copy",
      "/api/delete", "/api/pull", "/api/push", "/api/embed", "/api/embeddings", "/api/tokenize", "/api/detokenize",
      "/api/status", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/messages",
      "/v1/messages/count_tokens", "/v1/embeddings", "/v1/responses", "/api/rerank", "/v1/rerank"};
  if (kExact.count(path)) return path;
  if (path.rfind("/api/blobs/", 0) == 0) return "/api/blobs/:digest";
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/:model";
  return "other";
}

struct ApiServer::Impl {
  ServeOptions opt;
  Store store;
  quant::ComputeTurns turns;  // one team of kernel threads at a time: runners and quantization
  Metrics metrics;
  Inference inference;  // before http: its models outlive every request
  http::Server http;
  Origins origins;  // allowed browser origins

  explicit Impl(ServeOptions o)
      : opt(std::move(o)), store(opt.models), inference(store, shared(opt.inference, &turns, &metrics)), http(limits(opt)), origins(opt.origins) {
    if (opt.prune) {
      const size_t n = store.prune(opt.prune_grace_seconds);
      if (n && !opt.quiet) std::fprintf(stderr, "[hearth] pruned %zu unreferenced blob file(s)\n", n);
      const size_t p = store.prune_partials(Store::kPartialMaxAge);
      if (p && !opt.quiet) std::fprintf(stderr, "[hearth] pruned %zu download(s) untouched for a week\n", p);
    }
    routes();
  }

  // POST /api/create: validated first (4xx, nothing written), then built with progress
  // streamed as NDJSON (or one final object with "stream": false).
  void create(const http::Request& req, http::Response& res) {
    if (req.body.empty()) return error(res, 400, "missing request body");
    auto parsed = parse_create_request(req.body);
    if (!parsed) return error(res, 400, parsed.message());
    auto r = std::make_shared<CreateRequest>(std::move(parsed.value()));
    auto creator = std::make_shared<ModelCreator>(store, opt.templates, &turns);
    if (auto e = creator->validate(*r)) return error(res, e->status, e->message);
    if (!r->stream) {
      std::string last;
      Status st = creator->run(*r, [&](const std::string& line) { last = line; });
      if (!st) return error(res, 500, st.message());
      return json(res, 200, last);
    }
    res.status = 200;
    res.set_chunked_content_provider("application/x-ndjson", [r, creator](http::Sink& sink) {
      std::atomic<bool> gone{false};
      Status st = creator->run(
          *r,
          [&](const std::string& line) {
            const std::string l = line + "\n";
            if (!gone && !sink.write(l.data(), l.size())) gone = true;
          },
          &gone);
      if (!st && !gone) {
        const std::string l = "{\"error\":" + q(st.message()) + "}\n";
        sink.write(l.data(), l.size());
      }
      sink.done();
      return true;
    });
  }

  // /api/pull and /api/push: Ollama's request fields; progress streamed as NDJSON, or the
  // last status alone with "stream": false.
  void transfer(const http::Request& req, http::Response& res, bool push) {
    Body b;
    if (!b.parse(req, res)) return;
    std::string model = b.str("model");
    if (model.empty()) model = b.str("name");
    if (model.empty()) return error(res, 400, push ? "model is required" : "invalid model name");
    const ModelName name = ModelName::parse(model);
    if (!name.valid()) return error(res, 400, "invalid model name");
    const bool insecure = b.flag("insecure");
    if (name.scheme == "http" && !insecure) return error(res, 400, "insecure protocol http");
    // Runs the transfer with `cancel`, which stop() also sets: a shutdown ends transfers.
    auto run = [this, name, insecure, push](const TransferProgress& progress, std::atomic<bool>* cancel) {
      {
        std::lock_guard lock(transfers_mu);
        if (stopping) return Status(Error{"the server is shutting down"});
        transfers.insert(cancel);
      }
      const registry::Options ro = registry::Options::from_env();
      Status st = push ? push_model(store, name, insecure, ro, progress, cancel)
                       : pull_model(store, name, insecure, ro, progress, cancel);
      std::lock_guard lock(transfers_mu);
      transfers.erase(cancel);
      return st;
    };
    if (!b.flag("stream", true)) {
      std::string last;
      std::atomic<bool> cancel{false};
      Status st = run([&](const std::string& line) { last = line; }, &cancel);
      if (!st) return error(res, 500, st.message());
      return json(res, 200, last);
    }
    res.status = 200;
    res.set_chunked_content_provider("application/x-ndjson", [run](http::Sink& sink) {
      std::atomic<bool> gone{false};
      Status st = run(
          [&](const std::string& line) {
            const std::string l = line + "\n";
            if (!gone && !sink.write(l.data(), l.size())) gone = true;
          },
          &gone);
      if (!st && !gone) {
        JsonWriter w;
        w.begin_object().key("error").str(st.message()).end_object();
        const std::string l = w.text() + "\n";
        sink.write(l.data(), l.size());
      }
      sink.done();
      return true;
    });
  }

  // Every running pull and push's cancel flag (transfer()), set by stop_transfers().
  std::mutex transfers_mu;
  std::set<std::atomic<bool>*> transfers;
  bool stopping = false;  // guarded by transfers_mu
  void stop_transfers() {
    std::lock_guard lock(transfers_mu);
    stopping = true;
    for (std::atomic<bool>* c : transfers) *c = true;
  }

  // `details` (and capabilities) of a model from its config blob and its GGUF header.
  std::string details(const Manifest& m, bool with_lengths, std::string* capabilities) const {
    simdjson::dom::parser p;
    simdjson::dom::element cfg;
    const std::string cfg_text = store.blob_text(m.config.digest);
    const bool have = !cfg_text.empty() && !p.parse(cfg_text).get(cfg);
    auto field = [&](const char* k) {
      std::string_view v;
      return have && !cfg[k].get(v) ? std::string(v) : std::string();
    };
    std::string families = "null";
    simdjson::dom::array fam;
    if (have && !cfg["model_families"].get(fam)) {
      families = "[";
      for (auto f : fam) {
        std::string_view v;
        if (f.get(v)) continue;
        if (families.size() > 1) families += ",";
        families += q(v);
      }
      families += "]";
    }
    const Layer* model = m.layer("application/vnd.ollama.image.model");
    uint64_t ctx = 0, embd = 0;
    std::string caps = "\"completion\"";
    if (model) {
      if (auto g = gguf::GgufFile::open(store.blob_path(model->digest).string())) {
        const gguf::Metadata& md = g.value().metadata;
        if (auto arch = md.get_string("general.architecture")) {
          ctx = uint_or_zero(md, arch.value() + ".context_length");
          embd = uint_or_zero(md, arch.value() + ".embedding_length");
          if (md.contains(arch.value() + ".pooling_type")) caps = "\"embedding\"";
        }
      }
    }
    // As Ollama's Model.Capabilities: what the template can take.
    const std::string tmpl_text = store.layer_text(m, "application/vnd.ollama.image.template");
    if (auto t = parse_model_template(tmpl_text.empty() ? "{{ .Prompt }}" : tmpl_text)) {
      for (auto [field, cap] : {std::pair{"Tools", "tools"}, std::pair{"Suffix", "insert"}, std::pair{"Think", "thinking"}})
        if (t.value().references(field)) caps += std::string(",\"") + cap + "\"";
    }
    if (capabilities) *capabilities = "[" + caps + "]";
    std::string d = "{\"parent_model\":" + q(model ? model->from : "") + ",\"format\":" + q(field("model_format")) +
                    ",\"family\":" + q(field("model_family")) + ",\"families\":" + families +
                    ",\"parameter_size\":" + q(field("model_type")) + ",\"quantization_level\":" + q(field("file_type"));
    if (with_lengths && ctx) d += ",\"context_length\":" + std::to_string(ctx);
    if (with_lengths && embd) d += ",\"embedding_length\":" + std::to_string(embd);
    return d + "}";
  }

  // GET /api/ps: the loaded models, longest remaining keep-alive first.
  void ps(http::Response& res) const {
    JsonWriter w;
    w.begin_object().key("models").begin_array();
    for (const runner::LoadedInfo& l : inference.cache().loaded()) {
      auto m = store.find(ModelName::parse(l.name));
      const std::string name = m ? m.value().name.shortest() : l.name;
      w.begin_object().key("name").str(name).key("model").str(name).key("size").num(static_cast<int64_t>(l.size));
      w.key("digest").str(m ? m.value().digest_hex : "");
      if (m) w.key("details").raw(details(m.value(), false, nullptr));
      w.key("expires_at").str(rfc3339_sys(l.expires_at)).key("size_vram").num(int64_t{0});
      w.key("context_length").num(int64_t{l.context_length}).end_object();
    }
    json(res, 200, w.end_array().end_object().text());
  }

  void list(http::Response& res) const {
    std::vector<Manifest> ms = store.list();
    std::stable_sort(ms.begin(), ms.end(),
                     [](const Manifest& a, const Manifest& b) { return unix_seconds(a.mtime) > unix_seconds(b.mtime); });
    std::string out = "{\"models\":[";
    for (size_t i = 0; i < ms.size(); ++i) {
      std::string caps;
      const std::string d = details(ms[i], true, &caps), name = ms[i].name.shortest();
      if (i) out += ",";
      out += "{\"name\":" + q(name) + ",\"model\":" + q(name) + ",\"modified_at\":" + q(rfc3339(ms[i].mtime)) +
             ",\"size\":" + std::to_string(ms[i].total_size()) + ",\"digest\":" + q(ms[i].digest_hex) +
             ",\"details\":" + d + ",\"capabilities\":" + caps + "}";
    }
    json(res, 200, out + "]}");
  }

  void openai_models(http::Response& res) const {
    std::string out = "{\"object\":\"list\",\"data\":[";
    const std::vector<Manifest> ms = store.list();
    for (size_t i = 0; i < ms.size(); ++i) {
      if (i) out += ",";
      out += "{\"id\":" + q(ms[i].name.shortest()) + ",\"object\":\"model\",\"created\":" +
             std::to_string(unix_seconds(ms[i].mtime)) + ",\"owned_by\":" + q(ms[i].name.ns) + "}";
    }
    json(res, 200, out + "]}");
  }

  // POST /api/show: the model's Modelfile, parameters, template, system prompt, license,
  // details, GGUF metadata (model_info) and tensors.
  void show(const Manifest& m, bool verbose, http::Response& res) const {
    auto text_of = [&](const char* media) { return store.layer_text(m, media); };
    const std::string tmpl = text_of("application/vnd.ollama.image.template"),
                      system = text_of("application/vnd.ollama.image.system"),
                      license = text_of("application/vnd.ollama.image.license"),
                      params = text_of("application/vnd.ollama.image.params");
    // The MESSAGE history layer, re-encoded as one JSON array (empty when unreadable).
    std::string messages;
    if (const std::string text = text_of("application/vnd.ollama.image.messages"); !text.empty())
      if (auto v = tmpl::from_json(text); v && v.value().kind == tmpl::Value::Kind::List) messages = text;
    const Layer* model = m.layer("application/vnd.ollama.image.model");
    std::string caps, model_info = "{}", tensors = "[]", parameters;
    const std::string details_json = details(m, false, &caps);
    if (model) {
      if (auto g = gguf::GgufFile::open(store.blob_path(model->digest).string())) {
        std::vector<std::pair<std::string, std::string>> kv;
        uint64_t params_count = 0;
        for (const gguf::TensorInfo& t : g.value().tensors) params_count += t.n_elements;
        kv.emplace_back("general.parameter_count", std::to_string(params_count));
        for (const gguf::KeyValue& e : g.value().metadata.entries())
          if (e.key != "general.name" && e.key != "tokenizer.chat_template") kv.emplace_back(e.key, value_json(e.value, verbose));
        std::sort(kv.begin(), kv.end());  // Go marshals maps with sorted keys
        model_info = "{";
        for (size_t i = 0; i < kv.size(); ++i) model_info += (i ? "," : "") + q(kv[i].first) + ":" + kv[i].second;
        model_info += "}";
        tensors = "[";
        for (size_t i = 0; i < g.value().tensors.size(); ++i) {
          const gguf::TensorInfo& t = g.value().tensors[i];
          std::string shape = "[";
          for (int d = 0; d < t.n_dims; ++d) shape += (d ? "," : "") + std::to_string(t.ne[d]);
          tensors += (i ? "," : "") + std::string("{\"name\":") + q(t.name) + ",\"type\":" +
                     q(upper(std::string(gguf::type_info(t.type).name))) + ",\"shape\":" + shape + "]}";
        }
        tensors += "]";
      }
    }
    // parameters: one line per value, "%-30s %v" with strings quoted.
    if (!params.empty()) {
      simdjson::dom::parser p;
      simdjson::dom::object obj;
      if (!p.parse(params).get(obj)) {
        for (auto f : obj) {
          auto line = [&](simdjson::dom::element v) {
            std::string val;
            std::string_view sv;
            if (!v.get(sv)) val = tmpl::go_quote(sv);
            else val = simdjson::minify(v);
            char key[64];
            std::snprintf(key, sizeof key, "%-30s", std::string(f.key).c_str());
            parameters += std::string(key) + " " + val + "\n";
          };
          simdjson::dom::array arr;
          if (!f.value.get(arr)) {
            for (auto v : arr) line(v);
          } else {
            line(f.value);
          }
        }
      }
      if (!parameters.empty()) parameters.pop_back();
    }
    std::string modelfile = "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM " +
                            m.name.shortest() + "\n\n";
    if (model) modelfile += "FROM " + fs::absolute(store.blob_path(model->digest)).string() + "\n";
    if (!tmpl.empty()) modelfile += "TEMPLATE " + triple_quoted(tmpl) + "\n";
    if (!system.empty()) modelfile += "SYSTEM " + triple_quoted(system) + "\n";
    if (!parameters.empty()) {
      std::istringstream in(parameters);
      for (std::string l; std::getline(in, l);) {
        const size_t sp = l.find(' ');
        size_t v = l.find_first_not_of(' ', sp);
        modelfile += "PARAMETER " + l.substr(0, sp) + " " + (v == std::string::npos ? "" : l.substr(v)) + "\n";
      }
    }
    if (!license.empty()) modelfile += "LICENSE " + triple_quoted(license) + "\n";
    std::string out = "{";
    if (!license.empty()) out += "\"license\":" + q(license) + ",";
    out += "\"modelfile\":" + q(modelfile) + ",";
    if (!parameters.empty()) out += "\"parameters\":" + q(parameters) + ",";
    // Always a string: a model without a template layer uses Ollama's default.
    out += "\"template\":" + q(tmpl.empty() ? "{{ .Prompt }}" : tmpl) + ",";
    if (!system.empty()) out += "\"system\":" + q(system) + ",";
    if (!messages.empty()) out += "\"messages\":" + messages + ",";
    out += "\"details\":" + details_json + ",\"model_info\":" + model_info + ",\"tensors\":" + tensors +
           ",\"capabilities\":" + caps + ",\"modified_at\":" + q(rfc3339(m.mtime)) + "}";
    json(res, 200, out);
  }

  void routes() {
    using Req = const http::Request&;
    using Res = http::Response&;
    http.Get("/", [](Req, Res res) { res.set_content("Ollama is running", "text/plain; charset=utf-8"); });
    http.Get("/api/version", [](Req, Res res) { json(res, 200, std::string("{\"version\":\"") + kOllamaApiVersion + "\"}"); });
    http.Get("/api/tags", [this](Req, Res res) { list(res); });
    http.Get("/api/ps", [this](Req, Res res) { ps(res); });
    http.Post("/api/generate", [this](Req req, Res res) { inference.generate(req, res); });
    http.Post("/api/chat", [this](Req req, Res res) { inference.chat(req, res); });
    http.Post("/v1/chat/completions", [this](Req req, Res res) { openai_chat(inference, req, res); });
    http.Post("/v1/completions", [this](Req req, Res res) { openai_completions(inference, req, res); });
    http.Post("/v1/responses", [this](Req req, Res res) { openai_responses(inference, req, res); });
    http.Post("/v1/messages", [this](Req req, Res res) { anthropic_messages(inference, req, res); });
    http.Post("/v1/messages/count_tokens", [this](Req req, Res res) { anthropic_count_tokens(inference, req, res); });
    http.Post("/api/tokenize", [this](Req req, Res res) { tokenize(inference, req, res); });
    http.Get("/metrics", [this](Req, Res res) {
      res.set_content(metrics.exposition(inference.cache().loaded()), "text/plain; version=0.0.4; charset=utf-8");
    });
    // Ollama's cloud status: Hearth has no cloud.
    http.Get("/api/status", [](Req, Res res) { json(res, 200, R"({"cloud":{"disabled":true,"source":"none"}})"); });
    http.Post("/api/detokenize", [this](Req req, Res res) { detokenize(inference, req, res); });
    http.Get("/v1/models", [this](Req, Res res) { openai_models(res); });
    http.Get("/v1/models/{model...}", [this](Req req, Res res) {
      const std::string want = req.matches[1];
      auto m = store.find(ModelName::parse(want));
      if (!m) {
        json(res, 404, "{\"error\":{\"message\":" + q("model \"" + want + "\" not found") +
                           ",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
        return;
      }
      json(res, 200, "{\"id\":" + q(want) + ",\"object\":\"model\",\"created\":" +
                         std::to_string(unix_seconds(m.value().mtime)) + ",\"owned_by\":" + q(m.value().name.ns) + "}");
    });
    // HEAD /api/blobs/:digest (HEAD is served by GET routes); GET is not an Ollama route.
    http.Get("/api/blobs/{digest}", [this](Req req, Res res) {
      if (req.method != "HEAD") {
        res.status = 405;
        res.set_content("405 method not allowed", "text/plain");
        return;
      }
      const std::string digest = req.matches[1];
      if (!Store::valid_digest(digest)) return error(res, 400, "invalid digest format");
      if (!store.has_blob(digest)) return error(res, 404, "blob \"" + digest + "\" not found");
      res.status = 200;
    });
    http.Post("/api/blobs/{digest}", [this](Req req, Res res, const http::BodyReader& read) {
      const std::string digest = req.matches[1];
      if (!Store::valid_digest(digest)) return error(res, 400, "invalid digest format");
      if (store.has_blob(digest)) {
        res.status = 200;
        return;
      }
      // Never fill the disk: a declared size must fit beside a reserve, and the space left
      // is checked again every 256 MiB while the bytes arrive (chunked uploads).
      const std::string len = req.get_header_value("Content-Length");
      const uint64_t declared = len.empty() ? 0 : std::stoull(len);
      if (auto full = store.lacks_space(declared)) return error(res, 507, *full);
      // Streamed to the store while hashing: an upload is never held in memory.
      auto w = store.blob_writer();
      if (!w) return error(res, 500, w.message());
      Status st;
      std::optional<std::string> full;
      uint64_t written = 0;
      const bool complete = read([&](const char* data, size_t n) {
        st = w.value().write(data, n);
        const uint64_t before = written;
        written += n;
        if (st && (before >> 28) != (written >> 28)) full = store.lacks_space(0);
        return st.ok() && !full;
      });
      if (full) return error(res, 507, *full);
      if (!st) return error(res, 500, st.message());
      // A truncated upload (the client went away mid-body) stores nothing.
      if (!complete) return error(res, 400, "upload of " + digest + " was incomplete");
      // Bytes that are not what the URL names are discarded, not stored under their own digest.
      auto got = w.value().commit(&digest);
      if (!got) return error(res, got.message().rfind("digest mismatch", 0) == 0 ? 400 : 500, got.message());
      res.status = 201;
    });
    http.Post("/api/copy", [this](Req req, Res res) {
      Body b;
      if (!b.parse(req, res)) return;
      const std::string src = b.str("source"), dst = b.str("destination");
      const ModelName s = ModelName::parse(src), d = ModelName::parse(dst);
      if (!s.valid()) return error(res, 400, "source \"" + src + "\" is invalid");
      if (!d.valid()) return error(res, 400, "destination \"" + dst + "\" is invalid");
      auto m = store.find(s);
      if (!m) return error(res, 404, "model \"" + src + "\" not found");
      ModelName target = d;  // a case variant of an existing name reuses its spelling
      if (auto existing = store.find(d)) target = existing.value().name;
      if (Status st = store.copy(m.value(), target); !st) return error(res, 500, st.message());
      res.status = 200;
    });
    http.Delete("/api/delete", [this](Req req, Res res) {
      Body b;
      if (!b.parse(req, res)) return;
      std::string name = b.str("model");
      if (name.empty()) name = b.str("name");
      if (name.empty()) return error(res, 400, "model is required");
      const ModelName n = ModelName::parse(name);
      if (!n.valid()) return error(res, 400, "name \"" + name + "\" is invalid");
      auto m = store.find(n);
      if (!m) return error(res, 404, "model '" + name + "' not found");
      if (Status st = store.remove(m.value()); !st) return error(res, 500, st.message());
      res.status = 200;
    });

    http.Post("/api/show", [this](Req req, Res res) {
      Body b;
      if (!b.parse(req, res)) return;
      std::string name = b.str("model");
      if (name.empty()) name = b.str("name");
      if (name.empty()) return error(res, 400, "model is required");
      const ModelName n = ModelName::parse(name);
      if (!n.valid()) return error(res, 400, "invalid model name");
      auto m = store.find(n);
      if (!m) return error(res, 404, "model '" + n.shortest() + "' not found");
      show(m.value(), b.flag("verbose"), res);
    });

    // Known paths answer other methods with 405, as Ollama's router does.
    const std::vector<std::pair<std::string, std::vector<std::string>>> known = {
        {"/", {"GET", "HEAD"}}, {"/api/version", {"GET", "HEAD"}}, {"/api/tags", {"GET", "HEAD"}},
        {"/api/ps", {"GET"}}, {"/api/copy", {"POST"}}, {"/api/delete", {"DELETE"}},
        {"/api/blobs/{digest}", {"HEAD", "POST"}}, {"/v1/models", {"GET"}}, {"/v1/chat/completions", {"POST"}}, {"/v1/completions", {"POST"}}, {"/v1/messages", {"POST"}},
        {"/v1/messages/count_tokens", {"POST"}}, {"/v1/embeddings", {"POST"}}, {"/v1/responses", {"POST"}}, {"/api/rerank", {"POST"}}, {"/v1/rerank", {"POST"}}, {"/api/tokenize", {"POST"}}, {"/api/detokenize", {"POST"}},
        {"/metrics", {"GET"}}, {"/api/status", {"GET"}},
        {"/api/generate", {"POST"}}, {"/api/chat", {"POST"}}, {"/api/show", {"POST"}}, {"/api/create", {"POST"}},
        {"/api/pull", {"POST"}}, {"/api/push", {"POST"}}, {"/api/embed", {"POST"}}, {"/api/embeddings", {"POST"}}};
    auto not_allowed = [](Req, Res res) {
      res.status = 405;
      res.set_content("405 method not allowed", "text/plain");
    };
    for (const auto& entry : known) {
      const std::string& path = entry.first;
      const auto& methods = entry.second;  // (a named reference: clang 14 cannot capture structured bindings)
      auto has = [&](const char* m) { return std::find(methods.begin(), methods.end(), m) != methods.end(); };
      if (!has("GET") && !has("HEAD") && path.find("blobs") == std::string::npos) http.Get(path, not_allowed);
      if (!has("POST")) http.Post(path, not_allowed);
      if (!has("DELETE")) http.Delete(path, not_allowed);
      http.Put(path, not_allowed);
      http.Patch(path, not_allowed);
    }
    http.Post("/api/create", [this](Req req, Res res) { create(req, res); });
    // Inference endpoints come with the next part of the server.
    http.Post("/api/embed", [this](Req req, Res res) { embed(inference, req, res); });
    http.Post("/api/embeddings", [this](Req req, Res res) { embeddings_legacy(inference, req, res); });
    http.Post("/v1/embeddings", [this](Req req, Res res) { openai_embeddings(inference, req, res); });
    http.Post("/api/rerank", [this](Req req, Res res) { rerank(inference, req, res, false); });
    http.Post("/v1/rerank", [this](Req req, Res res) { rerank(inference, req, res, true); });
    http.Post("/api/pull", [this](Req req, Res res) { transfer(req, res, false); });
    http.Post("/api/push", [this](Req req, Res res) { transfer(req, res, true); });

    http.set_error_handler([](Req, Res res) {
      if (res.status == 404 && res.body.empty()) res.set_content("404 page not found", "text/plain");
    });
    http.set_pre_routing_handler([this](Req req, Res res) {
      // The DNS-rebinding guard, only when listening on loopback.
      if (is_loopback_listen(opt.host) && req.has_header("Host") && !allowed_host(req.get_header_value("Host"))) {
        res.status = 403;
        return true;
      }
      // CORS: a request from a browser page whose origin is not allowed gets 403.
      if (req.has_header("Origin")) {
        const std::string origin = req.get_header_value("Origin");
        const bool same = origin == "http://" + req.get_header_value("Host") || origin == "https://" + req.get_header_value("Host");
        if (!same && !origins.allowed(origin)) {
          res.status = 403;
          return true;
        }
        res.set_header("Access-Control-Allow-Origin", origins.any() ? "*" : origin);
        if (!origins.any()) res.set_header("Vary", "Origin");
        if (req.method == "OPTIONS") {
          res.set_header("Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS");
          res.set_header("Access-Control-Allow-Headers",
                         "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,OpenAI-Beta,x-stainless-arch,"
                         "x-stainless-async,x-stainless-custom-poll-interval,x-stainless-helper-method,x-stainless-lang,"
                         "x-stainless-os,x-stainless-package-version,x-stainless-poll-helper,x-stainless-retry-count,"
                         "x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout");
          res.set_header("Access-Control-Max-Age", "43200");
          res.status = 204;
          return true;
        }
      }
      if (opt.api_key.empty()) return false;
      if (same_secret(req.get_header_value("Authorization"), "Bearer " + opt.api_key)) return false;
      if (req.path.rfind("/v1/messages", 0) == 0) {  // Anthropic's clients send x-api-key and read Anthropic's errors
        if (same_secret(req.get_header_value("x-api-key"), opt.api_key)) return false;
        res.status = 401;
        res.set_content(anthropic_error(401, "unauthorized"), "application/json");
        return true;
      }
      if (req.path.rfind("/v1/", 0) == 0) {  // OpenAI's clients read OpenAI's error shape
        res.status = 401;
        res.set_content(openai_error(401, "unauthorized"), "application/json");
        return true;
      }
      error(res, 401, "unauthorized");
      return true;
    });
    http.set_logger([this](Req req, const http::Response& res) {
      metrics.request(route_of(req.path), res.status);
      if (!opt.quiet) std::fprintf(stderr, "[hearth] %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
    // Refusals made below the routes (malformed requests, limits) in each API's error shape.
    http.set_error_body([](const std::string& path, int status, const std::string& message, http::Response& res) {
      if (path.rfind("/v1/messages", 0) == 0)
        res.set_content(anthropic_error(status, message), "application/json");
      else if (path.rfind("/v1/", 0) == 0)
        res.set_content(openai_error(status, message), "application/json");
      else
        error(res, status, message);
    });
  }
};

ApiServer::ApiServer(ServeOptions opt) : impl_(new Impl(std::move(opt))) {}
ApiServer::~ApiServer() = default;

Result<int> ApiServer::bind() { return impl_->http.bind(impl_->opt.host, impl_->opt.port); }

void ApiServer::run() {
  impl_->http.run();
  Download::wait_idle(5000);  // cancelled downloads record their progress before the process ends
}
void ApiServer::stop() {
  impl_->inference.stop();  // streams end at their next step, so the HTTP threads can be joined
  impl_->stop_transfers();  // pulls and pushes end too (downloads keep their partial data)
  impl_->http.stop();
}

}  // namespace hearth::server
