// Tool calls and thinking in a model's output: the tags Ollama infers from a template,
// and the parsers that split the output, whole and streamed (every split agrees).
#include <gtest/gtest.h>

#include "server/gotemplate.h"
#include "server/thinking.h"
#include "server/tool_calls.h"
#include "testdata.h"

namespace hearth::server {
namespace {

std::string read(const std::string& rel) {
  std::ifstream f(test::testdata_dir() / rel, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

tmpl::Template parse(const std::string& text) {
  auto t = tmpl::Template::parse(text);
  EXPECT_TRUE(t.ok()) << t.message();
  return std::move(t.value());
}

// Tool-call sections of the common template families, as Ollama's templates write them.
constexpr const char* kQwen =
    "{{- range .Messages }}{{ if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ if .Content }}{{ .Content }}"
    "{{- else if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n{{ end }}</tool_call>{{ end }}<|im_end|>\n{{ end }}{{ end }}";
constexpr const char* kMistral =
    "{{- range .Messages }}{{- if eq .Role \"assistant\" }}{{ if .Content }}{{ .Content }}{{- else if .ToolCalls }}[TOOL_CALLS] ["
    "{{- range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ .Function.Arguments }}}{{- end }}]"
    "{{- end }}</s>{{ end }}{{ end }}";
constexpr const char* kLlama31 =
    "{{- range .Messages }}{{- if eq .Role \"assistant\" }}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{{- if .ToolCalls }}{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"parameters\": {{ .Function.Arguments }}}"
    "{{ end }}{{- else }}{{ .Content }}{{ end }}<|eot_id|>{{ end }}{{ end }}";

TEST(ToolCallTag, InferredAsOllamaDoes) {
  EXPECT_EQ(parse(read("ollama-templates/command-r.gotmpl")).tool_call_tag(), "Action: ```json\n[");
  EXPECT_EQ(parse(kQwen).tool_call_tag(), "<tool_call>");
  EXPECT_EQ(parse(kMistral).tool_call_tag(), "[TOOL_CALLS] [");
  EXPECT_EQ(parse(kLlama31).tool_call_tag(), "");  // the call itself starts with '{': bare JSON
  EXPECT_EQ(parse(read("ollama-templates/chatml.gotmpl")).tool_call_tag(), "");
}

struct Parsed {
  std::string content;
  std::vector<ToolCall> calls;
};

// Whole, then streamed in pieces of every size from 1 to 7 bytes: the same result.
Parsed run_tools(const std::string& tag, const std::vector<std::string>& names, const std::string& output) {
  auto once = [&](size_t piece) {
    ToolCallParser p(tag, names);
    Parsed r;
    for (size_t i = 0; i < output.size(); i += piece) {
      auto o = p.add(std::string_view(output).substr(i, piece));
      r.content += o.content;
      r.calls.insert(r.calls.end(), o.calls.begin(), o.calls.end());
    }
    auto o = p.finish();
    r.content += o.content;
    r.calls.insert(r.calls.end(), o.calls.begin(), o.calls.end());
    return r;
  };
  Parsed whole = once(output.size() + 1);
  for (size_t piece = 1; piece <= 7; ++piece) {
    Parsed s = once(piece);
    EXPECT_EQ(s.content, whole.content) << "pieces of " << piece << ": " << output;
    EXPECT_EQ(s.calls.size(), whole.calls.size()) << "pieces of " << piece << ": " << output;
    for (size_t i = 0; i < std::min(s.calls.size(), whole.calls.size()); ++i) {
      EXPECT_EQ(s.calls[i].name, whole.calls[i].name);
      EXPECT_EQ(s.calls[i].arguments, whole.calls[i].arguments);
    }
  }
  return whole;
}

struct ToolCase {
  const char* family;
  std::string tag;
  std::string output;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

TEST(ToolCalls, GoldenOutputsOfEachFamily) {
  const std::vector<std::string> names = {"get_weather", "get_time", "get"};
  const std::vector<ToolCase> cases = {
      {"qwen", "<tool_call>", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>",
       "", {{"get_weather", R"({"city":"Paris","unit":"c"})"}}},
      {"qwen, two calls after words", "<tool_call>",
       "Let me check.<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}\n</tool_call>\n<tool_call>\n"
       "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
       "Let me check.", {{"get_time", R"({"zone":"UTC"})"}, {"get_weather", R"({"city":"Oslo"})"}}},
      {"mistral", "[TOOL_CALLS] [",
       "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}, {\"name\": \"get\", \"arguments\": {}}]",
       "", {{"get_weather", R"({"city":"Rome"})"}, {"get", "{}"}}},
      {"llama 3.1 bare JSON", "", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Lima\"}}", "", {{"get_weather", R"({"city":"Lima"})"}}},
      {"command-r", "Action: ```json\n[",
       "Action: ```json\n[\n    {\n        \"tool_name\": \"get_time\",\n        \"parameters\": {\"zone\": \"CET\"}\n    }\n]```", "",
       {{"get_time", R"({"zone":"CET"})"}}},
      {"arguments as a JSON string (OpenAI style)", "<tool_call>",
       "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Nice\\\"}\"}</tool_call>", "",
       {{"get_weather", R"({"city":"Nice"})"}}},
      {"OpenAI function object", "", R"({"type": "function", "function": {"name": "get_time", "arguments": {"zone": "PST"}}})", "",
       {{"get_time", R"({"zone":"PST"})"}}},
      {"name before the object", "<tool_call>", "<tool_call>get_weather {\"city\": \"Bern\"}</tool_call>", "",
       {{"get_weather", R"({"city":"Bern"})"}}},
      {"key order kept, braces in strings", "", R"({"name":"get","arguments":{"z":"}{","a":[1,{"b":"\"}"}]}})", "",
       {{"get", R"({"z":"}{","a":[1,{"b":"\"}"}]})"}}},
      {"plain text with a brace tag", "", "The answer is {not a call}.", "The answer is {not a call}.", {}},
      {"JSON that names no tool", "", R"({"city": "Paris"})", R"({"city": "Paris"})", {}},
      {"bad JSON after a tag comes back as text", "<tool_call>", "Sure.<tool_call>{\"name\": \"get_weather\", \"arguments\": {city: Paris}}</tool_call>",
       "Sure.<tool_call>{\"name\": \"get_weather\", \"arguments\": {city: Paris}}</tool_call>", {}},
      {"unfinished call comes back as text", "<tool_call>", "<tool_call>{\"name\": \"get_weather\", \"argu",
       "<tool_call>{\"name\": \"get_weather\", \"argu", {}},
      {"a partial tag is not held forever", "<tool_call>", "a <tool_ca", "a <tool_ca", {}},
  };
  for (const ToolCase& c : cases) {
    Parsed r = run_tools(c.tag, names, c.output);
    EXPECT_EQ(r.content, c.content) << c.family;
    ASSERT_EQ(r.calls.size(), c.calls.size()) << c.family;
    for (size_t i = 0; i < c.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].name, c.calls[i].first) << c.family;
      EXPECT_EQ(r.calls[i].arguments, c.calls[i].second) << c.family;
      EXPECT_EQ(r.calls[i].index, static_cast<int>(i)) << c.family;
      EXPECT_EQ(r.calls[i].id.size(), 13u) << c.family;
      EXPECT_EQ(r.calls[i].id.rfind("call_", 0), 0u) << c.family;
      EXPECT_EQ(r.calls[i].id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789", 5), std::string::npos) << c.family;
    }
  }
}

// A qwen3-like template: past reasoning between <think> tags, and the new turn opened
// inside <think> when think is on.
constexpr const char* kThinkingTemplate =
    "{{- range $i, $_ := .Messages }}{{- if eq .Role \"user\" }}User: {{ .Content }}\n"
    "{{ else if eq .Role \"assistant\" }}Assistant: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}\n"
    "{{ end }}{{ end }}Assistant:{{ if .Think }} <think>{{ end }}";

TEST(ThinkingTags, InferredAsOllamaDoes) {
  EXPECT_EQ(parse(kThinkingTemplate).thinking_tags(), (std::pair<std::string, std::string>{"<think>", "</think>"}));
  EXPECT_EQ(parse(kQwen).thinking_tags(), (std::pair<std::string, std::string>{"", ""}));
  // .Thinking outside a range over .Messages does not count.
  EXPECT_EQ(parse("{{ if .Thinking }}<t>{{ .Thinking }}</t>{{ end }}").thinking_tags(), (std::pair<std::string, std::string>{"", ""}));
}

TEST(Thinking, SplitWholeAndStreamed) {
  struct Case {
    std::string output;
    bool inside;
    std::string thinking, content;
  };
  const std::vector<Case> cases = {
      {"<think>Let me see.</think>\n\nThe answer is 4.", false, "Let me see.", "The answer is 4."},
      {"  \n<think>a<b</think>c", false, "a<b", "c"},
      {"No thinking here. <think>x</think>", false, "", "No thinking here. <think>x</think>"},
      {"Pondering.</think> Done.", true, "Pondering.", "Done."},
      {"<think>never closed", false, "never closed", ""},
      {"<thi", false, "", "<thi"},
      {"", false, "", ""},
  };
  for (const Case& c : cases)
    for (size_t piece = 1; piece <= c.output.size() + 1; ++piece) {
      ThinkingParser p("<think>", "</think>", c.inside);
      std::string thinking, content;
      for (size_t i = 0; i < c.output.size(); i += piece) {
        auto o = p.add(std::string_view(c.output).substr(i, piece));
        thinking += o.thinking;
        content += o.content;
      }
      auto o = p.finish();
      thinking += o.thinking;
      content += o.content;
      EXPECT_EQ(thinking, c.thinking) << c.output << " in pieces of " << piece;
      EXPECT_EQ(content, c.content) << c.output << " in pieces of " << piece;
    }
}

}  // namespace
}  // namespace hearth::server
