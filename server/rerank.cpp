#include "server/rerank.h"

#include <algorithm>
#include <numeric>

#include "server/gotemplate.h"
#include "server/json_writer.h"
#include "server/openai.h"

namespace hearth::server {
namespace {

using tmpl::Value;

// Documents per request at most: each is one sequence of the batch.
constexpr size_t kMaxDocuments = 1000;

struct RerankRequest {
  std::string model, query;
  std::vector<std::string> documents;
  size_t top_n = 0;  // 0: all
  bool return_documents = false;
};

Result<RerankRequest> parse(const std::string& body) {
  if (body.empty()) return Error{"missing request body"};
  auto v = tmpl::from_json(body);
  if (!v) return Error{v.message()};
  if (v.value().kind != Value::Kind::Map) return Error{"the body must be a JSON object"};
  const Value& b = v.value();
  RerankRequest r;
  if (b.field("model").kind != Value::Kind::String || b.field("model").s.empty()) return Error{"model is required"};
  r.model = b.field("model").s;
  if (b.field("query").kind != Value::Kind::String) return Error{"query is required (a string)"};
  r.query = b.field("query").s;
  const Value& docs = b.field("documents");
  if (docs.kind != Value::Kind::List || docs.list->empty()) return Error{"documents must be a non-empty array of strings"};
  if (docs.list->size() > kMaxDocuments)
    return Error{"too many documents: " + std::to_string(docs.list->size()) + " (limit " + std::to_string(kMaxDocuments) + ")"};
  for (size_t i = 0; i < docs.list->size(); ++i) {
    const Value& d = (*docs.list)[i];
    // A document is a string, or Cohere's/Jina's {"text": …}.
    const Value& text = d.kind == Value::Kind::Map ? d.field("text") : d;
    if (text.kind != Value::Kind::String) return Error{"documents[" + std::to_string(i) + "] must be a string or {\"text\": string}"};
    r.documents.push_back(text.s);
  }
  const Value& top = b.field("top_n");
  if (top.kind == Value::Kind::Int) {
    if (top.i < 1) return Error{"top_n must be at least 1"};
    r.top_n = static_cast<size_t>(top.i);
  } else if (top.kind != Value::Kind::Nil) {
    return Error{"top_n must be an integer"};
  }
  const Value& ret = b.field("return_documents");
  if (ret.kind == Value::Kind::Bool) r.return_documents = ret.b;
  else if (ret.kind != Value::Kind::Nil) return Error{"return_documents must be a boolean"};
  return r;
}

// [CLS] query [SEP] document [SEP], each text tokenized without specials (so a document
// that contains "[SEP]" stays text).
Result<std::vector<EmbedInput>> pairs(const model::Vocab& vocab, const RerankRequest& r) {
  if (vocab.bos() < 0 || vocab.sep() < 0) return Error{"reranking needs a tokenizer with [CLS] and [SEP] tokens"};
  auto q = vocab.tokenize(r.query, false, false);
  if (!q) return q.error();
  std::vector<EmbedInput> out;
  for (const std::string& d : r.documents) {
    auto doc = vocab.tokenize(d, false, false);
    if (!doc) return doc.error();
    std::vector<model::TokenId> ids{vocab.bos()};
    ids.insert(ids.end(), q.value().begin(), q.value().end());
    ids.push_back(vocab.sep());
    ids.insert(ids.end(), doc.value().begin(), doc.value().end());
    ids.push_back(vocab.sep());
    out.push_back({"", std::move(ids)});
  }
  return out;
}

}  // namespace

void rerank(Inference& inference, const http::Request& req, http::Response& res, bool openai_errors) {
  auto fail = [&](const Refusal& r) {
    res.status = r.status;
    res.set_content(openai_errors ? openai_error(r.status, r.message) : JsonWriter().begin_object().key("error").str(r.message).end_object().text(),
                    "application/json; charset=utf-8");
  };
  auto r = parse(req.body);
  if (!r) return fail({400, r.message()});
  std::shared_ptr<const model::Vocab> vocab;
  if (auto refused = inference.vocab(r.value().model, vocab)) return fail(*refused);
  auto inputs = pairs(*vocab, r.value());
  if (!inputs) return fail({400, inputs.message()});
  EmbedResult scored;
  if (auto refused = inference.embed(req, inputs.value(), true, scored, true)) return fail(*refused);
  std::vector<size_t> order(scored.vectors.size());
  std::iota(order.begin(), order.end(), 0);
  auto score = [&](size_t i) { return scored.vectors[i].empty() ? 0.f : scored.vectors[i][0]; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score(a) > score(b); });
  if (r.value().top_n > 0 && r.value().top_n < order.size()) order.resize(r.value().top_n);
  JsonWriter w;
  w.begin_object().key("model").str(r.value().model).key("object").str("list").key("results").begin_array();
  for (size_t i : order) {
    w.begin_object().key("index").num(static_cast<int64_t>(i)).key("relevance_score").num(score(i));
    if (r.value().return_documents) w.key("document").begin_object().key("text").str(r.value().documents[i]).end_object();
    w.end_object();
  }
  w.end_array().key("usage").begin_object().key("prompt_tokens").num(int64_t{scored.prompt_tokens});
  w.key("total_tokens").num(int64_t{scored.prompt_tokens}).end_object();
  res.status = 200;
  res.set_content(w.end_object().text(), "application/json; charset=utf-8");
}

}  // namespace hearth::server
