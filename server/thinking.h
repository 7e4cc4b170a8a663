// Splitting a thinking model's output into its reasoning and its answer, as Ollama's
// generic parser does (thinking/parser.go): leading whitespace is skipped; output that
// starts with the open tag is thinking up to the close tag; whitespace after the close
// tag is dropped; the rest is content. When the rendered prompt already ends with the
// open tag (a template that opens the thinking section itself), it starts inside.
// Streaming: text that may be the start of a tag is held back until it is decided.
#pragma once

#include <string>
#include <string_view>

namespace hearth::server {

class ThinkingParser {
 public:
  ThinkingParser(std::string open, std::string close, bool inside);
  struct Out {
    std::string thinking, content;
    bool empty() const { return thinking.empty() && content.empty(); }
  };
  Out add(std::string_view text);
  // The end of the output: whatever was held back.
  Out finish();

 private:
  enum class State { Start, Thinking, AfterClose, Content } state_;
  std::string open_, close_, held_;
};

}  // namespace hearth::server
