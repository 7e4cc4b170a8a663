#include "server/inference.h"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>

#include "gguf/gguf.h"
#include "model/hparams.h"
#include "model/json_schema.h"
#include "server/answer.h"
#include "server/json_writer.h"
#include "server/name.h"
#include "server/options.h"
#include "server/prompt.h"
#include "server/thinking.h"
#include "server/tool_calls.h"

namespace hearth::server {

using tmpl::Value;
using model::TokenId;
using Clock = std::chrono::steady_clock;
namespace chrono = std::chrono;

namespace {

void answer(http::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json; charset=utf-8");
}
void refuse(http::Response& res, const Refusal& r) {
  answer(res, r.status, JsonWriter().begin_object().key("error").str(r.message).end_object().text());
}

// The request body as a map with lower-case top-level keys (Ollama matches keys
// case-insensitively; the last duplicate wins).
Result<Value> request_body(const http::Request& req) {
  if (req.body.empty()) return Error{"missing request body"};
  auto v = tmpl::from_json(req.body);
  if (!v) return Error{v.message()};
  if (v.value().kind == Value::Kind::Nil) return Value::of_map();
  if (v.value().kind != Value::Kind::Map) return Error{"json: cannot unmarshal non-object into Go value of type api.Request"};
  tmpl::Map lower;
  for (auto& [k, val] : *v.value().map) {
    std::string key = k;
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lower[key] = val;
  }
  return Value::of_map(std::move(lower));
}

const char* json_kind(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: case Value::Kind::Float: return "number";
    case Value::Kind::String: return "string";
    case Value::Kind::List: return "array";
    case Value::Kind::Map: return "object";
    case Value::Kind::Nil: return "null";
  }
  return "value";
}

// Typed reads of request fields; a wrong type reads as Go's decoder error.
struct Fields {
  const Value& body;
  std::string type;  // "GenerateRequest", "ChatRequest"
  std::optional<Refusal> bad;

  const Value& get(const char* key) const { return body.field(key); }
  void wrong(const char* key, const char* go_type) {
    if (!bad)
      bad = Refusal{400, std::string("json: cannot unmarshal ") + json_kind(get(key)) + " into Go struct field " + type + "." +
                             key + " of type " + go_type};
  }
  std::string str(const char* key) {
    const Value& v = get(key);
    if (v.kind == Value::Kind::Nil) return "";
    if (v.kind != Value::Kind::String) wrong(key, "string");
    return v.s;
  }
  bool flag(const char* key, bool fallback) {
    const Value& v = get(key);
    if (v.kind == Value::Kind::Nil) return fallback;
    if (v.kind != Value::Kind::Bool) wrong(key, "bool");
    return v.b;
  }
  int64_t integer(const char* key, int64_t fallback) {
    const Value& v = get(key);
    if (v.kind == Value::Kind::Nil) return fallback;
    if (v.kind != Value::Kind::Int) wrong(key, "int");
    return v.i;
  }
};

// A model of the store as a request uses it.
struct StoredModel {
  std::string name;          // as requested
  std::string full;          // host/namespace/model:tag
  std::string digest, path;  // the model blob
  std::string template_text, system;
  Value params, messages;
  model::HParams hp;
};

// Reads a model of the store and what a request needs of it; errors name the model.
Result<StoredModel> read_model(const Store& store, const std::string& name, const Manifest& m);

// The model the request's "model" field names, or the refusal: 404 for an unknown one (and
// for an empty one in generate), 400 for an invalid name (and an empty one in chat), as
// Ollama answers.
std::optional<Refusal> find_model(const Store& store, Fields& f, bool chat, std::string& name, StoredModel& out) {
  name = f.str("model");
  if (f.bad) return f.bad;
  if (name.empty()) return chat ? Refusal{400, "model is required"} : Refusal{404, "model '' not found"};
  const ModelName n = ModelName::parse(name);
  if (!n.valid()) return Refusal{400, "invalid model name"};
  auto m = store.find(n);
  if (!m) return Refusal{404, "model '" + name + "' not found"};
  auto s = read_model(store, name, m.value());
  if (!s) return Refusal{500, s.message()};
  out = std::move(s.value());
  return std::nullopt;
}

Result<StoredModel> read_model(const Store& store, const std::string& name, const Manifest& m) {
  const Layer* layer = m.layer("application/vnd.ollama.image.model");
  if (!layer) return Error{"model '" + name + "' has no model layer"};
  StoredModel s;
  s.name = name;
  s.full = m.name.full();
  s.digest = layer->digest;
  s.path = store.blob_path(layer->digest).string();
  s.template_text = store.layer_text(m, "application/vnd.ollama.image.template");
  if (s.template_text.empty()) s.template_text = "{{ .Prompt }}";
  s.system = store.layer_text(m, "application/vnd.ollama.image.system");
  for (auto [media, out] : {std::pair{"application/vnd.ollama.image.params", &s.params},
                            std::pair{"application/vnd.ollama.image.messages", &s.messages}}) {
    const std::string text = store.layer_text(m, media);
    if (text.empty()) continue;
    auto v = tmpl::from_json(text);
    if (!v) return Error{"model '" + name + "': unreadable layer " + media + ": " + v.message()};
    *out = v.value();
  }
  return s;
}

}  // namespace

// One generation request, checked and rendered, ready for the runner.
struct Inference::Call {
  bool chat = false;
  bool stream = true;
  bool raw = false;
  std::string model_name;
  StoredModel model;
  ModelOptions options;
  std::optional<runner::Nanos> keep_alive;
  // The prompt text, rendered once the model is loaded (chat truncation counts tokens).
  std::function<Result<std::string>(const model::Vocab&)> render;
  std::vector<TokenId> context_ids;  // generate's `context`: detokenized before the prompt
  bool empty = false;                // load or unload only
  bool want_context = false;
  int logprobs = -1;
  std::shared_ptr<const model::Grammar> grammar;  // format: structured output
  // The same format with room to think first (a schema that compiled once compiles again).
  std::function<std::shared_ptr<const model::Grammar>(const model::ThinkingRoom&)> grammar_with_room;
  ThinkSetting think;                             // what the template sees of `think`
  std::pair<std::string, std::string> think_tags; // split the output when think is on and these are known
  std::string tool_tag;                           // chat with tools: where calls start (Template::tool_call_tag)
  std::vector<std::string> tool_names;
  Inference::WriterFactory writer;                // null: Ollama's
  int choices = 1;                                // answers decoded from the one prompt (OpenAI's n)
  Clock::time_point start = Clock::now();
};

namespace {

// The request's top-level field `key` (matched case-insensitively, the last one winning,
// as request_body() does) as JSON text in the body's own key order: a schema's
// properties are generated in the order the client wrote them.
std::string raw_field(std::string_view body, std::string_view key) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(body.data(), body.size()).get_object().get(obj)) return {};
  std::string found;
  for (auto [k, v] : obj) {
    std::string lower(k);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == key) found = simdjson::minify(v);
  }
  return found;
}

// `format`: none ("" or null), "json" (any object) or a JSON schema; the grammar, and a
// way to make it again with room for a thinking model's reasoning first.
Result<std::shared_ptr<const model::Grammar>> format_grammar(const Value& format, std::string_view body,
                                                             std::function<std::shared_ptr<const model::Grammar>(const model::ThinkingRoom&)>& again) {
  if (format.kind == Value::Kind::Nil || (format.kind == Value::Kind::String && format.s.empty())) return std::shared_ptr<const model::Grammar>();
  if (format.kind == Value::Kind::String && format.s == "json") {
    again = [](const model::ThinkingRoom& room) { return model::json_object_grammar(room); };
    return model::json_object_grammar();
  }
  if (format.kind != Value::Kind::Map)
    return Error{"invalid format: " + tmpl::to_json(format) + "; expected \"json\" or a valid JSON Schema object"};
  std::string schema = raw_field(body, "format");
  auto g = model::compile_json_schema(schema);
  if (!g) return Error{"invalid format: " + g.message()};
  again = [schema](const model::ThinkingRoom& room) { return model::compile_json_schema(schema, room).value(); };
  return g.value();
}

// Fields both endpoints share: stream, keep_alive, options, format, think, logprobs.
// keep_alive: a duration string or a number of seconds; absent leaves `keep_alive` unset.
std::optional<Refusal> keep_alive_field(Fields& f, std::optional<runner::Nanos>& keep_alive) {
  const Value& ka = f.get("keep_alive");
  if (ka.kind == Value::Kind::Int || ka.kind == Value::Kind::Float) {
    auto d = runner::parse_keep_alive(ka.kind == Value::Kind::Int ? static_cast<double>(ka.i) : ka.f);
    if (!d) return Refusal{400, d.message()};
    keep_alive = d.value();
  } else if (ka.kind == Value::Kind::String) {
    auto d = runner::parse_keep_alive(ka.s);
    if (!d) return Refusal{400, d.message()};
    keep_alive = d.value();
  } else if (ka.kind != Value::Kind::Nil) {
    return Refusal{400, "json: cannot unmarshal " + std::string(json_kind(ka)) + " into Go value of type api.Duration"};
  }
  return std::nullopt;
}

// The model's parameters, then the request's options, clamped to what the model allows.
std::optional<Refusal> model_options(Fields& f, const StoredModel& m, int default_num_ctx, ModelOptions& opt) {
  opt = default_model_options();
  opt.num_ctx = default_num_ctx;
  if (Status s = apply_options(m.params, opt); !s) return Refusal{500, "model parameters: " + s.message()};
  if (Status s = apply_options(f.get("options"), opt); !s) return Refusal{400, s.message()};
  if (opt.num_ctx < 4) opt.num_ctx = 4;
  if (m.hp.n_ctx_train > 0 && static_cast<uint32_t>(opt.num_ctx) > m.hp.n_ctx_train) opt.num_ctx = static_cast<int>(m.hp.n_ctx_train);
  if (opt.gen.sampling.repeat_last_n < 0) opt.gen.sampling.repeat_last_n = opt.num_ctx;
  return std::nullopt;
}

std::optional<Refusal> common_fields(Fields& f, std::string_view body, const tmpl::Template& t, int default_num_ctx, Inference::Call& call) {
  const StoredModel& m = call.model;
  call.stream = f.flag("stream", true);
  if (auto r = keep_alive_field(f, call.keep_alive)) return r;
  auto g = format_grammar(f.get("format"), body, call.grammar_with_room);
  if (!g) return Refusal{400, g.message()};
  call.grammar = g.value();
  const Value& think = f.get("think");
  if (think.kind == Value::Kind::String && think.s != "low" && think.s != "medium" && think.s != "high" && think.s != "max")
    return Refusal{400, "invalid think value: \"" + think.s + "\" (must be \"low\", \"medium\", \"high\", \"max\", true, or false)"};
  const bool capable = t.references("Think");
  if ((think.kind == Value::Kind::Bool && think.b) || think.kind == Value::Kind::String)
    if (!capable) return Refusal{400, "\"" + m.name + "\" does not support thinking"};
  // Absent, `think` is on for a model that can think (Ollama's default today).
  call.think.set = think.kind != Value::Kind::Nil;
  call.think.on = capable && (think.kind == Value::Kind::Bool ? think.b : true);
  call.think.level = think.kind == Value::Kind::String ? think.s : "";
  if (call.think.on) call.think_tags = t.thinking_tags();
  const bool want = f.flag("logprobs", false);
  const int64_t top = f.integer("top_logprobs", 0);
  if (top < 0 || top > 20) return Refusal{400, "top_logprobs must be between 0 and 20"};
  call.logprobs = want ? static_cast<int>(top) : -1;
  if (auto r = model_options(f, m, default_num_ctx, call.options)) return r;
  call.options.gen.shift = f.flag("shift", true);
  return f.bad;
}

// A model without Ollama's completion capability: an encoder, or any file that names a
// pooling (/api/show lists `embedding` instead of `completion` for those, as Ollama does).
bool embedding_only(const model::HParams& h) { return h.family == model::Family::Encoder || h.pooling != model::Pooling::Unspecified; }

// Images need a vision projector, which no model here has yet.
constexpr const char* kNoVision = "does not support images (it has no vision projector)";
// Counts a chat request may carry (the README's limits table); each past its limit is a
// 400 naming it. The body cap (64 MiB) and the template's step limit bound the rest.
constexpr size_t kMaxMessages = 10000;
constexpr size_t kMaxTools = 1000;

Result<std::vector<ChatMessage>> parse_messages(const Value& list) {
  std::vector<ChatMessage> out;
  if (list.kind == Value::Kind::Nil) return out;
  if (list.kind != Value::Kind::List) return Error{"json: cannot unmarshal " + std::string(json_kind(list)) + " into Go struct field ChatRequest.messages of type []api.Message"};
  if (list.list->size() > kMaxMessages)
    return Error{"too many messages: " + std::to_string(list.list->size()) + " (limit " + std::to_string(kMaxMessages) + ")"};
  for (const Value& m : *list.list) {
    if (m.kind != Value::Kind::Map) return Error{"json: cannot unmarshal " + std::string(json_kind(m)) + " into Go struct field ChatRequest.messages of type api.Message"};
    ChatMessage c;
    for (auto [key, out_field] : {std::pair{"role", &c.role}, std::pair{"content", &c.content}, std::pair{"thinking", &c.thinking},
                                  std::pair{"tool_name", &c.tool_name}}) {
      const Value& v = m.field(key);
      if (v.kind == Value::Kind::Nil) continue;
      if (v.kind != Value::Kind::String)
        return Error{"json: cannot unmarshal " + std::string(json_kind(v)) + " into Go struct field Message.messages." + key + " of type string"};
      *out_field = v.s;
    }
    for (char& ch : c.role) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const Value& images = m.field("images");
    if (images.kind == Value::Kind::List && !images.list->empty()) return Error{std::string(kNoVision)};
    c.tool_calls = m.field("tool_calls");
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

namespace {

// Token ids' log probabilities as text, for a writer.
std::vector<TokenLogprobText> logprob_texts(const model::Vocab& vocab, const std::vector<runner::TokenLogprob>& lps) {
  std::vector<TokenLogprobText> out;
  for (const runner::TokenLogprob& lp : lps) {
    TokenLogprobText t{vocab.piece(lp.token, false), lp.logprob, {}};
    for (const auto& [id, v] : lp.top) t.top.emplace_back(vocab.piece(id, false), v);
    out.push_back(std::move(t));
  }
  return out;
}

// One choice of an answer (OpenAI's n: several, decoded as parallel sequences): its
// sequence, cancelled if the response goes away before it ends, and its output parsers.
struct Choice {
  std::shared_ptr<runner::Sequence> seq;
  bool ended = false;
  Piece all;                                         // non-streamed: everything so far
  std::optional<ThinkingParser> thinking;            // think on and the template's tags known
  std::optional<ToolCallParser> tools;               // chat with tools
  Choice() = default;
  Choice(Choice&&) = default;
  ~Choice() {
    if (seq) seq->cancel();
  }
  // Generated text through the parsers: reasoning split off first, then tool calls.
  Piece parse(std::string_view text) {
    Piece p;
    ThinkingParser::Out t = thinking ? thinking->add(text) : ThinkingParser::Out{"", std::string(text)};
    p.thinking = std::move(t.thinking);
    feed_tools(std::move(t.content), p);
    return p;
  }
  // The end of the output: what the parsers held back.
  Piece finish() {
    Piece p;
    if (thinking) {
      ThinkingParser::Out t = thinking->finish();
      p.thinking = std::move(t.thinking);
      feed_tools(std::move(t.content), p);
    }
    if (tools) {
      ToolCallParser::Out c = tools->finish();
      p.content += c.content;
      for (ToolCall& x : c.calls) p.calls.push_back(std::move(x));
    }
    return p;
  }

 private:
  void feed_tools(std::string text, Piece& p) {
    if (!tools) {
      p.content += text;
      return;
    }
    ToolCallParser::Out c = tools->add(text);
    p.content += c.content;
    p.calls = std::move(c.calls);
  }
};

// An answer being written: the model held while its choices run.
struct Answer {
  runner::ModelCache::Lease lease;
  std::vector<Choice> choices;
  std::unique_ptr<AnswerWriter> writer;
  bool stream = true, want_context = false, logprobs = false;
  Clock::time_point start, last_token;
  Metrics* metrics = nullptr;
  int tokens = 0;  // text events seen
  bool ended = false;
};

// The bytes for one event of choice `i`.
std::string on_event(Answer& a, size_t i, runner::Event& e, const model::Vocab& vocab) {
  Choice& c = a.choices[i];
  if (e.kind == runner::Event::Kind::Error) {
    a.ended = true;  // one failed choice fails the answer; ~Choice cancels the rest
    return a.writer->error(e.error);
  }
  if (e.kind == runner::Event::Kind::Text) {
    if (a.metrics) {  // one text event per token
      const auto now = Clock::now();
      if (a.tokens++ == 0) a.metrics->first_token(chrono::duration<double>(now - a.start).count());
      else a.metrics->inter_token(chrono::duration<double>(now - a.last_token).count());
      a.last_token = now;
    }
    Piece p = c.parse(e.text);
    p.choice = static_cast<int>(i);
    if (a.logprobs) p.logprobs = logprob_texts(vocab, e.logprobs);
    if (!a.stream) {
      c.all.append(std::move(p));
      return "";
    }
    return a.writer->chunk(p);
  }
  c.ended = true;
  if (a.metrics) a.metrics->generation(e.prompt_tokens, e.prompt_tokens - e.prompt_eval_count, e.eval_count);
  Piece rest = c.finish();
  rest.choice = static_cast<int>(i);
  std::string before;  // streamed: what the parsers held back, as one more chunk
  if (a.stream) before = a.writer->chunk(rest);
  else c.all.append(std::move(rest));
  Summary s;
  s.choice = static_cast<int>(i);
  s.done_reason = e.done_reason;
  s.prompt_eval_count = e.prompt_eval_count;
  s.prompt_tokens = e.prompt_tokens;
  s.eval_count = e.eval_count;
  s.total_ns = chrono::duration_cast<chrono::nanoseconds>(Clock::now() - a.start).count();
  s.load_ns = a.lease.load_time().count();
  s.prompt_ns = e.prompt_eval_ns;
  s.eval_ns = e.eval_ns;
  if (a.want_context) s.context = &e.context;
  Piece total;
  if (!a.stream) {
    total = std::move(c.all);
    total.choice = static_cast<int>(i);
  }
  return before + a.writer->done(total, s);
}

// The next bytes to send, or "" while nothing is ready: waits for the first choice still
// running, then takes what the others have ready (a batch step gives each its token at
// the same time).
std::string next_bytes(Answer& a, const model::Vocab& vocab) {
  std::string out;
  bool waited = false;
  for (size_t i = 0; i < a.choices.size() && !a.ended; ++i) {
    if (a.choices[i].ended) continue;
    runner::Event e;
    const bool got = a.choices[i].seq->next(&e, std::chrono::milliseconds(waited ? 0 : 100));
    waited = true;
    if (got) out += on_event(a, i, e, vocab);
  }
  if (std::all_of(a.choices.begin(), a.choices.end(), [](const Choice& c) { return c.ended; })) a.ended = true;
  return out;
}

}  // namespace

Result<model::HParams> Inference::hparams(const std::string& digest, const std::string& path) {
  {
    std::lock_guard lock(hp_mu_);
    if (auto it = hp_.find(digest); it != hp_.end()) return it->second;
  }
  auto g = gguf::GgufFile::open(path);
  if (!g) return Error{g.message()};
  auto hp = model::read_hparams(g.value());
  if (!hp) return hp.error();
  std::lock_guard lock(hp_mu_);
  hp_[digest] = hp.value();
  return hp.value();
}

runner::RunnerOptions Inference::runner_options(const ModelOptions& o) const {
  runner::RunnerOptions ro;
  ro.n_ctx = o.num_ctx;
  ro.parallel = opt_.parallel;
  ro.threads = o.num_thread > 0 ? o.num_thread : opt_.threads;
  ro.kv = opt_.kv;
  ro.max_queue = opt_.max_queue;
  ro.turns = opt_.turns;
  return ro;
}

std::optional<Refusal> Inference::embed(const http::Request& req, const std::vector<EmbedInput>& inputs, bool truncate,
                                        EmbedResult& out, bool rank) {
  const auto start = Clock::now();
  auto body = request_body(req);
  if (!body) return Refusal{400, body.message()};
  Fields f{body.value(), "EmbedRequest", std::nullopt};
  std::string name;
  StoredModel m;
  if (auto r = find_model(store_, f, true, name, m)) {
    if (r->status == 404) r->message = "model \"" + name + "\" not found, try pulling it first";
    return r;
  }
  auto hp = hparams(m.digest, m.path);
  if (!hp) return Refusal{500, hp.message()};
  m.hp = hp.value();
  if (!rank && m.hp.pooling == model::Pooling::Rank) return Refusal{400, "\"" + name + "\" is a reranking model (pooling rank): it has no embeddings"};
  if (rank && m.hp.pooling != model::Pooling::Rank) return Refusal{400, "\"" + name + "\" is not a reranking model (its pooling is not rank)"};
  const model::Pooling pooling = rank ? model::Pooling::Rank
                                 : m.hp.pooling == model::Pooling::Cls || m.hp.pooling == model::Pooling::Last ? m.hp.pooling
                                                                                                               : model::Pooling::Mean;
  std::optional<runner::Nanos> keep_alive;
  if (auto r = keep_alive_field(f, keep_alive)) return r;
  ModelOptions options;
  if (auto r = model_options(f, m, opt_.default_num_ctx, options)) return r;
  if (f.bad) return f.bad;
  auto lease = cache_.acquire({m.digest, m.path, runner_options(options)}, m.full, keep_alive);
  if (!lease) return Refusal{lease.message().rfind("server busy", 0) == 0 ? 503 : 500, lease.message()};
  out.load_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  runner::Runner& runner = lease.value().runner();
  const model::Vocab& vocab = runner.model().vocab();
  std::vector<std::shared_ptr<runner::Sequence>> seqs;
  // A refusal after some inputs were submitted cancels them: nobody will read their vectors.
  auto refuse_all = [&](Refusal r) {
    for (auto& seq : seqs) seq->cancel();
    return std::optional<Refusal>(std::move(r));
  };
  std::vector<runner::SeqRequest> reqs;
  for (const EmbedInput& in : inputs) {
    auto ids = in.tokens ? Result<std::vector<TokenId>>(*in.tokens) : vocab.tokenize(in.text, true, true);
    if (!ids) return Refusal{400, ids.message()};
    for (TokenId t : ids.value())
      if (t < 0 || static_cast<size_t>(t) >= vocab.size())
        return Refusal{400, "token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(vocab.size())};
    if (ids.value().empty()) return Refusal{400, "an input has no tokens"};
    if (ids.value().size() > static_cast<size_t>(options.num_ctx)) {
      if (!truncate) return Refusal{400, "the input length exceeds the context length"};
      ids.value().resize(static_cast<size_t>(options.num_ctx));
    }
    runner::SeqRequest& r = reqs.emplace_back();
    r.prompt = std::move(ids.value());
    r.pooling = pooling;
  }
  // All at once: the runner batches them together from its first step.
  auto submitted = runner.submit_all(std::move(reqs));
  if (!submitted) return Refusal{submitted.message() == runner::kServerBusy ? 503 : 400, submitted.message()};
  seqs = std::move(submitted.value());
  // Each sequence ends with one Done (or Error) event; a stopping server cancels them.
  for (auto& seq : seqs) {
    runner::Event e;
    while (!seq->next(&e, std::chrono::milliseconds(100)))
      if (stopping_) return refuse_all({503, "the server is stopping"});
    if (e.kind == runner::Event::Kind::Error) return refuse_all({500, e.error});
    out.prompt_tokens += e.prompt_eval_count;
    out.vectors.push_back(std::move(e.embedding));
  }
  out.total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  return std::nullopt;
}

void Inference::run(Call& call, http::Response& res) {
  const runner::RunnerOptions ro = runner_options(call.options);
  std::unique_ptr<AnswerWriter> writer = call.writer ? call.writer(call.model_name, call.stream) : ollama_writer(call.model_name, call.chat, call.stream);
  if (call.empty && call.keep_alive && *call.keep_alive == runner::Nanos::zero()) {
    cache_.expire(call.model.digest);
    return answer(res, 200, writer->loaded("unload"));
  }
  auto lease = cache_.acquire({call.model.digest, call.model.path, ro}, call.model.full, call.keep_alive);
  if (!lease) return refuse(res, {lease.message().rfind("server busy", 0) == 0 ? 503 : 500, lease.message()});
  if (call.empty) return answer(res, 200, writer->loaded("load"));
  const model::Vocab& vocab = lease.value().runner().model().vocab();
  auto text = call.render(vocab);
  if (!text) return refuse(res, {400, text.message()});
  std::string prompt;
  for (TokenId t : call.context_ids) prompt += vocab.piece(t, false);
  // As llama.cpp's detokenizer: the space a SentencePiece tokenizer put before the first
  // word is not part of the text (tokenizing adds it back).
  if (!prompt.empty() && prompt.front() == ' ') prompt.erase(0, 1);
  prompt += text.value();
  auto ids = vocab.tokenize(prompt, true, true);
  if (!ids) return refuse(res, {400, ids.message()});
  if (ids.value().empty()) return refuse(res, {400, "the prompt has no tokens"});
  const auto& [open, close] = call.think_tags;
  const bool split_thinking = call.think.on && !open.empty() && !close.empty();
  // A template that opens the thinking section itself leaves the model inside it.
  const size_t end = text.value().find_last_not_of(" \t\r\n");
  const bool inside = split_thinking && end != std::string::npos && end + 1 >= open.size() &&
                      text.value().compare(end + 1 - open.size(), open.size(), open) == 0;
  // With a format, a thinking model reasons freely first and the document follows (Ollama
  // restarts the generation after the reasoning; one grammar does it here).
  if (call.grammar && split_thinking) call.grammar = call.grammar_with_room({open, close, inside});
  auto a = std::make_shared<Answer>();
  // Choices past the first draw from their own seeds: the given seed plus their index, or
  // fresh random ones.
  std::random_device entropy;
  for (int i = 0; i < call.choices; ++i) {
    model::GenerateOptions gen = call.options.gen;
    if (i > 0) gen.sampling.seed = gen.sampling.seed >= 0 ? gen.sampling.seed + i : static_cast<int64_t>(entropy() >> 1);
    auto seq = lease.value().runner().submit({ids.value(), gen, call.logprobs, call.grammar});
    if (!seq) return refuse(res, {seq.message() == runner::kServerBusy ? 503 : 400, seq.message()});  // ~Choice cancels the others
    Choice& c = a->choices.emplace_back();
    c.seq = seq.value();
    if (split_thinking) c.thinking.emplace(open, close, inside);
    if (!call.tool_names.empty()) c.tools.emplace(call.tool_tag, call.tool_names);
  }
  a->lease = std::move(lease.value());
  a->writer = std::move(writer);
  a->metrics = opt_.metrics;
  a->stream = call.stream;
  a->want_context = call.want_context;
  a->logprobs = call.logprobs >= 0;
  a->start = call.start;
  res.status = 200;
  res.set_chunked_content_provider(a->writer->content_type(call.stream),
                                   [a, this](http::Sink& sink) {
                                     const model::Vocab& v = a->lease.runner().model().vocab();
                                     while (!a->ended) {
                                       // Gone, or the server stopping: ~Answer cancels the sequence.
                                       if (!sink.is_writable() || stopping_) return false;
                                       const std::string line = next_bytes(*a, v);
                                       if (!line.empty() && !sink.write(line.data(), line.size())) return false;
                                     }
                                     sink.done();
                                     return true;
                                   });
}

std::optional<Refusal> Inference::vocab(const std::string& model_name, std::shared_ptr<const model::Vocab>& out) {
  if (model_name.empty()) return Refusal{400, "model is required"};
  const ModelName n = ModelName::parse(model_name);
  if (!n.valid()) return Refusal{400, "invalid model name"};
  auto m = store_.find(n);
  if (!m) return Refusal{404, "model '" + model_name + "' not found"};
  auto s = read_model(store_, model_name, m.value());
  if (!s) return Refusal{500, s.message()};
  {
    std::lock_guard lock(hp_mu_);
    if (auto it = vocabs_.find(s.value().digest); it != vocabs_.end()) {
      out = it->second;
      return std::nullopt;
    }
  }
  auto g = gguf::GgufFile::open(s.value().path);
  if (!g) return Refusal{500, g.message()};
  auto v = model::Vocab::from_gguf(g.value());
  if (!v) return Refusal{500, v.message()};
  out = std::make_shared<const model::Vocab>(std::move(v.value()));
  std::lock_guard lock(hp_mu_);
  vocabs_[s.value().digest] = out;
  return std::nullopt;
}

std::optional<Refusal> Inference::count_chat_tokens(const http::Request& req, int& count) {
  Call call;
  if (auto r = chat_call(req, call)) return r;
  count = 0;
  if (call.empty) return std::nullopt;
  std::shared_ptr<const model::Vocab> v;
  if (auto r = vocab(call.model_name, v)) return r;
  auto text = call.render(*v);
  if (!text) return Refusal{400, text.message()};
  auto ids = v->tokenize(text.value(), true, true);
  if (!ids) return Refusal{400, ids.message()};
  count = static_cast<int>(ids.value().size());
  return std::nullopt;
}

bool Inference::can_think(const std::string& model_name) const {
  const ModelName n = ModelName::parse(model_name);
  if (!n.valid()) return false;
  auto m = store_.find(n);
  if (!m) return false;
  auto t = parse_model_template(store_.layer_text(m.value(), "application/vnd.ollama.image.template"));
  return t.ok() && t.value().references("Think");
}

void Inference::generate(const http::Request& req, http::Response& res, const WriterFactory& writer, int choices) {
  Call call;
  call.writer = writer;
  call.choices = choices;
  auto body = request_body(req);
  if (!body) return refuse(res, {400, body.message()});
  Fields f{body.value(), "GenerateRequest", std::nullopt};
  if (auto r = find_model(store_, f, false, call.model_name, call.model)) return refuse(res, *r);
  auto hp = hparams(call.model.digest, call.model.path);
  if (!hp) return refuse(res, {500, hp.message()});
  call.model.hp = hp.value();
  if (embedding_only(hp.value())) return refuse(res, {400, "\"" + call.model_name + "\" does not support generate"});
  const std::string prompt = f.str("prompt"), suffix = f.str("suffix"), system = f.str("system"), tmpl_override = f.str("template");
  call.raw = f.flag("raw", false);
  const Value& context = f.get("context");
  const Value& images = f.get("images");
  if (f.bad) return refuse(res, *f.bad);
  if (call.raw && (!tmpl_override.empty() || !system.empty() || context.kind == Value::Kind::List))
    return refuse(res, {400, "raw mode does not support template, system, or context"});
  if (images.kind == Value::Kind::List && !images.list->empty())
    return refuse(res, {400, "\"" + call.model_name + "\" " + kNoVision});
  auto t = parse_model_template(tmpl_override.empty() ? call.model.template_text : tmpl_override);
  if (!t) return refuse(res, {tmpl_override.empty() ? 500 : 400, "template error: " + t.message()});
  if (auto r = common_fields(f, req.body, t.value(), opt_.default_num_ctx, call)) return refuse(res, *r);
  if (!suffix.empty() && !t.value().references("Suffix")) return refuse(res, {400, call.model.full + " does not support insert"});
  if (call.raw) call.think_tags = {};  // a raw prompt was not rendered with .Think: its output is not split
  call.empty = prompt.empty() && suffix.empty();
  if (!call.empty) {
    Result<std::string> rendered = prompt;
    if (!call.raw && !suffix.empty()) {
      rendered = t.value().execute(Value::of_map({{"Prompt", Value::str(prompt)}, {"Suffix", Value::str(suffix)}, {"Response", Value::str("")}}));
    } else if (!call.raw) {
      std::vector<ChatMessage> msgs;
      const std::string sys = system.empty() ? call.model.system : system;
      if (!sys.empty()) msgs.push_back({"system", sys, "", {}, ""});
      msgs.push_back({"user", prompt, "", {}, ""});
      rendered = render_chat(t.value(), msgs, {}, call.think);
    }
    if (!rendered) return refuse(res, {400, "template error: " + rendered.message()});
    call.render = [text = rendered.value()](const model::Vocab&) -> Result<std::string> { return text; };
    call.want_context = !call.raw;
    if (context.kind == Value::Kind::List) {
      std::vector<TokenId> ids;
      for (const Value& v : *context.list) {
        if (v.kind != Value::Kind::Int || v.i < 0 || v.i >= static_cast<int64_t>(call.model.hp.n_vocab))
          return refuse(res, {400, "context holds " + tmpl::format(v) + ", which is not a token id of this model"});
        ids.push_back(static_cast<TokenId>(v.i));
      }
      call.context_ids = std::move(ids);
    }
  }
  run(call, res);
}

std::optional<Refusal> Inference::chat_call(const http::Request& req, Call& call) {
  call.chat = true;
  auto body = request_body(req);
  if (!body) return Refusal{400, body.message()};
  Fields f{body.value(), "ChatRequest", std::nullopt};
  if (auto r = find_model(store_, f, true, call.model_name, call.model)) return *r;
  auto hp = hparams(call.model.digest, call.model.path);
  if (!hp) return Refusal{500, hp.message()};
  call.model.hp = hp.value();
  if (embedding_only(hp.value())) return Refusal{400, "\"" + call.model_name + "\" does not support chat"};
  auto t = parse_model_template(call.model.template_text);
  if (!t) return Refusal{500, "template error: " + t.message()};
  if (auto r = common_fields(f, req.body, t.value(), opt_.default_num_ctx, call)) return *r;
  auto msgs = parse_messages(f.get("messages"));
  if (!msgs) {
    if (msgs.message() == kNoVision) return Refusal{400, "\"" + call.model_name + "\" " + kNoVision};
    return Refusal{400, msgs.message()};
  }
  const Value& tools = f.get("tools");
  if (tools.kind == Value::Kind::List && tools.list->size() > kMaxTools)
    return Refusal{400, "too many tools: " + std::to_string(tools.list->size()) + " (limit " + std::to_string(kMaxTools) + ")"};
  if (tools.kind == Value::Kind::List && !tools.list->empty() && !t.value().references("Tools"))
    return Refusal{400, call.model.full + " does not support tools"};
  if (tools.kind == Value::Kind::List && !tools.list->empty()) {
    // A call forced by a grammar (OpenAI's tool_choice) is bare JSON.
    call.tool_tag = f.flag(kForcedToolsField, false) ? "{" : t.value().tool_call_tag();
    for (const Value& tool : *tools.list)
      if (const Value& n = tool.field("function").field("name"); n.kind == Value::Kind::String && !n.s.empty()) call.tool_names.push_back(n.s);
  }
  const bool truncate = f.flag("truncate", true);
  if (f.bad) return f.bad;
  call.empty = msgs.value().empty();
  if (!call.empty) {
    std::vector<ChatMessage> all;
    if (call.model.messages.kind == Value::Kind::List)
      for (const Value& mm : *call.model.messages.list) all.push_back({mm.field("role").s, mm.field("content").s, "", {}, ""});
    all.insert(all.end(), msgs.value().begin(), msgs.value().end());
    if (!call.model.system.empty() && (msgs.value().empty() || msgs.value().front().role != "system"))
      all.insert(all.begin(), ChatMessage{"system", call.model.system, "", {}, ""});
    const Value tool_list = tools.kind == Value::Kind::List ? tools : Value{};
    const int num_ctx = call.options.num_ctx;
    // History truncation (Ollama's chatPrompt): the first i for which the system messages
    // before it and every message from it render to at most num_ctx tokens; the last
    // message always stays. Dropping messages never adds tokens, so i is found by
    // bisection: O(log n) renderings instead of Ollama's n.
    call.render = [all, tool_list, truncate, num_ctx, think = call.think, t = t.value()](const model::Vocab& vocab) -> Result<std::string> {
      auto render_from = [&](size_t i) {
        std::vector<ChatMessage> part;
        for (size_t k = 0; k < i; ++k)
          if (all[k].role == "system") part.push_back(all[k]);
        part.insert(part.end(), all.begin() + static_cast<std::ptrdiff_t>(i), all.end());
        return render_chat(t, part, tool_list, think);
      };
      auto fits = [&](const std::string& text) {
        auto ids = vocab.tokenize(text, true, true);
        return ids && ids.value().size() <= static_cast<size_t>(num_ctx);
      };
      auto whole = render_from(0);
      if (!whole) return Error{"template error: " + whole.message()};
      if (!truncate || fits(whole.value())) return whole;
      size_t lo = 1, hi = all.size() - 1;  // the answer is in [lo, hi]; hi (the last message alone) always qualifies
      while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        auto r = render_from(mid);
        if (!r) return Error{"template error: " + r.message()};
        if (fits(r.value())) hi = mid;
        else lo = mid + 1;
      }
      auto r = render_from(lo);
      if (!r) return Error{"template error: " + r.message()};
      return r.value();
    };
  }
  return std::nullopt;
}

void Inference::chat(const http::Request& req, http::Response& res, const WriterFactory& writer, int choices) {
  Call call;
  call.writer = writer;
  call.choices = choices;
  if (auto r = chat_call(req, call)) return refuse(res, *r);
  run(call, res);
}

}  // namespace hearth::server
