#include "server/embed.h"

#include <cmath>
#include <cstring>

#include "server/gotemplate.h"
#include "server/json_writer.h"
#include "server/openai.h"

namespace hearth::server {
namespace {

using tmpl::Value;

void reply(http::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json; charset=utf-8");
}

void fail(http::Response& res, const Refusal& r) { reply(res, r.status, JsonWriter().begin_object().key("error").str(r.message).end_object().text()); }

void openai_fail(http::Response& res, const Refusal& r) {
  res.status = r.status;
  res.set_content(openai_error(r.status, r.message), "application/json");
}

// Token ids from a JSON array of integers, or nothing when it is not one.
std::optional<std::vector<model::TokenId>> token_array(const Value& v) {
  if (v.kind != Value::Kind::List || v.list->empty()) return std::nullopt;
  std::vector<model::TokenId> ids;
  for (const Value& t : *v.list) {
    if (t.kind != Value::Kind::Int || t.i < 0 || t.i > INT32_MAX) return std::nullopt;
    ids.push_back(static_cast<model::TokenId>(t.i));
  }
  return ids;
}

// The inputs of /api/embed's `input` (or /v1's): a string, or an array of strings; with
// `openai`, also one array of token ids or an array of them, and "" is an input (/api/embed
// only loads the model for it).
Result<std::vector<EmbedInput>> inputs_of(const Value& input, bool openai) {
  std::vector<EmbedInput> out;
  if (input.kind == Value::Kind::Nil) return out;
  if (input.kind == Value::Kind::String) {
    if (!input.s.empty() || openai) out.push_back({input.s, std::nullopt});
    return out;
  }
  if (input.kind != Value::Kind::List) return Error{"invalid input type"};
  if (openai)
    if (auto ids = token_array(input)) return std::vector<EmbedInput>{{"", std::move(*ids)}};
  for (const Value& v : *input.list) {
    if (v.kind == Value::Kind::String) {
      out.push_back({v.s, std::nullopt});
      continue;
    }
    auto ids = openai ? token_array(v) : std::nullopt;
    if (!ids) return Error{"invalid input type"};
    out.push_back({"", std::move(*ids)});
  }
  return out;
}

// The body as a JSON object, or the refusal.
Result<Value> object_of(const http::Request& req) {
  if (req.body.empty()) return Error{"missing request body"};
  auto v = tmpl::from_json(req.body);
  if (!v) return Error{v.message()};
  if (v.value().kind != Value::Kind::Map) return Error{"json: cannot unmarshal non-object into Go value of type api.EmbedRequest"};
  return v;
}

// `dimensions`: absent 0; more than the vectors have is a 400.
std::optional<Refusal> dimensions_of(const Value& body, const EmbedResult& r, int64_t& out) {
  const Value& d = body.field("dimensions");
  out = 0;
  if (d.kind == Value::Kind::Nil) return std::nullopt;
  if (d.kind != Value::Kind::Int) return Refusal{400, "dimensions must be an integer"};
  out = d.i;
  if (!r.vectors.empty() && out > static_cast<int64_t>(r.vectors.front().size()))
    return Refusal{400, "dimensions " + std::to_string(out) + " is more than the model's embedding length " +
                            std::to_string(r.vectors.front().size())};
  return std::nullopt;
}

}  // namespace

Result<std::vector<float>> normalized(std::vector<float> v, int64_t dimensions) {
  if (dimensions > 0 && static_cast<size_t>(dimensions) < v.size()) v.resize(static_cast<size_t>(dimensions));
  double sum = 0;
  for (float x : v) {
    if (!std::isfinite(x)) return Error{"the embedding holds a value that is not finite"};
    sum += static_cast<double>(x) * x;
  }
  const double norm = std::max(std::sqrt(sum), 1e-12);
  for (float& x : v) x = static_cast<float>(x / norm);
  return v;
}

std::string base64(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t chunk = 0;
    for (size_t k = 0; k < 3; ++k) chunk = chunk << 8 | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(chunk >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

void embed(Inference& inference, const http::Request& req, http::Response& res) {
  auto body = object_of(req);
  if (!body) return fail(res, {400, body.message()});
  auto inputs = inputs_of(body.value().field("input"), false);
  if (!inputs) return fail(res, {400, inputs.message()});
  const Value& truncate = body.value().field("truncate");
  EmbedResult r;
  if (auto refusal = inference.embed(req, inputs.value(), truncate.kind != Value::Kind::Bool || truncate.b, r))
    return fail(res, *refusal);
  int64_t dimensions = 0;
  if (auto refusal = dimensions_of(body.value(), r, dimensions)) return fail(res, *refusal);
  JsonWriter w;
  w.begin_object().key("model").str(body.value().field("model").s).key("embeddings").begin_array();
  for (std::vector<float>& v : r.vectors) {
    auto n = normalized(std::move(v), dimensions);
    if (!n) return fail(res, {500, n.message()});
    w.begin_array();
    for (float x : n.value()) w.num(x);
    w.end_array();
  }
  w.end_array().key("total_duration").num(r.total_ns).key("load_duration").num(r.load_ns);
  w.key("prompt_eval_count").num(static_cast<int64_t>(r.prompt_tokens)).end_object();
  reply(res, 200, w.text());
}

void embeddings_legacy(Inference& inference, const http::Request& req, http::Response& res) {
  auto body = object_of(req);
  if (!body) return fail(res, {400, body.message()});
  const Value& prompt = body.value().field("prompt");
  if (prompt.kind != Value::Kind::Nil && prompt.kind != Value::Kind::String)
    return fail(res, {400, "json: cannot unmarshal " + std::string(prompt.kind == Value::Kind::List ? "array" : "value") +
                               " into Go struct field EmbeddingRequest.prompt of type string"});
  std::vector<EmbedInput> inputs;
  if (!prompt.s.empty()) inputs.push_back({prompt.s, std::nullopt});
  EmbedResult r;
  if (auto refusal = inference.embed(req, inputs, true, r)) return fail(res, *refusal);
  // Raw, not normalised, as float64 (Ollama's legacy answer).
  JsonWriter w;
  w.begin_object().key("embedding").begin_array();
  if (!r.vectors.empty())
    for (float x : r.vectors.front()) w.num(static_cast<double>(x));
  w.end_array().end_object();
  reply(res, 200, w.text());
}

void openai_embeddings(Inference& inference, const http::Request& req, http::Response& res) {
  auto body = object_of(req);
  if (!body) return openai_fail(res, {400, body.message()});
  const Value& input = body.value().field("input");
  auto inputs = inputs_of(input, true);
  if (!inputs || inputs.value().empty()) return openai_fail(res, {400, "invalid input"});
  const Value& format = body.value().field("encoding_format");
  const std::string encoding = format.kind == Value::Kind::String ? format.s : "float";
  if (encoding != "float" && encoding != "base64")
    return openai_fail(res, {400, "invalid encoding_format \"" + encoding + "\": use \"float\" or \"base64\""});
  EmbedResult r;
  if (auto refusal = inference.embed(req, inputs.value(), true, r)) return openai_fail(res, *refusal);
  int64_t dimensions = 0;
  if (auto refusal = dimensions_of(body.value(), r, dimensions)) return openai_fail(res, *refusal);
  JsonWriter w;
  w.begin_object().key("object").str("list").key("data").begin_array();
  for (size_t i = 0; i < r.vectors.size(); ++i) {
    auto n = normalized(std::move(r.vectors[i]), dimensions);
    if (!n) return openai_fail(res, {500, n.message()});
    w.begin_object().key("object").str("embedding").key("embedding");
    if (encoding == "base64") {
      std::string bytes(n.value().size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), n.value().data(), bytes.size());  // little-endian float32, as x86 holds them
      w.str(base64(bytes));
    } else {
      w.begin_array();
      for (float x : n.value()) w.num(x);
      w.end_array();
    }
    w.key("index").num(static_cast<int64_t>(i)).end_object();
  }
  w.end_array().key("model").str(body.value().field("model").s);
  w.key("usage").begin_object().key("prompt_tokens").num(static_cast<int64_t>(r.prompt_tokens));
  w.key("total_tokens").num(static_cast<int64_t>(r.prompt_tokens)).end_object().end_object();
  reply(res, 200, w.text());
}

}  // namespace hearth::server
