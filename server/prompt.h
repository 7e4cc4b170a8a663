// Ollama's prompt layer over the Go template engine (../shared/reference/ollama-api.md §4.2):
// the data a model template sees, message collation, and the legacy
// System/Prompt/Response form.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gguf/result.h"
#include "server/gotemplate.h"

namespace hearth::server {

struct ChatMessage {
  std::string role, content, thinking;
  tmpl::Value tool_calls;  // list of {"function": {"name", "arguments"}}; Nil if none
  std::string tool_name;
};

// What a template sees of the request's `think`: .Think (on), .ThinkLevel ("low",
// "medium", "high", "max" or ""), .IsThinkSet (the request said).
struct ThinkSetting {
  bool on = false, set = false;
  std::string level;
};

// A model template as Ollama parses it: when it mentions neither .Messages nor .Response,
// `{{ .Response }}` is appended. Errors read `template: :LINE: …`.
Result<tmpl::Template> parse_model_template(std::string_view text);

// Renders a conversation: consecutive messages of one role (but tool) are merged with
// "\n\n"; .System is every system message joined with "\n\n". Templates over .Messages run
// once; legacy templates run once per (system, prompt, response) turn, the last one cut
// after its .Response.
Result<std::string> render_chat(const tmpl::Template& t, const std::vector<ChatMessage>& messages,
                                const tmpl::Value& tools = {}, const ThinkSetting& think = {});

}  // namespace hearth::server
