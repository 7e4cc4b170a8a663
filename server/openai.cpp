#include "server/openai.h"

#include <simdjson.h>

#include <chrono>
#include <random>

#include "server/json_writer.h"

namespace hearth::server {

namespace {

using simdjson::dom::element;

std::string quote(std::string_view s) { return tmpl::json_quote(s); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// OpenAI's reasoning effort as Ollama's think value: false, or a level.
Result<std::string> think_of(std::string_view effort) {
  if (effort == "none") return std::string("false");
  if (effort == "minimal") return quote("low");
  if (effort == "low" || effort == "medium" || effort == "high" || effort == "max") return quote(effort);
  if (effort == "xhigh" || effort == "ultra") return quote("max");
  return Error{"invalid reasoning value: '" + std::string(effort) + "' (must be \"none\", \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"max\" or \"ultra\")"};
}

// A message's content: a string, null, or parts (text; image_url with base64 data).
Status content_of(simdjson::dom::object obj, std::vector<std::string>& texts, std::vector<std::string>& images) {
  element content;
  std::string_view text;
  simdjson::dom::array parts;
  if (obj["content"].get(content) || content.is_null()) return {};
  if (!content.get_string().get(text)) {
    texts.emplace_back(text);
    return {};
  }
  if (content.get_array().get(parts)) return Error{"invalid message content type"};
  for (element part : parts) {
    std::string_view type, t, url;
    if (part["type"].get_string().get(type)) return Error{"invalid message content: each part needs a \"type\""};
    if (type == "text") {
      if (part["text"].get_string().get(t)) return Error{"invalid message content: a text part needs \"text\""};
      texts.emplace_back(t);
    } else if (type == "image_url") {
      if (part["image_url"]["url"].get_string().get(url) && part["image_url"].get_string().get(url))
        return Error{"invalid message content: an image_url part needs a url"};
      if (url.rfind("data:", 0) != 0) return Error{"image URLs are not currently supported, please use base64 encoded data instead"};
      const size_t comma = url.find(";base64,");
      if (comma == std::string_view::npos) return Error{"invalid image input"};
      images.emplace_back(url.substr(comma + 8));
    } else {
      return Error{"invalid message part type: " + std::string(type)};
    }
  }
  return {};
}

// An assistant's tool_calls (arguments a JSON string of an object) as Ollama's; `calls`
// learns their ids.
Status tool_calls_of(simdjson::dom::array tcs, JsonWriter& w, std::map<std::string, std::string>& calls) {
  w.key("tool_calls").begin_array();
  for (element tc : tcs) {
    std::string_view name, args, id;
    if (tc["function"]["name"].get_string().get(name)) return Error{"invalid tool call: no function name"};
    if (tc["function"]["arguments"].get_string().get(args)) args = "{}";
    simdjson::dom::parser p;
    simdjson::dom::object parsed;
    if (p.parse(args.data(), args.size()).get_object().get(parsed)) return Error{"invalid tool call arguments"};
    if (!tc["id"].get_string().get(id)) calls[std::string(id)] = std::string(name);
    w.begin_object().key("function").begin_object().key("name").str(name).key("arguments").raw(simdjson::minify(parsed));
    w.end_object().end_object();
  }
  w.end_array();
  return {};
}

// One OpenAI message as Ollama messages (a content array gives one message per part).
// `calls` maps the tool-call ids seen so far to their function names.
Status messages_of(element m, JsonWriter& w, std::map<std::string, std::string>& calls) {
  simdjson::dom::object obj;
  if (m.get_object().get(obj)) return Error{"invalid message: each message must be an object"};
  std::string_view role;
  if (obj["role"].get_string().get(role)) return Error{"invalid message: a message needs a \"role\""};
  std::string tool_name;
  if (role == "tool") {
    std::string_view name, id;
    if (!obj["name"].get_string().get(name)) tool_name = name;
    else if (!obj["tool_call_id"].get_string().get(id))
      if (auto it = calls.find(std::string(id)); it != calls.end()) tool_name = it->second;
  }
  std::vector<std::string> texts, images;
  if (Status s = content_of(obj, texts, images); !s) return s;
  if (texts.empty()) texts.emplace_back();
  std::string_view reasoning;
  const bool has_reasoning = !obj["reasoning"].get_string().get(reasoning) || !obj["reasoning_content"].get_string().get(reasoning);
  for (size_t i = 0; i < texts.size(); ++i) {
    w.begin_object().key("role").str(role).key("content").str(texts[i]);
    if (!tool_name.empty()) w.key("tool_name").str(tool_name);
    simdjson::dom::array tcs;
    if (i == 0) {  // the reasoning, images and calls go with the first part
      if (has_reasoning) w.key("thinking").str(reasoning);
      if (!images.empty()) {
        w.key("images").begin_array();
        for (const std::string& img : images) w.str(img);
        w.end_array();
      }
      if (!obj["tool_calls"].get_array().get(tcs))
        if (Status s = tool_calls_of(tcs, w, calls); !s) return s;
    }
    w.end_object();
  }
  return {};
}

// OpenAI's usage object.
void usage(JsonWriter& w, const Summary& s) {
  w.key("usage").begin_object().key("prompt_tokens").num(int64_t{s.prompt_tokens}).key("completion_tokens").num(int64_t{s.eval_count});
  w.key("total_tokens").num(int64_t{s.prompt_tokens} + s.eval_count).end_object();
}

// The sampling fields both endpoints share, as Ollama's options: OpenAI's defaults
// (temperature and top_p 1) override the model's, as Ollama does.
Status sampling_options(simdjson::dom::object req, JsonWriter& w) {
  w.key("options").begin_object();
  double d;
  w.key("temperature").num(!req["temperature"].get_double().get(d) ? d : 1.0);
  w.key("top_p").num(!req["top_p"].get_double().get(d) && d > 0 ? d : 1.0);
  for (auto [from, to] : {std::pair{"max_tokens", "num_predict"}, std::pair{"max_completion_tokens", "num_predict"}, std::pair{"seed", "seed"}})
    if (int64_t v; !req[from].get_int64().get(v)) w.key(to).num(v);
  for (const char* k : {"frequency_penalty", "presence_penalty"})
    if (!req[k].get_double().get(d)) w.key(k).num(d);
  simdjson::dom::object bias;
  if (!req["logit_bias"].get_object().get(bias) && bias.size() > 0) {
    w.key("logit_bias").begin_object();
    for (auto [id, v] : bias) {
      if (id.empty() || id.size() > 9 || id.find_first_not_of("0123456789") != std::string_view::npos)
        return Error{"Invalid key in 'logit_bias': " + std::string(id) + " (keys are token ids)"};
      if (v.get_double().get(d) || d < -100 || d > 100)
        return Error{"Invalid value in 'logit_bias' for " + std::string(id) + ": a number from -100 to 100"};
      w.key(id).num(d);
    }
    w.end_object();
  }
  element stop;
  std::string_view one;
  if (!req["stop"].get(stop) && !stop.is_null()) {
    w.key("stop").begin_array();
    simdjson::dom::array many;
    if (!stop.get_string().get(one)) w.str(one);
    else if (!stop.get_array().get(many))
      for (element s : many) {
        if (s.get_string().get(one)) return Error{"invalid stop: a stop sequence must be a string"};
        w.str(one);
      }
    else return Error{"invalid stop: a string or an array of strings"};
    w.end_array();
  }
  w.end_object();
  return {};
}

// `n`: how many choices to decode, 1 (absent or null) to kMaxChoices.
constexpr int64_t kMaxChoices = 128;

Result<int> choices_of(simdjson::dom::object req) {
  element v;
  if (req["n"].get(v) || v.is_null()) return 1;
  int64_t n;
  if (v.get_int64().get(n)) return Error{"invalid n: must be an integer"};
  if (n < 1 || n > kMaxChoices) return Error{"invalid n: " + std::to_string(n) + " (must be from 1 to " + std::to_string(kMaxChoices) + ")"};
  return static_cast<int>(n);
}

// What tool_choice asks: "auto" (or absent), "none", "required", or a named function.
enum class Forced { Auto, None, Required, Named };

Result<Forced> forced_tools(simdjson::dom::object req) {
  element choice;
  if (req["tool_choice"].get(choice) || choice.is_null()) return Forced::Auto;
  std::string_view s;
  if (!choice.get_string().get(s)) {
    if (s == "auto") return Forced::Auto;
    if (s == "none") return Forced::None;
    if (s == "required") return Forced::Required;
    return Error{"invalid tool_choice: \"" + std::string(s) + "\" (must be \"auto\", \"none\", \"required\" or a function)"};
  }
  std::string_view name;
  if (choice["function"]["name"].get_string().get(name)) return Error{"invalid tool_choice: a function choice needs function.name"};
  return Forced::Named;
}

// A JSON schema whose documents are calls of the allowed tools: {"name": one of them,
// "arguments": its parameters}. The named function only, when tool_choice names one.
Result<std::string> call_schema(simdjson::dom::object req) {
  simdjson::dom::array tools;
  if (req["tools"].get_array().get(tools) || tools.size() == 0) return Error{"tool_choice forces a call but there are no tools"};
  std::string_view only;
  if (req["tool_choice"]["function"]["name"].get_string().get(only)) only = {};
  JsonWriter w;
  w.begin_object().key("anyOf").begin_array();
  bool any = false;
  for (element t : tools) {
    std::string_view name;
    if (t["function"]["name"].get_string().get(name)) return Error{"invalid tools: each tool needs function.name"};
    if (!only.empty() && name != only) continue;
    element params;
    const std::string args = t["function"]["parameters"].get(params) || params.is_null() ? R"({"type":"object"})" : simdjson::minify(params);
    w.begin_object().key("type").str("object").key("properties").begin_object();
    w.key("name").begin_object().key("const").str(name).end_object().key("arguments").raw(args).end_object();
    w.key("required").begin_array().str("name").str("arguments").end_array().key("additionalProperties").boolean(false).end_object();
    any = true;
  }
  if (!any) return Error{"tool_choice names \"" + std::string(only) + "\", which is not one of the tools"};
  return w.end_array().end_object().text();
}

}  // namespace

std::string openai_error(int status, const std::string& message) {
  // OpenAI's error types by HTTP status; any other status is an api_error.
  static constexpr std::pair<int, const char*> kTypes[] = {
      {400, "invalid_request_error"}, {401, "authentication_error"}, {404, "not_found_error"}};
  const char* type = "api_error";
  for (const auto& [code, name] : kTypes)
    if (code == status) type = name;
  return JsonWriter().begin_object().key("error").begin_object().key("message").str(message).key("type").str(type)
      .key("param").raw("null").key("code").raw("null").end_object().end_object().text();
}

Result<OpenAIChatRequest> openai_chat_request(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::object req;
  if (parser.parse(body.data(), body.size()).get_object().get(req)) return Error{"invalid request: the body must be a JSON object"};
  OpenAIChatRequest out;
  std::string_view model;
  if (req["model"].get_string().get(model) || model.empty()) return Error{"model is required"};
  out.model = model;
  simdjson::dom::array messages;
  if (req["messages"].get_array().get(messages) || messages.size() == 0) return Error{"[] is too short - 'messages'"};
  bool flag;
  if (!req["stream"].get_bool().get(flag)) out.stream = flag;
  if (!req["stream_options"]["include_usage"].get_bool().get(flag)) out.include_usage = flag;
  auto n = choices_of(req);
  if (!n) return n.error();
  out.n = n.value();

  JsonWriter w;
  w.begin_object().key("model").str(model).key("stream").boolean(out.stream);
  w.key("messages").begin_array();
  std::map<std::string, std::string> calls;
  for (element m : messages)
    if (Status s = messages_of(m, w, calls); !s) return s.error();
  w.end_array();

  if (Status st = sampling_options(req, w); !st) return st.error();

  // response_format → format.
  std::string_view type;
  if (!req["response_format"]["type"].get_string().get(type)) {
    if (type == "json_object") w.key("format").str("json");
    else if (type == "json_schema") {
      element schema;
      if (req["response_format"]["json_schema"]["schema"].get(schema)) return Error{"response_format json_schema needs json_schema.schema"};
      w.key("format").raw(simdjson::minify(schema));
    } else if (type != "text") {
      return Error{"invalid response_format type: " + std::string(type)};
    }
  }
  // tools, unless tool_choice is "none"; "required" or a named function force a call.
  auto forced = forced_tools(req);
  if (!forced) return forced.error();
  element tools;
  if (forced.value() != Forced::None && !req["tools"].get(tools) && !tools.is_null()) w.key("tools").raw(simdjson::minify(tools));
  if (forced.value() == Forced::Required || forced.value() == Forced::Named) {
    std::string_view kind;
    if (!req["response_format"]["type"].get_string().get(kind) && kind != "text")
      return Error{"response_format cannot be combined with a tool_choice that forces a call"};
    auto schema = call_schema(req);
    if (!schema) return schema.error();
    w.key("format").raw(schema.value());
    w.key(kForcedToolsField).boolean(true);
  }
  // reasoning_effort / reasoning.effort → think.
  std::string_view effort;
  if (!req["reasoning_effort"].get_string().get(effort) || !req["reasoning"]["effort"].get_string().get(effort)) {
    auto t = think_of(effort);
    if (!t) return t.error();
    w.key("think").raw(t.value());
  }
  if (!req["logprobs"].get_bool().get(flag)) w.key("logprobs").boolean(flag);
  if (int64_t top; !req["top_logprobs"].get_int64().get(top)) w.key("top_logprobs").num(top);
  out.ollama_body = w.end_object().text();
  return out;
}

Result<OpenAICompletionRequest> openai_completion_request(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::object req;
  if (parser.parse(body.data(), body.size()).get_object().get(req)) return Error{"invalid request: the body must be a JSON object"};
  OpenAICompletionRequest out;
  std::string_view model, prompt, suffix;
  if (req["model"].get_string().get(model) || model.empty()) return Error{"model is required"};
  out.model = model;
  element p;
  if (req["prompt"].get(p) || p.get_string().get(prompt)) return Error{"prompt must be a string (arrays of prompts and token arrays are not supported)"};
  bool flag;
  if (!req["stream"].get_bool().get(flag)) out.stream = flag;
  if (!req["stream_options"]["include_usage"].get_bool().get(flag)) out.include_usage = flag;
  if (!req["echo"].get_bool().get(flag) && flag) {
    if (element lp; !req["logprobs"].get(lp) && !lp.is_null())
      return Error{"echo with logprobs is not supported (the prompt's own log probabilities are not computed)"};
    out.echo = prompt;
  }
  auto n = choices_of(req);
  if (!n) return n.error();
  out.n = n.value();
  if (int64_t b; !req["best_of"].get_int64().get(b) && b != n.value())
    return Error{"best_of other than n is not supported (every choice decoded is returned)"};
  JsonWriter w;
  w.begin_object().key("model").str(model).key("prompt").str(prompt).key("stream").boolean(out.stream);
  if (!req["suffix"].get_string().get(suffix) && !suffix.empty()) w.key("suffix").str(suffix);
  if (Status st = sampling_options(req, w); !st) return st.error();
  if (int64_t lp; !req["logprobs"].get_int64().get(lp)) {
    if (lp < 0 || lp > 20) return Error{"logprobs must be between 0 and 20"};
    w.key("logprobs").boolean(true).key("top_logprobs").num(lp);
    out.logprobs = true;
  }
  out.ollama_body = w.end_object().text();
  return out;
}

namespace {

// What a writer of several choices keeps until the last one ends.
struct Choices {
  explicit Choices(int n) : totals(static_cast<size_t>(n)), reasons(static_cast<size_t>(n)) {}
  std::vector<Piece> totals;         // non-streamed: each choice's whole output
  std::vector<std::string> reasons;  // each choice's finish_reason
  Summary usage;                     // prompt tokens once, generated tokens of all choices
  int ended = 0;
  // Records choice s.choice's end; true when it was the last.
  bool end(const Piece& total, const Summary& s, std::string reason) {
    const size_t i = static_cast<size_t>(s.choice);
    totals[i] = total;
    reasons[i] = std::move(reason);
    usage.prompt_tokens = s.prompt_tokens;
    usage.eval_count += s.eval_count;
    return ++ended == static_cast<int>(totals.size());
  }
};

// OpenAI's chat.completion object, or its chunks as server-sent events.
class OpenAIChatWriter : public AnswerWriter {
 public:
  OpenAIChatWriter(std::string model, bool stream, bool include_usage, int n)
      : model_(std::move(model)), stream_(stream), include_usage_(include_usage), created_(unix_now()), choices_(n),
        first_(static_cast<size_t>(n), true), called_(static_cast<size_t>(n), false) {
    static thread_local std::mt19937 rng(std::random_device{}());
    id_ = "chatcmpl-" + std::to_string(rng() % 1000000);
  }
  const char* content_type(bool stream) const override { return stream ? "text/event-stream" : "application/json"; }

  std::string chunk(const Piece& p) override {
    if (p.empty()) return "";
    std::string out;
    // Reasoning and the rest in separate chunks, as Ollama sends them.
    if (!p.thinking.empty()) {
      Piece t;
      t.choice = p.choice;
      t.thinking = p.thinking;
      out += event(delta(t, nullptr));
    }
    Piece rest = p;
    rest.thinking.clear();
    if (!rest.empty() || out.empty()) out += event(delta(rest, nullptr));
    if (!p.calls.empty()) called_[static_cast<size_t>(p.choice)] = true;
    return out;
  }

  std::string done(const Piece& total, const Summary& s) override {
    const size_t i = static_cast<size_t>(s.choice);
    if (!total.calls.empty()) called_[i] = true;
    const std::string reason = s.done_reason == "stop" && called_[i] ? "tool_calls" : s.done_reason;
    std::string out;
    if (stream_) {  // each choice's finish as it comes
      Piece finish;
      finish.choice = s.choice;
      out = event(delta(finish, &reason));
    }
    if (!choices_.end(total, s, reason)) return out;
    if (!stream_) {
      JsonWriter w;
      head(w, "chat.completion");
      w.key("choices").begin_array();
      for (size_t k = 0; k < choices_.totals.size(); ++k) {
        w.begin_object().key("index").num(static_cast<int64_t>(k)).key("message");
        message(w, choices_.totals[k], false);
        w.key("finish_reason").str(choices_.reasons[k]).key("logprobs");
        logprobs(w, choices_.totals[k]);
        w.end_object();
      }
      w.end_array();
      usage(w, choices_.usage);
      return w.end_object().text();
    }
    if (include_usage_) {
      JsonWriter w;
      head(w, "chat.completion.chunk");
      w.key("choices").begin_array().end_array();
      usage(w, choices_.usage);
      out += "data: " + w.end_object().text() + "\n\n";
    }
    return out + "data: [DONE]\n\n";
  }

  std::string error(const std::string& message) override {
    const std::string e = openai_error(500, message);
    return stream_ ? "data: " + e + "\n\n" : e;
  }

  std::string loaded(const std::string& done_reason) override {
    choices_ = Choices(1);
    Summary s;
    s.done_reason = done_reason;
    return done({}, s);
  }

 private:
  void head(JsonWriter& w, const char* object) const {
    w.begin_object().key("id").str(id_).key("object").str(object).key("created").num(created_).key("model").str(model_);
    w.key("system_fingerprint").str("fp_ollama");
  }
  // A chunk: the piece as a delta (role on its choice's first), or the finish with an
  // empty delta.
  std::string delta(const Piece& p, const std::string* finish) {
    const size_t i = static_cast<size_t>(p.choice);
    JsonWriter w;
    head(w, "chat.completion.chunk");
    w.key("choices").begin_array().begin_object().key("index").num(int64_t{p.choice}).key("delta");
    message(w, p, !finish && first_[i]);
    if (!finish) first_[i] = false;
    w.key("finish_reason");
    if (finish) w.str(*finish);
    else w.raw("null");
    if (!p.logprobs.empty()) {
      w.key("logprobs");
      logprobs(w, p);
    }
    w.end_object().end_array();
    return w.end_object().text();
  }
  static std::string event(const std::string& json) { return "data: " + json + "\n\n"; }
  // A message (or a delta: only what it has, the role on the first).
  void message(JsonWriter& w, const Piece& p, bool with_role) const {
    w.begin_object();
    const bool whole = !stream_;
    if (whole || with_role) w.key("role").str("assistant");
    if (whole || !p.content.empty() || (with_role && p.calls.empty() && p.thinking.empty())) w.key("content").str(p.content);
    if (!p.thinking.empty()) w.key("reasoning").str(p.thinking);
    if (!p.calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const ToolCall& c : p.calls) {
        w.begin_object().key("id").str(c.id).key("index").num(int64_t{c.index}).key("type").str("function");
        w.key("function").begin_object().key("name").str(c.name).key("arguments").str(c.arguments).end_object().end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  static void logprobs(JsonWriter& w, const Piece& p) {
    if (p.logprobs.empty()) {
      w.raw("null");
      return;
    }
    auto one = [&](const std::string& token, double lp) {
      w.key("token").str(token).key("logprob").num(lp).key("bytes").begin_array();
      for (unsigned char c : token) w.num(int64_t{c});
      w.end_array();
    };
    w.begin_object().key("content").begin_array();
    for (const TokenLogprobText& t : p.logprobs) {
      w.begin_object();
      one(t.token, t.logprob);
      w.key("top_logprobs").begin_array();
      for (const auto& [tok, lp] : t.top) {
        w.begin_object();
        one(tok, lp);
        w.end_object();
      }
      w.end_array().end_object();
    }
    w.end_array().end_object();
  }
  std::string model_, id_;
  bool stream_, include_usage_;
  int64_t created_;
  Choices choices_;
  std::vector<bool> first_, called_;  // per choice: no chunk sent yet; a tool call seen
};

}  // namespace

namespace {

// OpenAI's text_completion object, or its chunks as server-sent events.
class OpenAICompletionWriter : public AnswerWriter {
 public:
  OpenAICompletionWriter(std::string model, bool stream, bool include_usage, bool logprobs, int n, std::string echo)
      : model_(std::move(model)), stream_(stream), include_usage_(include_usage), logprobs_(logprobs), created_(unix_now()),
        choices_(n), offset_(static_cast<size_t>(n), 0), echo_(std::move(echo)), echoed_(static_cast<size_t>(n), echo_.empty()) {
    static thread_local std::mt19937 rng(std::random_device{}());
    id_ = "cmpl-" + std::to_string(rng() % 1000000);
  }
  const char* content_type(bool stream) const override { return stream ? "text/event-stream" : "application/json"; }
  std::string chunk(const Piece& p) override {
    if (p.content.empty() && p.logprobs.empty()) return "";  // reasoning is not part of a completion
    Piece q = p;
    if (!echoed_[static_cast<size_t>(p.choice)]) {  // echo: the prompt starts each choice's text
      echoed_[static_cast<size_t>(p.choice)] = true;
      q.content = echo_ + q.content;
    }
    JsonWriter w;
    head(w);
    w.key("choices").begin_array();
    choice(w, q, nullptr);
    w.end_array();
    return "data: " + w.end_object().text() + "\n\n";
  }
  std::string done(const Piece& total, const Summary& s) override {
    std::string out;
    if (stream_ && !echoed_[static_cast<size_t>(s.choice)]) {  // a choice that wrote nothing still echoes
      Piece prompt;
      prompt.choice = s.choice;
      prompt.content = echo_;
      out = chunk(prompt);
    }
    if (!stream_ && !echo_.empty()) {
      Piece whole = total;
      whole.content = echo_ + whole.content;
      return done_whole(whole, s);
    }
    return out + done_whole(total, s);
  }

  std::string error(const std::string& message) override {
    const std::string e = openai_error(500, message);
    return stream_ ? "data: " + e + "\n\n" : e;
  }
  std::string loaded(const std::string& done_reason) override {
    choices_ = Choices(1);
    echo_.clear();
    echoed_.assign(1, true);
    Summary s;
    s.done_reason = done_reason;
    return done({}, s);
  }

 private:
  // done() after the echo.
  std::string done_whole(const Piece& total, const Summary& s) {
    std::string out;
    if (stream_) {  // each choice's finish as it comes
      Piece finish;
      finish.choice = s.choice;
      JsonWriter w;
      head(w);
      w.key("choices").begin_array();
      choice(w, finish, &s.done_reason);
      w.end_array();
      out = "data: " + w.end_object().text() + "\n\n";
    }
    if (!choices_.end(total, s, s.done_reason)) return out;
    if (!stream_) {
      JsonWriter w;
      head(w);
      w.key("choices").begin_array();
      for (size_t k = 0; k < choices_.totals.size(); ++k) choice(w, choices_.totals[k], &choices_.reasons[k]);
      w.end_array();
      usage(w, choices_.usage);
      return w.end_object().text();
    }
    if (include_usage_) {
      JsonWriter w;
      head(w);
      w.key("choices").begin_array().end_array();
      usage(w, choices_.usage);
      out += "data: " + w.end_object().text() + "\n\n";
    }
    return out + "data: [DONE]\n\n";
  }
  void head(JsonWriter& w) const {
    w.begin_object().key("id").str(id_).key("object").str("text_completion").key("created").num(created_).key("model").str(model_);
    w.key("system_fingerprint").str("fp_ollama");
  }
  // One element of `choices`: the piece's text, its logprobs and the finish, if any.
  void choice(JsonWriter& w, const Piece& p, const std::string* finish) {
    w.begin_object().key("text").str(p.content).key("index").num(int64_t{p.choice});
    w.key("logprobs");
    if (logprobs_ && !p.logprobs.empty()) legacy_logprobs(w, p);
    else w.raw("null");
    w.key("finish_reason");
    if (finish) w.str(*finish);
    else w.raw("null");
    w.end_object();
  }
  // The completions API's own logprobs: parallel arrays and {token: logprob} maps.
  void legacy_logprobs(JsonWriter& w, const Piece& p) {
    int64_t& offset = offset_[static_cast<size_t>(p.choice)];
    w.begin_object().key("tokens").begin_array();
    for (const TokenLogprobText& t : p.logprobs) w.str(t.token);
    w.end_array().key("token_logprobs").begin_array();
    for (const TokenLogprobText& t : p.logprobs) w.num(t.logprob);
    w.end_array().key("top_logprobs").begin_array();
    for (const TokenLogprobText& t : p.logprobs) {
      w.begin_object();
      for (const auto& [tok, lp] : t.top) w.key(tok).num(lp);
      w.end_object();
    }
    w.end_array().key("text_offset").begin_array();
    for (const TokenLogprobText& t : p.logprobs) {
      w.num(offset);
      offset += static_cast<int64_t>(t.token.size());
    }
    w.end_array().end_object();
  }
  std::string model_, id_;
  bool stream_, include_usage_, logprobs_;
  int64_t created_;
  Choices choices_;
  std::vector<int64_t> offset_;  // per choice: where the next token's text starts
  std::string echo_;             // echo: the prompt, written before each choice's text
  std::vector<bool> echoed_;     // per choice: the echo is written (or there is none)
};

}  // namespace

void openai_refusal(http::Response& res) {
  if (res.status < 400) return;
  simdjson::dom::parser p;
  std::string_view message = res.body, m;
  if (!p.parse(res.body).get_object()["error"].get_string().get(m)) message = m;
  res.set_content(openai_error(res.status, std::string(message)), "application/json");
}

void openai_completions(Inference& inference, const http::Request& req, http::Response& res) {
  auto r = openai_completion_request(req.body);
  if (!r) {
    res.status = 400;
    res.set_content(openai_error(400, r.message()), "application/json");
    return;
  }
  http::Request inner = req;
  inner.body = r.value().ollama_body;
  const OpenAICompletionRequest c = r.value();
  inference.generate(
      inner, res,
      [c](const std::string&, bool stream) -> std::unique_ptr<AnswerWriter> {
        return std::make_unique<OpenAICompletionWriter>(c.model, stream, c.include_usage, c.logprobs, c.n, c.echo);
      },
      c.n);
  openai_refusal(res);
}

std::unique_ptr<AnswerWriter> openai_chat_writer(std::string model, bool stream, bool include_usage, int n) {
  return std::make_unique<OpenAIChatWriter>(std::move(model), stream, include_usage, n);
}

void openai_chat(Inference& inference, const http::Request& req, http::Response& res) {
  auto r = openai_chat_request(req.body);
  if (!r) {
    res.status = 400;
    res.set_content(openai_error(400, r.message()), "application/json");
    return;
  }
  http::Request inner = req;
  inner.body = r.value().ollama_body;
  const OpenAIChatRequest c = r.value();
  inference.chat(
      inner, res,
      [c](const std::string&, bool stream) -> std::unique_ptr<AnswerWriter> { return openai_chat_writer(c.model, stream, c.include_usage, c.n); },
      c.n);
  openai_refusal(res);
}

}  // namespace hearth::server
