// The wire formats of the answer writers, on hand-made pieces: Anthropic's event sequence
// with thinking, text and tool_use blocks; OpenAI's chunks with reasoning, content and
// tool-call deltas; the Responses API's typed events; the whole objects of each.
#include <gtest/gtest.h>

#include "server/anthropic.h"
#include "server/gotemplate.h"
#include "server/openai.h"
#include "server/responses.h"

namespace hearth::server {
namespace {

using tmpl::Value;

// Server-sent events as (event name, parsed data).
std::vector<std::pair<std::string, Value>> events(const std::string& bytes) {
  std::vector<std::pair<std::string, Value>> out;
  size_t at = 0;
  for (size_t end; (end = bytes.find("\n\n", at)) != std::string::npos; at = end + 2) {
    std::string block = bytes.substr(at, end - at), name;
    if (block.rfind("event: ", 0) == 0) {
      const size_t nl = block.find('\n');
      name = block.substr(7, nl - 7);
      block = block.substr(nl + 1);
    }
    EXPECT_EQ(block.rfind("data: ", 0), 0u) << block;
    if (block == "data: [DONE]") {
      out.emplace_back("[DONE]", Value{});
      continue;
    }
    auto v = tmpl::from_json(block.substr(6));
    EXPECT_TRUE(v.ok()) << block;
    out.emplace_back(name, v.ok() ? v.value() : Value{});
  }
  EXPECT_EQ(at, bytes.size()) << "events end with a blank line";
  return out;
}

Piece piece(std::string content, std::string thinking = "", std::vector<ToolCall> calls = {}) {
  Piece p;
  p.content = std::move(content);
  p.thinking = std::move(thinking);
  p.calls = std::move(calls);
  return p;
}

TEST(AnthropicWriter, EventSequenceWithThinkingTextAndToolUse) {
  auto w = anthropic_writer("m", true);
  std::string bytes = w->chunk(piece("", "Hmm."));  // one call per statement: the order matters
  bytes += w->chunk(piece("", " Yes."));
  bytes += w->chunk(piece("Call it."));
  bytes += w->chunk(piece("", "", {{0, "call_abcdefgh", "get_weather", R"({"city":"Oslo"})"}}));
  Summary s;
  s.done_reason = "stop";
  s.prompt_tokens = 7;
  s.eval_count = 9;
  bytes += w->done({}, s);
  const auto ev = events(bytes);
  std::vector<std::string> names;
  for (const auto& [n, v] : ev) {
    names.push_back(n);
    EXPECT_EQ(v.field("type").s, n);  // data.type repeats the event name
  }
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta", "content_block_delta",
                                             "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
                                             "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
                                             "message_stop"}));
  EXPECT_EQ(ev[1].second.field("content_block").field("type").s, "thinking");
  EXPECT_EQ(ev[2].second.field("delta").field("type").s, "thinking_delta");
  EXPECT_EQ(ev[3].second.field("delta").field("thinking").s, " Yes.");
  EXPECT_EQ(ev[5].second.field("index").i, 1);
  EXPECT_EQ(ev[6].second.field("delta").field("text").s, "Call it.");
  EXPECT_EQ(ev[8].second.field("index").i, 2);
  EXPECT_EQ(ev[8].second.field("content_block").field("type").s, "tool_use");
  EXPECT_EQ(ev[8].second.field("content_block").field("name").s, "get_weather");
  EXPECT_EQ(ev[9].second.field("delta").field("type").s, "input_json_delta");
  EXPECT_EQ(ev[9].second.field("delta").field("partial_json").s, R"({"city":"Oslo"})");
  EXPECT_EQ(ev[11].second.field("delta").field("stop_reason").s, "tool_use");
  EXPECT_EQ(ev[11].second.field("usage").field("output_tokens").i, 9);
}

TEST(AnthropicWriter, WholeMessage) {
  auto w = anthropic_writer("m", false);
  Summary s;
  s.done_reason = "length";
  s.prompt_tokens = 3;
  s.eval_count = 4;
  auto v = tmpl::from_json(w->done(piece("Hi", "think", {{0, "call_x", "f", R"({"a":1})"}}), s));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value().field("type").s, "message");
  EXPECT_EQ(v.value().field("id").s.rfind("msg_", 0), 0u);
  const auto& content = *v.value().field("content").list;
  ASSERT_EQ(content.size(), 3u);
  EXPECT_EQ(content[0].field("type").s, "thinking");
  EXPECT_EQ(content[1].field("text").s, "Hi");
  EXPECT_EQ(content[2].field("input").field("a").i, 1);
  EXPECT_EQ(v.value().field("stop_reason").s, "max_tokens");
  EXPECT_EQ(v.value().field("usage").field("input_tokens").i, 3);
  auto e = tmpl::from_json(anthropic_error(404, "model 'x' not found"));
  EXPECT_EQ(e.value().field("type").s, "error");
  EXPECT_EQ(e.value().field("error").field("type").s, "not_found_error");
}

TEST(OpenAIChatWriter, ChunksSplitReasoningAndCarryToolCallDeltas) {
  auto w = openai_chat_writer("m", true, true);
  std::string bytes = w->chunk(piece("Hello", "why"));
  bytes += w->chunk(piece("", "", {{0, "call_abcdefgh", "f", R"({"a":"b"})"}}));
  Summary s;
  s.done_reason = "stop";
  s.prompt_tokens = 2;
  s.eval_count = 5;
  bytes += w->done({}, s);
  const auto ev = events(bytes);
  ASSERT_EQ(ev.size(), 6u);
  const Value& d0 = ev[0].second.field("choices").list->at(0).field("delta");
  EXPECT_EQ(d0.field("role").s, "assistant");
  EXPECT_EQ(d0.field("reasoning").s, "why");
  EXPECT_EQ(ev[1].second.field("choices").list->at(0).field("delta").field("content").s, "Hello");
  const Value& tc = ev[2].second.field("choices").list->at(0).field("delta").field("tool_calls").list->at(0);
  EXPECT_EQ(tc.field("function").field("arguments").s, R"({"a":"b"})");  // a JSON string, as OpenAI sends it
  EXPECT_EQ(tc.field("type").s, "function");
  EXPECT_EQ(ev[3].second.field("choices").list->at(0).field("finish_reason").s, "tool_calls");
  EXPECT_TRUE(ev[4].second.field("choices").list->empty());
  EXPECT_EQ(ev[4].second.field("usage").field("total_tokens").i, 7);
  EXPECT_EQ(ev[5].first, "[DONE]");
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(ev[i].second.field("id").s, ev[0].second.field("id").s);
}

// Two choices: each chunk names its choice, each choice its finish (the first choice may
// end last), and the usage and [DONE] follow only the last end, counting every choice's
// tokens and the prompt once.
TEST(OpenAIChatWriter, SeveralChoicesFinishApartAndShareOneTrailer) {
  auto w = openai_chat_writer("m", true, true, 2);
  Piece a = piece("A", ""), b = piece("B", "");
  b.choice = 1;
  std::string bytes = w->chunk(a);
  bytes += w->chunk(b);
  Summary s1;
  s1.choice = 1;
  s1.done_reason = "stop";
  s1.prompt_tokens = 4;
  s1.eval_count = 3;
  const std::string first_end = w->done({}, s1);
  EXPECT_EQ(first_end.find("[DONE]"), std::string::npos);
  Summary s0 = s1;
  s0.choice = 0;
  s0.done_reason = "length";
  s0.eval_count = 5;
  bytes += first_end + w->done({}, s0);
  const auto ev = events(bytes);
  ASSERT_EQ(ev.size(), 6u);
  auto choice = [&](size_t i) { return ev[i].second.field("choices").list->at(0); };
  EXPECT_EQ(choice(0).field("index").i, 0);
  EXPECT_EQ(choice(1).field("index").i, 1);
  EXPECT_EQ(choice(1).field("delta").field("role").s, "assistant");  // each choice's first chunk has the role
  EXPECT_EQ(choice(2).field("index").i, 1);
  EXPECT_EQ(choice(2).field("finish_reason").s, "stop");
  EXPECT_EQ(choice(3).field("index").i, 0);
  EXPECT_EQ(choice(3).field("finish_reason").s, "length");
  EXPECT_EQ(ev[4].second.field("usage").field("prompt_tokens").i, 4);
  EXPECT_EQ(ev[4].second.field("usage").field("completion_tokens").i, 8);
  EXPECT_EQ(ev[5].first, "[DONE]");
  // Not streamed: one object with the choices in index order, whatever order they ended in.
  auto whole = openai_chat_writer("m", false, false, 2);
  Piece t1 = piece("second", "");
  t1.choice = 1;
  EXPECT_EQ(whole->done(t1, s1), "");
  auto v = tmpl::from_json(whole->done(piece("first", ""), s0));
  ASSERT_TRUE(v.ok());
  const auto& choices = *v.value().field("choices").list;
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0].field("message").field("content").s, "first");
  EXPECT_EQ(choices[1].field("message").field("content").s, "second");
  EXPECT_EQ(choices[1].field("finish_reason").s, "stop");
}

// Reasoning, then text, then a call: three output items, each added, filled and done in
// turn (the open one closed before the next opens), sequence numbers counting from 0, and
// the completed response holding all three with the usage.
TEST(ResponsesWriter, ItemsOpenAndCloseInTurn) {
  auto w = responses_writer("m", true, ResponsesEcho{});
  std::string bytes = w->chunk(piece("", "hmm"));  // one call per statement: the order of events is the order of calls
  bytes += w->chunk(piece("", " so"));
  bytes += w->chunk(piece("Hi"));
  bytes += w->chunk(piece("", "", {{0, "call_abcdefgh", "f", R"({"a":1})"}}));
  Summary s;
  s.done_reason = "stop";
  s.prompt_tokens = 5;
  s.prompt_eval_count = 2;
  s.eval_count = 4;
  bytes += w->done({}, s);
  const auto ev = events(bytes);
  std::vector<std::string> names;
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].second.field("type").s, ev[i].first);
    EXPECT_EQ(ev[i].second.field("sequence_number").i, static_cast<int64_t>(i));
    names.push_back(ev[i].first);
  }
  const std::vector<std::string> want = {
      "response.created", "response.in_progress",
      "response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
      "response.output_item.done",
      "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done",
      "response.content_part.done", "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done",
      "response.output_item.done", "response.completed"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(ev[6].second.field("text").s, "hmm so");
  EXPECT_EQ(ev[9].second.field("output_index").i, 1);
  EXPECT_EQ(ev[15].second.field("output_index").i, 2);
  const Value& r = ev.back().second.field("response");
  EXPECT_EQ(r.field("status").s, "completed");
  const auto& out = *r.field("output").list;
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].field("summary").list->at(0).field("text").s, "hmm so");
  EXPECT_EQ(out[1].field("content").list->at(0).field("text").s, "Hi");
  EXPECT_EQ(out[2].field("call_id").s, "call_abcdefgh");
  EXPECT_EQ(out[2].field("arguments").s, R"({"a":1})");
  EXPECT_EQ(r.field("usage").field("input_tokens_details").field("cached_tokens").i, 3);
  EXPECT_EQ(r.field("usage").field("total_tokens").i, 9);
  // Not streamed, the same items in one object; a budget reached makes it incomplete.
  auto whole = responses_writer("m", false, ResponsesEcho{});
  Piece total = piece("Hi", "hmm so", {{0, "call_abcdefgh", "f", R"({"a":1})"}});
  s.done_reason = "length";
  auto v = tmpl::from_json(whole->done(total, s));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value().field("status").s, "incomplete");
  EXPECT_EQ(v.value().field("incomplete_details").field("reason").s, "max_output_tokens");
  EXPECT_EQ(v.value().field("output").list->size(), 3u);
}

// The translation to a chat completions request, field by field.
TEST(ResponsesRequest, BecomesAChatCompletionsRequest) {
  auto r = responses_request(R"({"model":"m","instructions":"Be brief.","max_output_tokens":7,"stream":true,
    "text":{"format":{"type":"json_schema","name":"p","schema":{"type":"object"}}},"reasoning":{"effort":"low"},
    "tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},
    "input":[{"type":"reasoning","summary":[{"type":"summary_text","text":"think"}]},
             {"type":"function_call","call_id":"c1","name":"f","arguments":""},
             {"type":"function_call_output","call_id":"c1","output":"42"},
             {"role":"developer","content":"Rule."}]})");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r.value().stream);
  EXPECT_EQ(r.value().echo.max_output_tokens, "7");
  auto v = tmpl::from_json(r.value().chat_body);
  ASSERT_TRUE(v.ok());
  const Value& c = v.value();
  EXPECT_EQ(c.field("max_tokens").i, 7);
  EXPECT_EQ(c.field("reasoning_effort").s, "low");
  EXPECT_EQ(c.field("response_format").field("json_schema").field("name").s, "p");
  EXPECT_EQ(c.field("tools").list->at(0).field("function").field("name").s, "f");
  EXPECT_EQ(c.field("tool_choice").field("function").field("name").s, "f");
  const auto& m = *c.field("messages").list;
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].field("role").s, "system");
  EXPECT_EQ(m[1].field("role").s, "assistant");
  EXPECT_EQ(m[1].field("reasoning").s, "think");  // the reasoning goes with the call after it
  EXPECT_EQ(m[1].field("tool_calls").list->at(0).field("function").field("arguments").s, "{}");
  EXPECT_EQ(m[2].field("tool_call_id").s, "c1");
  EXPECT_EQ(m[3].field("role").s, "system");  // developer
  // Refusals name what is wrong.
  const std::pair<const char*, const char*> bad[] = {
      {R"({"model":"m"})", "input is required"},
      {R"({"model":"m","input":"x","conversation":"c"})", "conversation is not supported"},
      {R"({"model":"m","input":"x","background":true})", "background"},
      {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})", "input[0].content[0]: file inputs"},
      {R"({"model":"m","input":[{"role":"robot","content":"x"}]})", "input[0]: invalid role"},
      {R"({"model":"m","input":"x","tools":[{"type":"function"}]})", "tools[0]: a function tool needs a \"name\""},
      {R"({"model":"m","input":"x","text":{"format":{"type":"yaml"}}})", "invalid text.format type"},
      {R"({"model":"m","input":"x","max_output_tokens":0})", "max_output_tokens"},
  };
  for (const auto& [body, message] : bad) {
    auto e = responses_request(body);
    ASSERT_FALSE(e.ok()) << body;
    EXPECT_NE(e.message().find(message), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace hearth::server
