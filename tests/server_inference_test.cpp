// /api/generate, /api/chat and /api/ps over real HTTP on loopback: the text a greedy
// request streams equals the engine's generate() on the rendered prompt, alone or with
// seven other clients at once; load, unload, keep-alive; a client that disconnects
// mid-stream frees its slot; every error path with Ollama's status and message.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "model/generate.h"
#include "server/gotemplate.h"
#include "server_fixture.h"

namespace hearth::server {
namespace {

using tmpl::Value;

const auto kStories = [] { return test::testdata_dir() / "models/stories260K.gguf"; };

class Serving : public Server {
 public:
  Serving() {  // defaults a derived fixture may change in its SetUp
    options_.inference.parallel = 4;
    options_.inference.threads = 2;
  }

 protected:
  void SetUp() override {
    Server::SetUp();
    Store store(dir_.path());
    add_model(store, "stories", kStories());
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }
  static std::vector<Value> lines(const std::string& body) {
    std::vector<Value> out;
    size_t start = 0;
    for (size_t nl; (nl = body.find('\n', start)) != std::string::npos; start = nl + 1) {
      auto v = tmpl::from_json(body.substr(start, nl - start));
      EXPECT_TRUE(v.ok()) << body.substr(start, nl - start);
      if (v) out.push_back(v.value());
    }
    EXPECT_EQ(start, body.size()) << "the stream ends with a newline";
    return out;
  }
};

// The engine alone on a prompt: greedy, n tokens, what `hearth run FILE` prints.
std::string engine_text(const std::string& prompt, int n) {
  auto m = model::Model::load(kStories().string());
  EXPECT_TRUE(m.ok());
  model::Context ctx(*m.value(), 512, 1);
  model::GenerateOptions o;
  o.sampling.temperature = 0;
  o.sampling.repeat_penalty = 1.0f;
  o.num_predict = n;
  auto r = model::generate(ctx, m.value()->vocab().tokenize(prompt, true, true).value(), o);
  EXPECT_TRUE(r.ok());
  return r.value().text;
}

const char* kGreedy = R"("options":{"temperature":0,"num_predict":30})";

TEST_F(Serving, GenerateStreamsWhatTheEngineGenerates) {
  const std::string want = engine_text("Once upon a time", 30);
  auto r = post("/api/generate", R"({"model":"stories","prompt":"Once upon a time",)" + std::string(kGreedy) + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  const std::vector<Value> chunks = lines(r->body);
  ASSERT_GE(chunks.size(), 2u);
  std::string text;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].field("model").s, "stories");
    EXPECT_FALSE(chunks[i].field("done").b);
    EXPECT_EQ(chunks[i].field("created_at").s.back(), 'Z');
    text += chunks[i].field("response").s;
  }
  EXPECT_EQ(text, want);
  const Value& last = chunks.back();
  EXPECT_TRUE(last.field("done").b);
  EXPECT_EQ(last.field("done_reason").s, "length");
  EXPECT_EQ(last.field("response").s, "");
  EXPECT_EQ(last.field("eval_count").i, 30);
  EXPECT_GT(last.field("prompt_eval_count").i, 0);
  for (const char* k : {"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"})
    EXPECT_GT(last.field(k).i, 0) << k;
  ASSERT_EQ(last.field("context").kind, Value::Kind::List);
  // Not streamed: one object with the whole text; the context round-trips.
  auto one = post("/api/generate", R"({"model":"stories","prompt":"Once upon a time","stream":false,)" + std::string(kGreedy) + "}");
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200);
  auto v = tmpl::from_json(one->body);
  ASSERT_TRUE(v.ok()) << one->body;
  EXPECT_EQ(v.value().field("response").s, want);
  EXPECT_TRUE(v.value().field("done").b);
  const std::string context = tmpl::to_json(v.value().field("context"));
  auto next = post("/api/generate", R"({"model":"stories","prompt":" Then","stream":false,"context":)" + context + "," + kGreedy + "}");
  ASSERT_TRUE(next);
  ASSERT_EQ(next->status, 200) << next->body;
  EXPECT_EQ(tmpl::from_json(next->body).value().field("response").s, engine_text("Once upon a time" + want + " Then", 30));
}

TEST_F(Serving, ChatRendersTheTemplateAndStopsAtStopStrings) {
  auto r = post("/api/chat", R"({"model":"stories","stream":false,"messages":[{"role":"user","content":"Once upon a time"}],)"
                             R"("options":{"temperature":0,"num_predict":30,"stop":[" named"]}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = tmpl::from_json(r->body).value();
  const std::string full = engine_text("Once upon a time", 30);
  const std::string want = full.substr(0, full.find(" named"));
  ASSERT_NE(full.find(" named"), std::string::npos);
  EXPECT_EQ(v.field("message").field("role").s, "assistant");
  EXPECT_EQ(v.field("message").field("content").s, want);
  EXPECT_EQ(v.field("done_reason").s, "stop");
  EXPECT_EQ(v.field("context").kind, Value::Kind::Nil);
}

TEST_F(Serving, EightClientsAtOnceEachGetTheirOwnText) {
  const char* prompts[] = {"Once upon a time", "The little dog", "Lily wanted to", "One day", "Tim and Sam went",
                           "She said", "The sun was hot", "Mom gave Ben"};
  std::string got[8];
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(60);
      auto r = c.Post("/api/generate", R"({"model":"stories","stream":false,"prompt":")" + std::string(prompts[i]) + "\"," + kGreedy + "}",
                      "application/json");
      if (r && r->status == 200) got[i] = tmpl::from_json(r->body).value().field("response").s;
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got[i], engine_text(prompts[i], 30)) << prompts[i];
}

TEST_F(Serving, LoadUnloadPsAndKeepAlive) {
  auto load = post("/api/generate", R"({"model":"stories"})");
  ASSERT_TRUE(load);
  ASSERT_EQ(load->status, 200) << load->body;
  EXPECT_EQ(tmpl::from_json(load->body).value().field("done_reason").s, "load");
  auto ps = client_->Get("/api/ps");
  ASSERT_TRUE(ps);
  auto models = tmpl::from_json(ps->body).value().field("models");
  ASSERT_EQ(models.list->size(), 1u);
  const Value& m = (*models.list)[0];
  EXPECT_EQ(m.field("name").s, "stories:latest");
  EXPECT_EQ(m.field("size_vram").i, 0);
  EXPECT_EQ(m.field("context_length").i, 2048);  // 4096 capped at the model's trained context
  EXPECT_EQ(m.field("details").field("family").s, "llama");
  EXPECT_GT(m.field("size").i, 0);
  auto unload = post("/api/chat", R"({"model":"stories","messages":[],"keep_alive":0})");
  ASSERT_TRUE(unload);
  EXPECT_EQ(tmpl::from_json(unload->body).value().field("done_reason").s, "unload");
  EXPECT_EQ(client_->Get("/api/ps")->body, "{\"models\":[]}");
  // A short keep-alive expires by itself.
  auto brief = post("/api/generate", R"({"model":"stories","prompt":"Once","keep_alive":"300ms","options":{"num_predict":2}})");
  ASSERT_TRUE(brief);
  ASSERT_EQ(brief->status, 200);
  EXPECT_NE(client_->Get("/api/ps")->body, "{\"models\":[]}");
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  EXPECT_EQ(client_->Get("/api/ps")->body, "{\"models\":[]}");
}

TEST_F(Serving, AClientThatGoesAwayFreesItsSlot) {
  for (int round = 0; round < 6; ++round) {  // more than the 4 slots
    httplib::Client c("127.0.0.1", port_);
    int chunks = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/generate";
    req.body = R"({"model":"stories","prompt":"Once upon a time","options":{"num_predict":-1,"stop":["\u0001"]}})";
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };
    auto r = c.send(req);
    EXPECT_FALSE(r);  // we cancelled it
  }
  auto after = post("/api/generate", R"({"model":"stories","prompt":"Once upon a time","stream":false,)" + std::string(kGreedy) + "}");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(tmpl::from_json(after->body).value().field("response").s, engine_text("Once upon a time", 30));
}

// A chat longer than num_ctx keeps the system message and the newest messages that fit,
// as Ollama's chatPrompt does (found here by bisection).
TEST_F(Serving, ChatHistoryIsTruncatedToTheContext) {
  Store store(dir_.path());
  auto tmpl_blob = store.write_blob_bytes("{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}");
  ASSERT_TRUE(tmpl_blob.ok());
  auto m = store.find(ModelName::parse("stories"));
  ASSERT_TRUE(m.ok());
  std::string raw = m.value().raw;
  raw = raw.substr(0, raw.rfind("]}")) + ",{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"" +
        tmpl_blob.value() + "\",\"size\":58}]}\n";
  ASSERT_TRUE(store.write_manifest(ModelName::parse("talk"), raw).ok());
  std::vector<std::pair<std::string, std::string>> msgs = {{"system", "You tell short stories."}};
  for (int i = 0; i < 30; ++i) msgs.push_back({i % 2 ? "assistant" : "user", "Turn " + std::to_string(i) + " of the little dog story"});
  std::string body = R"({"model":"talk","stream":false,"options":{"num_ctx":64,"num_predict":1,"temperature":0},"messages":[)";
  for (size_t i = 0; i < msgs.size(); ++i)
    body += (i ? "," : "") + std::string("{\"role\":\"") + msgs[i].first + "\",\"content\":\"" + msgs[i].second + "\"}";
  auto r = post("/api/chat", body + "]}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  // The expected prompt: the system message, then the newest messages whose rendering fits.
  auto model = model::Model::load(kStories().string());
  ASSERT_TRUE(model.ok());
  auto count = [&](size_t from) {
    std::string text = "system: You tell short stories.\n";
    for (size_t k = from; k < msgs.size(); ++k) text += msgs[k].first + ": " + msgs[k].second + "\n";
    return model.value()->vocab().tokenize(text, true, true).value().size();
  };
  size_t from = 1;
  while (count(from) > 64) ++from;
  EXPECT_GT(from, 10u);  // most of the history had to go
  EXPECT_EQ(tmpl::from_json(r->body).value().field("prompt_eval_count").i, static_cast<int64_t>(count(from)));
}

// Greedy text through the server (raw prompts, an F32 KV cache as the reference used)
// equals llama.cpp's reference continuations (../shared/reference/generate).
class F32Cache : public Serving {
 protected:
  void SetUp() override {
    options_.inference.kv = model::KvType::F32;
    Serving::SetUp();
    Store store(dir_.path());
    add_model(store, "tiny", test::testdata_dir() / "models/TinyStories-656K.f16.gguf");
  }
};

TEST_F(F32Cache, GreedyTextEqualsLlamaCppReference) {
  int checked = 0;
  for (const auto& [model, file] : {std::pair{"stories", "stories260K"}, std::pair{"tiny", "TinyStories-656K.f16"}}) {
    for (const char* g : {"g1", "g2", "g3"}) {
      const auto ref = tmpl::from_json(test::read_text(test::reference_dir() / "generate" / (std::string(file) + "." + g + ".json")));
      ASSERT_TRUE(ref.ok());
      const Value& r = ref.value();
      const std::string body = R"({"model":")" + std::string(model) + R"(","raw":true,"stream":false,"prompt":)" +
                               tmpl::json_quote(r.field("prompt").s) +
                               R"(,"options":{"temperature":0,"num_predict":100,"num_ctx":256}})";
      auto resp = post("/api/generate", body);
      ASSERT_TRUE(resp);
      ASSERT_EQ(resp->status, 200) << resp->body;
      const Value v = tmpl::from_json(resp->body).value();
      EXPECT_EQ(v.field("response").s, r.field("generated_text").s) << file << " " << g;
      EXPECT_EQ(v.field("done_reason").s, r.field("stop_reason").s == "eog" ? "stop" : "length") << file << " " << g;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
}

class OneSlotNoQueue : public Serving {
 protected:
  void SetUp() override {
    options_.inference.parallel = 1;
    options_.inference.max_queue = 1;
    Serving::SetUp();
  }
};

// One request running, one waiting: the next is refused with Ollama's 503.
TEST_F(OneSlotNoQueue, AFullQueueIs503) {
  std::atomic<bool> started{false}, release{false};
  std::thread running([&] {
    httplib::Client c("127.0.0.1", port_);
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/generate";
    req.body = R"({"model":"stories","prompt":"Once","options":{"num_predict":-1,"stop":["\u0001"]}})";
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      started = true;
      return !release.load();
    };
    (void)c.send(req);
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::string queued_body;
  std::thread queued([&] {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60);
    auto r = c.Post("/api/generate", R"({"model":"stories","prompt":"Once","stream":false,"options":{"num_predict":4}})", "application/json");
    if (r) queued_body = r->body;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // the second one is waiting by now
  auto refused = post("/api/generate", R"({"model":"stories","prompt":"Once","stream":false})");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->body, R"({"error":"server busy, please try again.  maximum pending requests exceeded"})");
  release = true;
  running.join();
  queued.join();
  EXPECT_EQ(tmpl::from_json(queued_body).value().field("eval_count").i, 4) << queued_body;
}

// Stopping the server ends the streams in flight: it does not wait for an endless generation.
TEST_F(Serving, StoppingTheServerEndsStreamsInFlight) {
  std::atomic<int> chunks{0};
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port_);
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/generate";
    // A hundred million tokens: hours, were the stream left to finish.
    req.body = R"({"model":"stories","prompt":"Once","options":{"num_predict":100000000,"stop":["\u0001"]}})";
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      ++chunks;
      return true;
    };
    (void)c.send(req);
  });
  while (chunks < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto t0 = std::chrono::steady_clock::now();
  srv_->stop();
  thread_.join();  // run() returned
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  client.join();
  thread_ = std::thread([] {});  // TearDown stops and joins again
}

// Deleting a loaded model: later requests name it as missing; the server keeps answering.
TEST_F(Serving, AModelDeletedWhileLoaded) {
  auto load = post("/api/generate", R"({"model":"stories"})");
  ASSERT_TRUE(load && load->status == 200);
  auto del = client_->Delete("/api/delete", R"({"model":"stories"})", "application/json");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  auto gone = post("/api/generate", R"({"model":"stories","prompt":"Once"})");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(gone->body, R"({"error":"model 'stories' not found"})");
  Store store(dir_.path());
  add_model(store, "again", kStories());
  auto r = post("/api/generate", R"({"model":"again","prompt":"Once upon a time","stream":false,)" + std::string(kGreedy) + "}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(tmpl::from_json(r->body).value().field("response").s, engine_text("Once upon a time", 30));
}

// Extreme and negative option values are clamped or mean what Ollama says; never a crash.
TEST_F(Serving, ExtremeOptionValues) {
  for (const char* options : {R"({"num_ctx":-5,"num_predict":3})", R"({"num_ctx":1,"num_predict":3})",
                              R"({"num_predict":-2,"num_ctx":16,"stop":["\u0001"]})", R"({"top_k":-1,"top_p":5,"min_p":-1,"num_predict":3})",
                              R"({"temperature":-3,"repeat_last_n":-1,"repeat_penalty":0,"num_predict":3})",
                              R"({"num_thread":-4,"num_batch":0,"num_keep":-7,"seed":-99,"num_predict":3})",
                              R"({"num_keep":100000,"num_ctx":16,"num_predict":40})"}) {
    auto r = post("/api/generate", R"({"model":"stories","prompt":"Once upon a time there was a little girl","stream":false,"options":)" +
                                       std::string(options) + "}");
    ASSERT_TRUE(r) << options;
    EXPECT_EQ(r->status, 200) << options << " -> " << r->body;
  }
  EXPECT_EQ(client_->Get("/")->status, 200);
}

TEST_F(Serving, ErrorsAsOllamaAnswersThem) {
  struct Case {
    std::string path, body;
    int status;
    std::string error;
  };
  std::vector<Case> cases = {
      {"/api/generate", "", 400, "missing request body"},
      {"/api/generate", "{\"model\":", 400, "invalid JSON"},
      {"/api/generate", R"({"prompt":"x"})", 404, "model '' not found"},
      {"/api/chat", R"({"messages":[]})", 400, "model is required"},
      {"/api/generate", R"({"model":"nosuch","prompt":"x"})", 404, "model 'nosuch' not found"},
      {"/api/chat", R"({"model":"nosuch","messages":[]})", 404, "model 'nosuch' not found"},
      {"/api/generate", R"({"model":"bad name!","prompt":"x"})", 400, "invalid model name"},
      {"/api/generate", R"({"model":"stories","prompt":5})", 400,
       "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"},
      {"/api/generate", R"({"model":"stories","prompt":"x","raw":true,"system":"s"})", 400,
       "raw mode does not support template, system, or context"},
      {"/api/generate", R"({"model":"stories","prompt":"x","logprobs":true,"top_logprobs":21})", 400,
       "top_logprobs must be between 0 and 20"},
      {"/api/generate", R"({"model":"stories","prompt":"x","options":{"stop":"\n"}})", 400, "option \"stop\" must be of type array"},
      {"/api/generate", R"({"model":"stories","prompt":"x","options":{"num_ctx":"4096"}})", 400,
       "option \"num_ctx\" must be of type int"},
      {"/api/generate", R"({"model":"stories","prompt":"x","keep_alive":"-1"})", 400, "time: missing unit in duration \"-1\""},
      {"/api/generate", R"({"model":"stories","prompt":"x","think":true})", 400, "\"stories\" does not support thinking"},
      {"/api/generate", R"({"model":"stories","prompt":"x","think":"extreme"})", 400, "invalid think value: \"extreme\""},
      {"/api/generate", R"({"model":"stories","prompt":"x","suffix":"y"})", 400,
       "registry.ollama.ai/library/stories:latest does not support insert"},
      {"/api/chat", R"({"model":"stories","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", 400,
       "registry.ollama.ai/library/stories:latest does not support tools"},
      {"/api/generate", R"({"model":"stories","prompt":"x","images":["aGk="]})", 400, "\"stories\" does not support images"},
      {"/api/generate", R"({"model":"stories","prompt":"x","format":"yaml"})", 400,
       "invalid format: \"yaml\"; expected \"json\" or a valid JSON Schema object"},
      {"/api/generate", R"({"model":"stories","prompt":"x","format":7})", 400, "invalid format: 7;"},
      {"/api/chat", R"({"model":"stories","messages":[{"role":"user","content":"x"}],"format":{"type":"string","format":"ipv4"}})", 400,
       "invalid format: format \"ipv4\" at the schema's root is not supported"},
      {"/api/generate", R"({"model":"stories","prompt":"x","format":{"properties":{"a":{"$ref":"#/nope"}}}})", 400,
       "invalid format: \"$ref\": \"#/nope\" points at nothing (at /properties/a)"},
      {"/api/generate", R"({"model":"stories","prompt":"x","context":[1,99999]})", 400, "context holds 99999"},
      {"/api/generate", R"({"model":"stories","prompt":"x","template":"{{ .Prompt "})", 400, "template error: template: :1: unclosed action"},
      {"/api/generate", R"({"model":"stories","prompt":"one two three four five six seven eight nine ten","options":{"num_ctx":8},"shift":false})", 400,
       "the prompt has"},
      {"/api/chat", R"({"model":"stories","messages":{"role":"user"}})", 400, "json: cannot unmarshal object"},
  };
  // The count and depth limits (README's limits table).
  std::string messages, tools, deep;
  for (int i = 0; i < 10001; ++i) messages += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
  for (int i = 0; i < 1001; ++i) tools += std::string(i ? "," : "") + R"({"type":"function"})";
  deep = std::string(1100, '[') + std::string(1100, ']');  // well-formed, only too deep
  cases.push_back({"/api/chat", R"({"model":"stories","messages":[)" + messages + "]}", 400, "too many messages: 10001 (limit 10000)"});
  cases.push_back({"/api/chat", R"({"model":"stories","messages":[],"tools":[)" + tools + "]}", 400, "too many tools: 1001 (limit 1000)"});
  cases.push_back({"/api/chat", R"({"model":"stories","options":)" + deep + "}", 400, "invalid JSON: The JSON document was too deep"});
  for (const Case& c : cases) {
    auto r = post(c.path, c.body);
    ASSERT_TRUE(r) << c.body;
    EXPECT_EQ(r->status, c.status) << c.body << " -> " << r->body;
    auto e = tmpl::from_json(r->body);
    ASSERT_TRUE(e.ok()) << r->body;
    EXPECT_EQ(e.value().field("error").s.rfind(c.error, 0), 0u) << c.body << " -> " << r->body;
  }
  // Unknown options are ignored, huge ones are capped: still an answer.
  auto r = post("/api/generate", R"({"model":"stories","prompt":"x","stream":false,"options":{"warmth":3,"num_ctx":100000000,"num_predict":3}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace hearth::server

namespace hearth::server {
namespace {

// OpenAI's server-sent events on the wire: every event is `data: <one JSON object>` and a
// blank line, the last one `data: [DONE]`; a client that leaves mid-stream frees its slot.
TEST_F(Serving, OpenAIStreamFramingAndDisconnect) {
  auto r = post("/v1/chat/completions", R"({"model":"stories","messages":[{"role":"user","content":"Once upon a time"}],)"
                                        R"("stream":true,"max_tokens":5,"temperature":0,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  const std::string& body = r->body;
  std::vector<std::string> events;
  size_t at = 0;
  for (size_t end; (end = body.find("\n\n", at)) != std::string::npos; at = end + 2) events.push_back(body.substr(at, end - at));
  EXPECT_EQ(at, body.size()) << "every event ends with a blank line";
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "data: [DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].rfind("data: ", 0), 0u) << events[i];
    ASSERT_EQ(events[i].find('\n'), std::string::npos) << events[i];
    auto v = tmpl::from_json(events[i].substr(6));
    ASSERT_TRUE(v.ok()) << events[i];
    EXPECT_EQ(v.value().field("object").s, "chat.completion.chunk");
    const Value& choices = v.value().field("choices");
    if (choices.list->empty()) {  // the usage chunk, last before [DONE]
      EXPECT_EQ(i + 2, events.size());
      EXPECT_EQ(v.value().field("usage").field("completion_tokens").i, 5);
      continue;
    }
    text += choices.list->at(0).field("delta").field("content").s;
  }
  auto native = post("/api/chat", R"({"model":"stories","messages":[{"role":"user","content":"Once upon a time"}],"stream":false,)"
                                  R"("options":{"temperature":0,"num_predict":5}})");
  ASSERT_TRUE(native);
  EXPECT_EQ(text, tmpl::from_json(native->body).value().field("message").field("content").s);
  // Clients that leave after two events: their sequences end and the slots are free again.
  for (int round = 0; round < 6; ++round) {
    httplib::Client c("127.0.0.1", port_);
    int chunks = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = R"({"model":"stories","messages":[{"role":"user","content":"x"}],"stream":true,"stop":["\u0001"],"max_tokens":100000})";
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
    EXPECT_FALSE(c.send(req));
  }
  auto again = post("/v1/chat/completions", R"({"model":"stories","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":5,"temperature":0})");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(tmpl::from_json(again->body).value().field("choices").list->at(0).field("message").field("content").s, text);
}

}  // namespace
}  // namespace hearth::server

namespace hearth::server {
namespace {

// Tokenize and detokenize with the model's own tokenizer: the ids are those the prompt of
// a generation starts with, they turn back into the text, and bad ids are named.
TEST_F(Serving, TokenizeAndDetokenize) {
  auto t = post("/api/tokenize", R"({"model":"stories","content":"Once upon a time","add_special":true})");
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body;
  const auto tokens = *tmpl::from_json(t->body).value().field("tokens").list;
  ASSERT_GE(tokens.size(), 3u);
  auto g = post("/api/generate", R"({"model":"stories","prompt":"Once upon a time","stream":false,"options":{"num_predict":1}})");
  ASSERT_TRUE(g);
  const auto context = *tmpl::from_json(g->body).value().field("context").list;
  ASSERT_GT(context.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i].i, context[i].i) << i;
  std::string ids;
  for (size_t i = 1; i < tokens.size(); ++i) ids += (i > 1 ? "," : "") + std::to_string(tokens[i].i);  // without BOS
  auto d = post("/api/detokenize", R"({"model":"stories","tokens":[)" + ids + "]}");
  ASSERT_TRUE(d);
  EXPECT_EQ(tmpl::from_json(d->body).value().field("content").s, "Once upon a time");
  auto p = post("/api/tokenize", R"({"model":"stories","content":"Once","with_pieces":true})");
  ASSERT_TRUE(p);
  EXPECT_EQ(tmpl::from_json(p->body).value().field("tokens").list->at(0).field("piece").s, " Once");
  const std::vector<std::tuple<std::string, std::string, int, std::string>> bad = {
      {"/api/tokenize", R"({"model":"nosuch","content":"x"})", 404, "model 'nosuch' not found"},
      {"/api/tokenize", R"({"model":"stories"})", 400, "content must be a string"},
      {"/api/tokenize", R"({"content":"x"})", 400, "model is required"},
      {"/api/detokenize", R"({"model":"stories","tokens":[1,512]})", 400, "tokens[1] is not a token id of this model (0 to 511)"},
      {"/api/detokenize", R"({"model":"stories","tokens":"1"})", 400, "tokens must be an array of token ids"},
      {"/api/tokenize", "[1]", 400, "the request body must be a JSON object"},
  };
  for (const auto& [path, body, status, message] : bad) {
    auto r = post(path, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << body;
    EXPECT_EQ(tmpl::from_json(r->body).value().field("error").s, message) << body;
  }
}

}  // namespace
}  // namespace hearth::server

namespace hearth::server {
namespace {

// OpenAI's logit_bias (an Ollama option "logit_bias" underneath): +100 all but forces a
// token, -100 bans the one greedy decoding would pick; bad keys and values are 400s.
TEST_F(Serving, LogitBiasForcesAndBansTokens) {
  auto m = model::Model::load(kStories().string());
  ASSERT_TRUE(m.ok());
  const model::Vocab& vocab = m.value()->vocab();
  const auto ids = vocab.tokenize(" the", false, false).value();
  ASSERT_FALSE(ids.empty());
  const std::string cat = std::to_string(ids.back());
  const std::string piece = vocab.piece(ids.back(), false);
  auto forced = post("/v1/completions", R"({"model":"stories","prompt":"Once upon a time","max_tokens":4,"temperature":0,"logit_bias":{")" +
                                            cat + R"(":100}})");
  ASSERT_TRUE(forced);
  ASSERT_EQ(forced->status, 200) << forced->body;
  EXPECT_EQ((*tmpl::from_json(forced->body).value().field("choices").list)[0].field("text").s, piece + piece + piece + piece);
  // Banning greedy's first choice changes the first token (its id: the context's last).
  const std::string one = R"({"model":"stories","prompt":"Once upon a time","stream":false,"options":{"temperature":0,"num_predict":1)";
  auto plain = post("/api/generate", one + "}}");
  ASSERT_TRUE(plain);
  auto pv = tmpl::from_json(plain->body);
  ASSERT_TRUE(pv.ok()) << plain->body;
  ASSERT_EQ(pv.value().field("context").kind, tmpl::Value::Kind::List) << plain->body;
  const auto& context = *pv.value().field("context").list;
  ASSERT_FALSE(context.empty());
  auto banned = post("/api/generate", one + R"(,"logit_bias":{")" + std::to_string(context.back().i) + R"(":-100}}})");
  ASSERT_TRUE(banned);
  ASSERT_EQ(banned->status, 200) << banned->body;
  EXPECT_NE(tmpl::from_json(banned->body).value().field("response").s, pv.value().field("response").s);
  for (const char* bad : {R"({"abc":1})", R"({"5":101})", R"({"5":"x"})"}) {
    auto r = post("/v1/chat/completions", R"({"model":"stories","messages":[{"role":"user","content":"x"}],"logit_bias":)" + std::string(bad) + "}");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
    EXPECT_NE(r->body.find("logit_bias"), std::string::npos) << r->body;
  }
}

}  // namespace
}  // namespace hearth::server
