#include "server/anthropic.h"

#include <simdjson.h>

#include <random>

#include "server/json_writer.h"

namespace hearth::server {

namespace {

using simdjson::dom::element;

// Text blocks (or a string) as one string.
Result<std::string> text_of(element content, const char* what) {
  std::string_view s;
  if (!content.get_string().get(s)) return std::string(s);
  simdjson::dom::array blocks;
  if (content.get_array().get(blocks)) return Error{std::string(what) + " must be a string or an array of blocks"};
  std::string out;
  for (element b : blocks) {
    std::string_view type, t;
    if (b["type"].get_string().get(type) || type != "text" || b["text"].get_string().get(t))
      return Error{std::string(what) + ": only text blocks are accepted here"};
    out += t;
  }
  return out;
}

// What one message's blocks add up to: its text, reasoning, images and tool calls (tool
// results are written as tool messages of their own as they come).
struct Blocks {
  std::string text, thinking;
  std::vector<std::string> images;
  JsonWriter calls;
  bool any_call = false;
  Blocks() { calls.begin_array(); }
  bool empty() const { return text.empty() && thinking.empty() && images.empty() && !any_call; }
};

// One content block into `into`; a tool_result straight into `w`. `names` maps tool_use ids
// to tool names.
Status block_of(element b, Blocks& into, JsonWriter& w, std::map<std::string, std::string>& names) {
  std::string_view type, t;
  if (b["type"].get_string().get(type)) return Error{"messages: each content block needs a type"};
  if (type == "text") {
    if (b["text"].get_string().get(t)) return Error{"messages: a text block needs text"};
    into.text += t;
  } else if (type == "thinking") {
    if (!b["thinking"].get_string().get(t)) into.thinking += t;
  } else if (type == "image") {
    if (b["source"]["data"].get_string().get(t)) return Error{"messages: only base64 image sources are supported"};
    into.images.emplace_back(t);
  } else if (type == "tool_use") {
    std::string_view id;
    element input;
    if (b["name"].get_string().get(t) || b["input"].get(input)) return Error{"messages: a tool_use block needs a name and an input"};
    if (!b["id"].get_string().get(id)) names[std::string(id)] = std::string(t);
    into.calls.begin_object().key("function").begin_object().key("name").str(t).key("arguments").raw(simdjson::minify(input));
    into.calls.end_object().end_object();
    into.any_call = true;
  } else if (type == "tool_result") {
    element result;
    std::string out;
    if (!b["content"].get(result)) {
      auto r = text_of(result, "messages: tool_result content");
      if (!r) return r.error();
      out = r.value();
    }
    w.begin_object().key("role").str("tool").key("content").str(out);
    if (!b["tool_use_id"].get_string().get(t))
      if (auto it = names.find(std::string(t)); it != names.end()) w.key("tool_name").str(it->second);
    w.end_object();
  } else {
    return Error{"messages: unsupported content block type \"" + std::string(type) + "\""};
  }
  return {};
}

// One Anthropic message as Ollama messages: text, thinking and tool_use blocks of an
// assistant become one message; each tool_result becomes a tool message.
Status messages_of(element m, JsonWriter& w, std::map<std::string, std::string>& names) {
  std::string_view role;
  if (m["role"].get_string().get(role) || (role != "user" && role != "assistant"))
    return Error{"messages: each message needs a role of \"user\" or \"assistant\""};
  element content;
  if (m["content"].get(content)) return Error{"messages: each message needs content"};
  std::string_view s;
  if (!content.get_string().get(s)) {
    w.begin_object().key("role").str(role).key("content").str(s).end_object();
    return {};
  }
  simdjson::dom::array list;
  if (content.get_array().get(list)) return Error{"messages: content must be a string or an array of blocks"};
  Blocks blocks;
  for (element b : list)
    if (Status st = block_of(b, blocks, w, names); !st) return st;
  if (blocks.empty()) return {};
  w.begin_object().key("role").str(role).key("content").str(blocks.text);
  if (!blocks.thinking.empty()) w.key("thinking").str(blocks.thinking);
  if (!blocks.images.empty()) {
    w.key("images").begin_array();
    for (const std::string& i : blocks.images) w.str(i);
    w.end_array();
  }
  if (blocks.any_call) w.key("tool_calls").raw(blocks.calls.end_array().text());
  w.end_object();
  return {};
}

}  // namespace

std::string anthropic_error(int status, const std::string& message) {
  // Anthropic's error types by HTTP status; any other status is an api_error.
  static constexpr std::pair<int, const char*> kTypes[] = {{400, "invalid_request_error"}, {401, "authentication_error"},
                                                           {403, "permission_error"},      {404, "not_found_error"},
                                                           {429, "rate_limit_error"},      {503, "overloaded_error"}};
  const char* type = "api_error";
  for (const auto& [code, name] : kTypes)
    if (code == status) type = name;
  return JsonWriter().begin_object().key("type").str("error").key("error").begin_object().key("type").str(type).key("message").str(message)
      .end_object().key("request_id").str("req_" + random_hex(24)).end_object().text();
}

Result<AnthropicRequest> anthropic_request(std::string_view body, bool can_think, bool counting) {
  simdjson::dom::parser parser;
  simdjson::dom::object req;
  if (parser.parse(body.data(), body.size()).get_object().get(req)) return Error{"the request body must be a JSON object"};
  AnthropicRequest out;
  std::string_view model;
  if (req["model"].get_string().get(model) || model.empty()) return Error{"model: field required"};
  out.model = model;
  int64_t max_tokens = 1;
  if ((req["max_tokens"].get_int64().get(max_tokens) && !counting) || max_tokens <= 0) return Error{"max_tokens: must be a positive integer"};
  simdjson::dom::array messages;
  if (req["messages"].get_array().get(messages) || messages.size() == 0) return Error{"messages: at least one message is required"};
  bool flag;
  if (!req["stream"].get_bool().get(flag)) out.stream = flag;

  JsonWriter w;
  w.begin_object().key("model").str(model).key("stream").boolean(out.stream).key("messages").begin_array();
  element system;
  if (!req["system"].get(system) && !system.is_null()) {
    auto s = text_of(system, "system");
    if (!s) return s.error();
    w.begin_object().key("role").str("system").key("content").str(s.value()).end_object();
  }
  std::map<std::string, std::string> names;
  for (element m : messages)
    if (Status s = messages_of(m, w, names); !s) return s.error();
  w.end_array();

  w.key("options").begin_object().key("num_predict").num(max_tokens);
  double d;
  for (const char* k : {"temperature", "top_p"})
    if (!req[k].get_double().get(d)) w.key(k).num(d);
  if (int64_t k; !req["top_k"].get_int64().get(k)) w.key("top_k").num(k);
  simdjson::dom::array stops;
  if (!req["stop_sequences"].get_array().get(stops)) {
    w.key("stop").begin_array();
    for (element s : stops) {
      std::string_view one;
      if (s.get_string().get(one)) return Error{"stop_sequences: must be strings"};
      w.str(one);
    }
    w.end_array();
  }
  w.end_object();

  simdjson::dom::array tools;
  if (!req["tools"].get_array().get(tools) && tools.size() > 0) {
    w.key("tools").begin_array();
    for (element t : tools) {
      std::string_view name, desc;
      element schema;
      if (t["name"].get_string().get(name)) return Error{"tools: each tool needs a name"};
      w.begin_object().key("type").str("function").key("function").begin_object().key("name").str(name);
      if (!t["description"].get_string().get(desc)) w.key("description").str(desc);
      if (!t["input_schema"].get(schema)) w.key("parameters").raw(simdjson::minify(schema));
      w.end_object().end_object();
    }
    w.end_array();
  }
  // thinking.type enabled/disabled, output_config.effort; dropped for a model that cannot think.
  std::string_view type, effort;
  if (!req["thinking"]["type"].get_string().get(type)) {
    if (type == "disabled") w.key("think").boolean(false);
    else if (type == "enabled" && can_think) w.key("think").boolean(true);
  }
  if (!req["output_config"]["effort"].get_string().get(effort) && can_think) w.key("think").str(effort);
  out.ollama_body = w.end_object().text();
  return out;
}

namespace {

// Anthropic's message object, or its stream of events.
class AnthropicWriter : public AnswerWriter {
 public:
  AnthropicWriter(std::string model, bool stream) : model_(std::move(model)), stream_(stream), id_("msg_" + random_hex(24)) {}
  const char* content_type(bool stream) const override { return stream ? "text/event-stream" : "application/json"; }

  std::string chunk(const Piece& p) override {
    std::string out;
    if (!p.thinking.empty()) out += delta("thinking", "thinking_delta", "thinking", p.thinking);
    if (!p.content.empty()) out += delta("text", "text_delta", "text", p.content);
    for (const ToolCall& c : p.calls) {
      called_ = true;
      out += start_block();
      out += close_block();
      JsonWriter w;
      w.begin_object().key("type").str("content_block_start").key("index").num(index_).key("content_block").begin_object();
      w.key("type").str("tool_use").key("id").str(c.id).key("name").str(c.name).key("input").raw("{}").end_object().end_object();
      out += event("content_block_start", w.text());
      JsonWriter d;
      d.begin_object().key("type").str("content_block_delta").key("index").num(index_).key("delta").begin_object();
      d.key("type").str("input_json_delta").key("partial_json").str(c.arguments).end_object().end_object();
      out += event("content_block_delta", d.text());
      open_ = "tool_use";
      out += close_block();
    }
    return out;
  }

  std::string done(const Piece& total, const Summary& s) override {
    if (!total.calls.empty()) called_ = true;
    const std::string reason = called_ && s.done_reason == "stop" ? "tool_use" : s.done_reason == "length" ? "max_tokens" : "end_turn";
    if (!stream_) {
      JsonWriter w;
      w.begin_object().key("id").str(id_).key("type").str("message").key("role").str("assistant").key("model").str(model_);
      w.key("content").begin_array();
      if (!total.thinking.empty()) w.begin_object().key("type").str("thinking").key("thinking").str(total.thinking).end_object();
      if (!total.content.empty() || (total.thinking.empty() && total.calls.empty()))
        w.begin_object().key("type").str("text").key("text").str(total.content).end_object();
      for (const ToolCall& c : total.calls)
        w.begin_object().key("type").str("tool_use").key("id").str(c.id).key("name").str(c.name).key("input").raw(c.arguments).end_object();
      w.end_array().key("stop_reason").str(reason).key("stop_sequence").raw("null");
      usage(w, s);
      return w.end_object().text();
    }
    std::string out = start_block();
    out += close_block();
    JsonWriter w;
    w.begin_object().key("type").str("message_delta").key("delta").begin_object().key("stop_reason").str(reason);
    w.key("stop_sequence").raw("null").end_object();
    usage(w, s);
    out += event("message_delta", w.end_object().text());
    return out + event("message_stop", R"({"type":"message_stop"})");
  }

  std::string error(const std::string& message) override {
    const std::string e = anthropic_error(500, message);
    return stream_ ? event("error", e) : e;
  }
  std::string loaded(const std::string& done_reason) override {
    Summary s;
    s.done_reason = done_reason;
    return done({}, s);
  }

 private:
  static std::string event(const char* type, const std::string& json) { return std::string("event: ") + type + "\ndata: " + json + "\n\n"; }
  // message_start, once, before anything else.
  std::string start_block() {
    if (started_) return "";
    started_ = true;
    JsonWriter w;
    w.begin_object().key("type").str("message_start").key("message").begin_object().key("id").str(id_).key("type").str("message");
    w.key("role").str("assistant").key("model").str(model_).key("content").begin_array().end_array();
    w.key("stop_reason").raw("null").key("stop_sequence").raw("null");
    w.key("usage").begin_object().key("input_tokens").num(int64_t{0}).key("output_tokens").num(int64_t{0}).end_object();
    return event("message_start", w.end_object().end_object().text());
  }
  std::string close_block() {
    if (open_.empty()) return "";
    open_.clear();
    JsonWriter w;
    const std::string out = event("content_block_stop", w.begin_object().key("type").str("content_block_stop").key("index").num(index_).end_object().text());
    ++index_;
    return out;
  }
  // A delta of a text or thinking block, opening the block first when needed.
  std::string delta(const char* block, const char* kind, const char* field, const std::string& text) {
    std::string out = start_block();
    if (open_ != block) {
      out += close_block();
      JsonWriter w;
      w.begin_object().key("type").str("content_block_start").key("index").num(index_).key("content_block").begin_object();
      w.key("type").str(block).key(field).str("").end_object().end_object();
      out += event("content_block_start", w.text());
      open_ = block;
    }
    JsonWriter w;
    w.begin_object().key("type").str("content_block_delta").key("index").num(index_).key("delta").begin_object();
    w.key("type").str(kind).key(field).str(text).end_object().end_object();
    return out + event("content_block_delta", w.text());
  }
  static void usage(JsonWriter& w, const Summary& s) {
    w.key("usage").begin_object().key("input_tokens").num(int64_t{s.prompt_tokens}).key("output_tokens").num(int64_t{s.eval_count}).end_object();
  }
  std::string model_;
  bool stream_;
  std::string id_;
  bool started_ = false, called_ = false;
  std::string open_;  // the type of the open content block, or empty
  int64_t index_ = 0;
};

}  // namespace

std::unique_ptr<AnswerWriter> anthropic_writer(std::string model, bool stream) {
  return std::make_unique<AnthropicWriter>(std::move(model), stream);
}

namespace {

bool model_can_think(Inference& inference, const std::string& body) {
  simdjson::dom::parser peek;
  std::string_view model_name;
  if (peek.parse(body).get_object()["model"].get_string().get(model_name)) return false;
  return inference.can_think(std::string(model_name));
}

}  // namespace

void anthropic_count_tokens(Inference& inference, const http::Request& req, http::Response& res) {
  auto r = anthropic_request(req.body, model_can_think(inference, req.body), true);
  if (!r) {
    res.status = 400;
    res.set_content(anthropic_error(400, r.message()), "application/json");
    return;
  }
  http::Request inner = req;
  inner.body = r.value().ollama_body;
  int count = 0;
  if (auto refused = inference.count_chat_tokens(inner, count)) {
    res.status = refused->status;
    res.set_content(anthropic_error(refused->status, refused->message), "application/json");
    return;
  }
  res.set_content(JsonWriter().begin_object().key("input_tokens").num(int64_t{count}).end_object().text(), "application/json");
}

void anthropic_messages(Inference& inference, const http::Request& req, http::Response& res) {
  auto r = anthropic_request(req.body, model_can_think(inference, req.body));
  if (!r) {
    res.status = 400;
    res.set_content(anthropic_error(400, r.message()), "application/json");
    return;
  }
  http::Request inner = req;
  inner.body = r.value().ollama_body;
  const std::string model = r.value().model;
  inference.chat(inner, res, [model](const std::string&, bool stream) -> std::unique_ptr<AnswerWriter> {
    return anthropic_writer(model, stream);
  });
  if (res.status >= 400) {  // a refusal before the answer started, in Anthropic's shape
    simdjson::dom::parser p;
    std::string_view message = res.body, m;
    if (!p.parse(res.body).get_object()["error"].get_string().get(m)) message = m;
    res.set_content(anthropic_error(res.status, std::string(message)), "application/json");
  }
}

}  // namespace hearth::server
