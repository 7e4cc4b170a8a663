#include "server/tokens.h"

#include <simdjson.h>

#include "server/json_writer.h"

namespace hearth::server {

namespace {

void reply(http::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json; charset=utf-8");
}
void fail(http::Response& res, int status, const std::string& message) {
  reply(res, status, JsonWriter().begin_object().key("error").str(message).end_object().text());
}

// The request object and its model's vocabulary; false after answering an error.
bool open(Inference& inference, const http::Request& req, http::Response& res, simdjson::dom::parser& parser,
          simdjson::dom::object& body, std::shared_ptr<const model::Vocab>& vocab) {
  if (parser.parse(req.body).get_object().get(body)) {
    fail(res, 400, "the request body must be a JSON object");
    return false;
  }
  std::string_view model;
  if (body["model"].get_string().get(model)) model = {};
  if (auto r = inference.vocab(std::string(model), vocab)) {
    fail(res, r->status, r->message);
    return false;
  }
  return true;
}

bool flag(simdjson::dom::object body, const char* key, bool fallback) {
  bool v;
  return body[key].get_bool().get(v) ? fallback : v;
}

}  // namespace

void tokenize(Inference& inference, const http::Request& req, http::Response& res) {
  simdjson::dom::parser parser;
  simdjson::dom::object body;
  std::shared_ptr<const model::Vocab> vocab;
  if (!open(inference, req, res, parser, body, vocab)) return;
  std::string_view content;
  if (body["content"].get_string().get(content)) return fail(res, 400, "content must be a string");
  auto ids = vocab->tokenize(content, flag(body, "add_special", false), flag(body, "parse_special", true));
  if (!ids) return fail(res, 400, ids.message());
  const bool pieces = flag(body, "with_pieces", false);
  JsonWriter w;
  w.begin_object().key("tokens").begin_array();
  for (model::TokenId t : ids.value()) {
    if (!pieces) {
      w.num(int64_t{t});
      continue;
    }
    w.begin_object().key("id").num(int64_t{t}).key("piece").str(vocab->piece(t, true)).end_object();
  }
  reply(res, 200, w.end_array().end_object().text());
}

void detokenize(Inference& inference, const http::Request& req, http::Response& res) {
  simdjson::dom::parser parser;
  simdjson::dom::object body;
  std::shared_ptr<const model::Vocab> vocab;
  if (!open(inference, req, res, parser, body, vocab)) return;
  simdjson::dom::array tokens;
  if (body["tokens"].get_array().get(tokens)) return fail(res, 400, "tokens must be an array of token ids");
  const bool special = flag(body, "special", false);
  std::string text;
  size_t i = 0;
  for (simdjson::dom::element e : tokens) {
    int64_t id;
    if (e.get_int64().get(id) || id < 0 || static_cast<size_t>(id) >= vocab->size())
      return fail(res, 400, "tokens[" + std::to_string(i) + "] is not a token id of this model (0 to " + std::to_string(vocab->size() - 1) + ")");
    text += vocab->piece(static_cast<model::TokenId>(id), special);
    ++i;
  }
  // As llama.cpp's detokenizer: the space SentencePiece put before the text is not part of it.
  if (vocab->add_space_prefix() && !text.empty() && text.front() == ' ') text.erase(0, 1);
  reply(res, 200, JsonWriter().begin_object().key("content").str(text).end_object().text());
}

}  // namespace hearth::server
