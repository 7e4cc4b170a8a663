#include "server/answer.h"

#include <chrono>
#include <ctime>
#include <random>

#include "server/json_writer.h"

namespace hearth::server {

namespace chrono = std::chrono;

void Piece::append(Piece&& p) {
  content += p.content;
  thinking += p.thinking;
  for (ToolCall& c : p.calls) calls.push_back(std::move(c));
  for (TokenLogprobText& l : p.logprobs) logprobs.push_back(std::move(l));
}

std::string random_hex(size_t n) {
  static thread_local std::mt19937 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[rng() % 16];
  return s;
}

std::string utc_now() {
  const auto now = chrono::system_clock::now();
  const int64_t ns = chrono::duration_cast<chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (const int64_t frac = ns % 1000000000; frac) {
    char digits[16];
    std::snprintf(digits, sizeof digits, ".%09lld", static_cast<long long>(frac));
    std::string d = digits;
    while (d.back() == '0') d.pop_back();
    s += d;
  }
  return s + "Z";
}

namespace {

// Ollama's logprob objects: {"token","logprob","bytes",["top_logprobs"]}.
void logprobs_json(JsonWriter& w, const std::vector<TokenLogprobText>& lps) {
  auto one = [&](const std::string& token, double lp) {
    w.key("token").str(token).key("logprob").num(lp).key("bytes").begin_array();
    for (unsigned char c : token) w.num(int64_t{c});
    w.end_array();
  };
  w.key("logprobs").begin_array();
  for (const TokenLogprobText& lp : lps) {
    w.begin_object();
    one(lp.token, lp.logprob);
    if (!lp.top.empty()) {
      w.key("top_logprobs").begin_array();
      for (const auto& [t, v] : lp.top) {
        w.begin_object();
        one(t, v);
        w.end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
}

class OllamaWriter : public AnswerWriter {
 public:
  OllamaWriter(std::string model, bool chat, bool stream) : model_(std::move(model)), chat_(chat), stream_(stream) {}
  const char* content_type(bool stream) const override {
    return stream ? "application/x-ndjson" : "application/json; charset=utf-8";
  }
  std::string chunk(const Piece& p) override {
    if (p.empty()) return "";
    JsonWriter w;
    head(w);
    body(w, p);
    w.key("done").boolean(false);
    if (!p.logprobs.empty()) logprobs_json(w, p.logprobs);
    return w.end_object().text() + "\n";
  }
  std::string done(const Piece& total, const Summary& s) override {
    JsonWriter w;
    head(w);
    body(w, total);
    w.key("done").boolean(true).key("done_reason").str(s.done_reason);
    if (s.context) {
      w.key("context").begin_array();
      for (model::TokenId t : *s.context) w.num(int64_t{t});
      w.end_array();
    }
    // Zero metrics are omitted, as Go's omitempty does.
    for (auto [key, v] : {std::pair{"total_duration", s.total_ns}, std::pair{"load_duration", s.load_ns},
                          std::pair{"prompt_eval_count", int64_t{s.prompt_eval_count}}, std::pair{"prompt_eval_duration", s.prompt_ns},
                          std::pair{"eval_count", int64_t{s.eval_count}}, std::pair{"eval_duration", s.eval_ns}})
      if (v) w.key(key).num(v);
    if (!stream_ && !total.logprobs.empty()) logprobs_json(w, total.logprobs);
    return w.end_object().text() + (stream_ ? "\n" : "");
  }
  std::string error(const std::string& message) override {
    return JsonWriter().begin_object().key("error").str(message).end_object().text() + (stream_ ? "\n" : "");
  }
  std::string loaded(const std::string& done_reason) override {
    JsonWriter w;
    head(w);
    body(w, {});
    return w.key("done").boolean(true).key("done_reason").str(done_reason).end_object().text();
  }

 private:
  void head(JsonWriter& w) const { w.begin_object().key("model").str(model_).key("created_at").str(utc_now()); }
  // Chat's message (thinking and tool_calls only when there are some), or generate's
  // response and thinking.
  void body(JsonWriter& w, const Piece& p) const {
    if (!chat_) {
      w.key("response").str(p.content);
      if (!p.thinking.empty()) w.key("thinking").str(p.thinking);
      return;
    }
    w.key("message").begin_object().key("role").str("assistant").key("content").str(p.content);
    if (!p.thinking.empty()) w.key("thinking").str(p.thinking);
    if (!p.calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const ToolCall& c : p.calls) {
        w.begin_object().key("id").str(c.id).key("function").begin_object();
        w.key("index").num(int64_t{c.index}).key("name").str(c.name).key("arguments").raw(c.arguments);
        w.end_object().end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  std::string model_;
  bool chat_, stream_;
};

}  // namespace

std::unique_ptr<AnswerWriter> ollama_writer(std::string model, bool chat, bool stream) {
  return std::make_unique<OllamaWriter>(std::move(model), chat, stream);
}

}  // namespace hearth::server
