#include "server/thinking.h"

#include "server/text_scan.h"

namespace hearth::server {

ThinkingParser::ThinkingParser(std::string open, std::string close, bool inside)
    : state_(inside ? State::Thinking : State::Start), open_(std::move(open)), close_(std::move(close)) {}

ThinkingParser::Out ThinkingParser::add(std::string_view text) {
  Out out;
  held_ += text;
  for (;;) {
    switch (state_) {
      case State::Start: {
        const std::string_view rest = std::string_view(held_).substr(skip_space(held_));
        if (rest.empty()) return out;
        if (rest.substr(0, open_.size()) == open_) {
          held_ = std::string(rest.substr(open_.size()));
          state_ = State::Thinking;
          continue;
        }
        if (std::string_view(open_).substr(0, rest.size()) == rest) return out;  // may still become the tag
        state_ = State::Content;
        continue;
      }
      case State::Thinking: {
        const size_t at = held_.find(close_);
        if (at == std::string::npos) {
          const size_t keep = partial_suffix(held_, close_);
          out.thinking += held_.substr(0, held_.size() - keep);
          held_.erase(0, held_.size() - keep);
          return out;
        }
        out.thinking += held_.substr(0, at);
        held_.erase(0, at + close_.size());
        state_ = State::AfterClose;
        continue;
      }
      case State::AfterClose: {
        held_.erase(0, skip_space(held_));
        if (held_.empty()) return out;
        state_ = State::Content;
        continue;
      }
      case State::Content:
        out.content += held_;
        held_.clear();
        return out;
    }
  }
}

ThinkingParser::Out ThinkingParser::finish() {
  Out out;
  if (state_ == State::Thinking) out.thinking = held_;
  else if (state_ != State::AfterClose) out.content = held_;
  held_.clear();
  return out;
}

}  // namespace hearth::server
