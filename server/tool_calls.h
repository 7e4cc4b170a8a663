// Tool calls in a model's output, found the way Ollama finds them for Go-template models
// (tools/tools.go; ../shared/reference/ollama-api.md §4.4): after the template's tool-call
// tag (Template::tool_call_tag(); "{" when the template names none), every balanced JSON
// object that names one of the request's tools is a call. Text before the tag is content.
// With a tag of "{" or "[" the output must start with it (after blanks) to be parsed at
// all; otherwise it is all content.
//
// A call's name: the object's "name" / "tool_name" / "function.name" when it is one of the
// tools, else the earliest tool name (the longest on a tie) in the text before the
// object's end. Its arguments: "arguments" or "parameters" (an object, or a string
// holding one), else the member named after the tool, else the whole object; kept as
// JSON text in the model's key order.
//
// Better than Ollama where it drops text: an output whose tool section yields no call
// (bad JSON, no tool named) comes back whole as content at the end instead of vanishing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::server {

struct ToolCall {
  int index = 0;
  std::string id;         // "call_" + 8 characters [a-z0-9]
  std::string name;
  std::string arguments;  // a JSON object
};

class ToolCallParser {
 public:
  ToolCallParser(std::string tag, std::vector<std::string> names);
  struct Out {
    std::string content;
    std::vector<ToolCall> calls;
    bool empty() const { return content.empty() && calls.empty(); }
  };
  Out add(std::string_view text);
  Out finish();
  int calls() const { return next_index_; }

 private:
  enum class State { Before, Inside, Off } state_ = State::Before;
  bool brace_tag() const { return tag_ == "{" || tag_ == "["; }
  // Takes every complete call at the front of buffer_ into `out`; false when an object
  // was found that is not a call (the section is then abandoned).
  bool take_calls(Out& out);
  std::string tag_;
  std::vector<std::string> names_;
  std::string buffer_;   // Before: text not yet shown; Inside: the tool section after the tag
  std::string section_;  // Inside: everything of the tool section, tag included, for a fallback
  int next_index_ = 0;
};

}  // namespace hearth::server
