#include "server/tool_calls.h"

#include <simdjson.h>

#include <optional>
#include <random>

#include "server/text_scan.h"

namespace hearth::server {

namespace {

// One past the '}' that closes the object opening at s[open] (strings and escapes
// respected), or npos while it is not closed yet.
size_t balanced_end(std::string_view s, size_t open) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = open; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
  }
  return std::string_view::npos;
}

std::string call_id() {
  static thread_local std::mt19937 rng(std::random_device{}());
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 8; ++i) id += kChars[rng() % 36];
  return id;
}

// Arguments as a JSON object's text: an object, or a string holding one.
std::optional<std::string> arguments_of(simdjson::dom::element v) {
  simdjson::dom::object obj;
  if (!v.get_object().get(obj)) return simdjson::minify(obj);
  std::string_view text;
  if (v.get_string().get(text)) return std::nullopt;
  simdjson::dom::parser p;
  if (p.parse(text.data(), text.size()).get_object().get(obj)) return std::nullopt;
  return simdjson::minify(obj);
}

}  // namespace

ToolCallParser::ToolCallParser(std::string tag, std::vector<std::string> names)
    : tag_(tag.empty() ? "{" : std::move(tag)), names_(std::move(names)) {}

// The call an object stands for, given the text up to its end; nothing when it names no tool.
static std::optional<ToolCall> as_call(std::string_view object, std::string_view upto, const std::vector<std::string>& names) {
  simdjson::dom::parser p;
  simdjson::dom::object obj;
  if (p.parse(object.data(), object.size()).get_object().get(obj)) return std::nullopt;
  auto known = [&](simdjson::dom::element v) -> std::optional<std::string> {
    std::string_view s;
    if (v.get_string().get(s)) return std::nullopt;
    for (const std::string& n : names)
      if (n == s) return n;
    return std::nullopt;
  };
  ToolCall call;
  std::optional<simdjson::dom::object> fn;
  bool named_by_key = false;
  for (const char* key : {"name", "tool_name"}) {
    simdjson::dom::element v;
    if (call.name.empty() && !obj[key].get(v))
      if (auto n = known(v)) call.name = *n, named_by_key = true;
  }
  simdjson::dom::object f;
  if (call.name.empty() && !obj["function"].get_object().get(f)) {
    simdjson::dom::element v;
    if (!f["name"].get(v))
      if (auto n = known(v)) call.name = *n, named_by_key = true, fn = f;
  }
  if (call.name.empty()) {  // the earliest tool name in the text, the longest on a tie
    size_t best = std::string_view::npos;
    for (const std::string& n : names) {
      const size_t at = upto.find(n);
      if (at != std::string_view::npos && (at < best || (at == best && n.size() > call.name.size()))) best = at, call.name = n;
    }
    if (call.name.empty()) return std::nullopt;
  }
  std::vector<simdjson::dom::element> candidates;
  simdjson::dom::element v;
  if (fn && !(*fn)["arguments"].get(v)) candidates.push_back(v);
  for (const char* key : {"arguments", "parameters"})
    if (!obj[key].get(v)) candidates.push_back(v);
  if (!obj[call.name].get(v)) candidates.push_back(v);
  for (simdjson::dom::element c : candidates)
    if (auto a = arguments_of(c)) {
      call.arguments = *a;
      return call;
    }
  call.arguments = named_by_key ? "{}" : simdjson::minify(obj);
  return call;
}

bool ToolCallParser::take_calls(Out& out) {
  for (;;) {
    const size_t open = buffer_.find('{');
    if (open == std::string::npos) return true;
    const size_t end = balanced_end(buffer_, open);
    if (end == std::string::npos) return true;  // wait for the rest of the object
    auto call = as_call(std::string_view(buffer_).substr(open, end - open), std::string_view(buffer_).substr(0, end), names_);
    if (!call) {
      buffer_.erase(0, end);
      return false;
    }
    call->index = next_index_++;
    call->id = call_id();
    out.calls.push_back(std::move(*call));
    buffer_.erase(0, end);
  }
}

ToolCallParser::Out ToolCallParser::add(std::string_view text) {
  Out out;
  if (state_ == State::Off) {
    out.content = text;
    return out;
  }
  buffer_ += text;
  if (state_ == State::Inside) {
    section_ += text;
  } else if (brace_tag()) {
    const size_t i = skip_space(buffer_);
    if (i == buffer_.size()) return out;  // only blanks so far
    if (buffer_[i] != tag_[0]) {
      state_ = State::Off;
      out.content = std::move(buffer_);
      buffer_.clear();
      return out;
    }
    out.content = buffer_.substr(0, i);
    buffer_.erase(0, i);
    section_ = buffer_;
    state_ = State::Inside;
  } else {
    const size_t at = buffer_.find(tag_);
    if (at == std::string::npos) {
      const size_t show = buffer_.size() - partial_suffix(buffer_, tag_);
      out.content = buffer_.substr(0, show);
      buffer_.erase(0, show);
      return out;
    }
    out.content = buffer_.substr(0, at);
    section_ = buffer_.substr(at);
    buffer_.erase(0, at + tag_.size());
    state_ = State::Inside;
  }
  while (!take_calls(out)) {
    if (!brace_tag()) continue;  // after a real tag: skip the object, look for the next
    // JSON that is not a call: with a bare-brace tag it was ordinary text all along.
    out.content += next_index_ == 0 ? section_ : buffer_;
    buffer_.clear();
    section_.clear();
    state_ = State::Off;
    break;
  }
  return out;
}

ToolCallParser::Out ToolCallParser::finish() {
  Out out;
  if (state_ == State::Before) out.content = std::move(buffer_);
  else if (state_ == State::Inside && next_index_ == 0) out.content = std::move(section_);
  buffer_.clear();
  section_.clear();
  return out;
}

}  // namespace hearth::server
