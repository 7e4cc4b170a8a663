// /v1/responses answers: the response object and its typed event stream (server/responses.h).
#include "server/responses.h"

#include <chrono>

#include "server/json_writer.h"
#include "server/openai.h"

namespace hearth::server {

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One element of a response's `output`.
struct Item {
  enum class Kind { Reasoning, Message, Call } kind;
  std::string id;
  std::string text;  // the reasoning or the message text
  ToolCall call;     // Call
};

// An output item as JSON; `status` for messages and calls ("in_progress" while streaming).
void item_json(JsonWriter& w, const Item& it, const std::string& status) {
  w.begin_object().key("id").str(it.id);
  switch (it.kind) {
    case Item::Kind::Reasoning:
      w.key("type").str("reasoning").key("summary").begin_array();
      if (!it.text.empty()) w.begin_object().key("type").str("summary_text").key("text").str(it.text).end_object();
      w.end_array();
      break;
    case Item::Kind::Message:
      w.key("type").str("message").key("status").str(status).key("role").str("assistant").key("content").begin_array();
      if (status != "in_progress")
        w.begin_object().key("type").str("output_text").key("text").str(it.text).key("annotations").raw("[]").key("logprobs").raw("[]").end_object();
      w.end_array();
      break;
    case Item::Kind::Call:
      w.key("type").str("function_call").key("status").str(status).key("call_id").str(it.call.id).key("name").str(it.call.name);
      w.key("arguments").str(status == "in_progress" ? "" : it.call.arguments);
      break;
  }
  w.end_object();
}

// Responses' answer: one `response` object, or `event: <type>` / `data: {…}` events with
// sequence numbers — response.created and .in_progress first; each output item added,
// its deltas, its done events; response.completed (or .incomplete at max_output_tokens,
// .failed on an error) with the whole response last.
class ResponsesWriter : public AnswerWriter {
 public:
  ResponsesWriter(std::string model, bool stream, ResponsesEcho echo)
      : model_(std::move(model)), stream_(stream), echo_(std::move(echo)), id_("resp_" + random_hex(24)), created_(unix_now()) {}
  const char* content_type(bool stream) const override { return stream ? "text/event-stream" : "application/json"; }

  std::string chunk(const Piece& p) override {
    std::string out = start();
    if (!p.thinking.empty()) out += add_text(Item::Kind::Reasoning, p.thinking);
    if (!p.content.empty()) out += add_text(Item::Kind::Message, p.content);
    for (const ToolCall& c : p.calls) out += add_call(c);
    return out;
  }

  std::string done(const Piece& total, const Summary& s) override {
    const std::string status = s.done_reason == "length" ? "incomplete" : "completed";
    if (!stream_) {
      if (!total.thinking.empty()) items_.push_back({Item::Kind::Reasoning, "rs_" + random_hex(24), total.thinking, {}});
      if (!total.content.empty() || (total.thinking.empty() && total.calls.empty()))  // an answer has at least one item
        items_.push_back({Item::Kind::Message, "msg_" + random_hex(24), total.content, {}});
      for (const ToolCall& c : total.calls) items_.push_back({Item::Kind::Call, "fc_" + random_hex(24), "", c});
      return response(status, &s, nullptr);
    }
    std::string out = start();
    if (items_.empty()) out += add_text(Item::Kind::Message, "");  // an answer has at least one item
    out += close_open(status);
    JsonWriter w = fields();
    w.key("response").raw(response(status, &s, nullptr));
    return out + event("response." + status, w);
  }

  std::string error(const std::string& message) override {
    if (!stream_) return openai_error(500, message);
    std::string out = start();
    JsonWriter w = fields();
    w.key("response").raw(response("failed", nullptr, &message));
    return out + event("response.failed", w);
  }

  std::string loaded(const std::string& done_reason) override {
    Summary s;
    s.done_reason = done_reason;
    return done({}, s);
  }

 private:
  // The whole response object: its items so far, the request's echo, usage when ended.
  std::string response(const std::string& status, const Summary* s, const std::string* error) const {
    JsonWriter w;
    w.begin_object().key("id").str(id_).key("object").str("response").key("created_at").num(created_);
    w.key("completed_at");
    if (s) w.num(unix_now());
    else w.raw("null");
    w.key("status").str(status).key("incomplete_details");
    if (status == "incomplete") w.begin_object().key("reason").str("max_output_tokens").end_object();
    else w.raw("null");
    w.key("model").str(model_).key("previous_response_id").raw("null").key("instructions").raw(echo_.instructions);
    w.key("output").begin_array();
    for (const Item& it : items_) item_json(w, it, status == "incomplete" && it.kind == Item::Kind::Message ? "incomplete" : "completed");
    w.end_array().key("error");
    if (error) w.begin_object().key("code").str("server_error").key("message").str(*error).end_object();
    else w.raw("null");
    w.key("tools").raw(echo_.tools).key("tool_choice").raw(echo_.tool_choice).key("truncation").str("disabled");
    w.key("parallel_tool_calls").boolean(true).key("text").begin_object().key("format").raw(echo_.text_format).end_object();
    w.key("top_p").num(echo_.top_p).key("temperature").num(echo_.temperature).key("presence_penalty").num(int64_t{0});
    w.key("frequency_penalty").num(int64_t{0}).key("top_logprobs").num(int64_t{0}).key("reasoning").raw(echo_.reasoning);
    w.key("max_output_tokens").raw(echo_.max_output_tokens).key("max_tool_calls").raw("null").key("store").boolean(false);
    w.key("background").boolean(false).key("service_tier").str("default").key("metadata").raw("{}").key("usage");
    if (s) {
      w.begin_object().key("input_tokens").num(int64_t{s->prompt_tokens}).key("input_tokens_details").begin_object();
      w.key("cached_tokens").num(int64_t{s->prompt_tokens - s->prompt_eval_count}).end_object();
      w.key("output_tokens").num(int64_t{s->eval_count}).key("output_tokens_details").begin_object();
      w.key("reasoning_tokens").num(int64_t{0}).end_object().key("total_tokens").num(int64_t{s->prompt_tokens} + s->eval_count).end_object();
    } else {
      w.raw("null");
    }
    return w.end_object().text();
  }

  // One event: its type and sequence number, then the fields of `body` (an object left
  // open by its writer: fields()).
  std::string event(const std::string& type, JsonWriter& body) {
    const std::string fields = body.end_object().text().substr(1);  // "…}" after the "{"
    JsonWriter w;
    w.begin_object().key("type").str(type).key("sequence_number").num(seq_++);
    return "event: " + type + "\ndata: " + w.text() + (fields == "}" ? "" : ",") + fields + "\n\n";
  }
  static JsonWriter fields() {
    JsonWriter w;
    w.begin_object();
    return w;
  }

  // The opening events, once.
  std::string start() {
    if (!stream_ || started_) return "";
    started_ = true;
    std::string out;
    for (const char* type : {"response.created", "response.in_progress"}) {
      JsonWriter w = fields();
      w.key("response").raw(response("in_progress", nullptr, nullptr));
      out += event(type, w);
    }
    return out;
  }

  // Fields naming the current item.
  JsonWriter at(const Item& it) const {
    JsonWriter w = fields();
    w.key("item_id").str(it.id).key("output_index").num(static_cast<int64_t>(items_.size() - 1));
    return w;
  }

  // Text for a reasoning or message item: opens one (closing another) and sends a delta.
  std::string add_text(Item::Kind kind, const std::string& text) {
    std::string out;
    if (!open_ || items_.back().kind != kind) {
      out += close_open("completed");
      items_.push_back({kind, (kind == Item::Kind::Reasoning ? "rs_" : "msg_") + random_hex(24), "", {}});
      open_ = true;
      JsonWriter added = fields();
      added.key("output_index").num(static_cast<int64_t>(items_.size() - 1)).key("item");
      item_json(added, items_.back(), "in_progress");
      out += event("response.output_item.added", added);
      JsonWriter part = at(items_.back());
      if (kind == Item::Kind::Reasoning) {
        part.key("summary_index").num(int64_t{0}).key("part").raw(R"({"type":"summary_text","text":""})");
        out += event("response.reasoning_summary_part.added", part);
      } else {
        part.key("content_index").num(int64_t{0}).key("part").raw(R"({"type":"output_text","text":"","annotations":[],"logprobs":[]})");
        out += event("response.content_part.added", part);
      }
    }
    items_.back().text += text;
    if (text.empty()) return out;
    JsonWriter d = at(items_.back());
    if (kind == Item::Kind::Reasoning) {
      d.key("summary_index").num(int64_t{0}).key("delta").str(text);
      return out + event("response.reasoning_summary_text.delta", d);
    }
    d.key("content_index").num(int64_t{0}).key("delta").str(text).key("logprobs").raw("[]");
    return out + event("response.output_text.delta", d);
  }

  // A tool call: a function_call item, added, its arguments in one delta, done.
  std::string add_call(const ToolCall& c) {
    std::string out = close_open("completed");
    items_.push_back({Item::Kind::Call, "fc_" + random_hex(24), "", c});
    JsonWriter added = fields();
    added.key("output_index").num(static_cast<int64_t>(items_.size() - 1)).key("item");
    item_json(added, items_.back(), "in_progress");
    out += event("response.output_item.added", added);
    JsonWriter d = at(items_.back());
    d.key("delta").str(c.arguments);
    out += event("response.function_call_arguments.delta", d);
    JsonWriter a = at(items_.back());
    a.key("name").str(c.name).key("arguments").str(c.arguments);
    out += event("response.function_call_arguments.done", a);
    return out + item_done("completed");
  }

  // Closes the open reasoning or message item: its text's done events, then the item's.
  std::string close_open(const std::string& status) {
    if (!open_) return "";
    open_ = false;
    const Item& it = items_.back();
    JsonWriter t = at(it), p = at(it);
    std::string out;
    if (it.kind == Item::Kind::Reasoning) {
      t.key("summary_index").num(int64_t{0}).key("text").str(it.text);
      out += event("response.reasoning_summary_text.done", t);
      p.key("summary_index").num(int64_t{0}).key("part").begin_object().key("type").str("summary_text").key("text").str(it.text).end_object();
      out += event("response.reasoning_summary_part.done", p);
    } else {
      t.key("content_index").num(int64_t{0}).key("text").str(it.text).key("logprobs").raw("[]");
      out += event("response.output_text.done", t);
      p.key("content_index").num(int64_t{0}).key("part").begin_object().key("type").str("output_text").key("text").str(it.text);
      p.key("annotations").raw("[]").key("logprobs").raw("[]").end_object();
      out += event("response.content_part.done", p);
    }
    return out + item_done(status);
  }

  std::string item_done(const std::string& status) {
    JsonWriter w = fields();
    w.key("output_index").num(static_cast<int64_t>(items_.size() - 1)).key("item");
    item_json(w, items_.back(), items_.back().kind == Item::Kind::Message ? status : "completed");
    return event("response.output_item.done", w);
  }

  std::string model_;
  bool stream_;
  ResponsesEcho echo_;
  std::string id_;
  int64_t created_, seq_ = 0;
  std::vector<Item> items_;
  bool open_ = false;  // the last item is a reasoning or message item still receiving text
  bool started_ = false;
};

}  // namespace

std::unique_ptr<AnswerWriter> responses_writer(std::string model, bool stream, ResponsesEcho echo) {
  return std::make_unique<ResponsesWriter>(std::move(model), stream, std::move(echo));
}

void openai_responses(Inference& inference, const http::Request& req, http::Response& res) {
  auto refuse = [&](int status, const std::string& message) {
    res.status = status;
    res.set_content(openai_error(status, message), "application/json");
  };
  auto r = responses_request(req.body);
  if (!r) return refuse(400, r.message());
  auto chat = openai_chat_request(r.value().chat_body);
  if (!chat) return refuse(400, chat.message());
  http::Request inner = req;
  inner.body = chat.value().ollama_body;
  const ResponsesRequest rr = r.value();
  inference.chat(inner, res, [rr](const std::string&, bool stream) -> std::unique_ptr<AnswerWriter> {
    return responses_writer(rr.model, stream, rr.echo);
  });
  openai_refusal(res);
}

}  // namespace hearth::server
