// A Go text/template engine, for Ollama's model templates (../shared/reference/ollama-api.md §4.2).
//
// Covers what the language has: text and actions with whitespace trimming ({{- -}}),
// comments, pipelines with `|`, parenthesised sub-pipelines, fields and chained fields,
// variables ($, $x, declaration := and assignment =), if / else if / else, range (lists,
// maps in key order; one or two variables; break, continue; else), with / else with,
// define / template / block, and the builtins and, or, not, len, index, slice, eq, ne,
// lt, le, gt, ge, print, printf, println, html, js, urlquery — plus Ollama's json,
// currentDate, yesterdayDate and toTypeScriptType. Executed with missingkey=zero.
//
// Data is a tree of Values (JSON-like). Maps model both Go maps and Go structs; a field
// that a map lacks is the zero value, as Ollama's missingkey=zero gives for maps.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/result.h"

namespace hearth::server::tmpl {

struct Value;
using List = std::vector<Value>;
using Map = std::map<std::string, Value>;  // range visits keys in order, as Go does

struct Value {
  enum class Kind { Nil, Bool, Int, Float, String, List, Map };
  Kind kind = Kind::Nil;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Map> map;
  // Printed form when the Go value has a String() method (Ollama prints tool arguments and
  // tool definitions as JSON); empty means the default formatting.
  std::string printed;

  Value() = default;
  static Value boolean(bool v) { Value x; x.kind = Kind::Bool; x.b = v; return x; }
  static Value integer(int64_t v) { Value x; x.kind = Kind::Int; x.i = v; return x; }
  static Value number(double v) { Value x; x.kind = Kind::Float; x.f = v; return x; }
  static Value str(std::string v) { Value x; x.kind = Kind::String; x.s = std::move(v); return x; }
  static Value of_list(List v = {}) { Value x; x.kind = Kind::List; x.list = std::make_shared<List>(std::move(v)); return x; }
  static Value of_map(Map v = {}) { Value x; x.kind = Kind::Map; x.map = std::make_shared<Map>(std::move(v)); return x; }

  bool truthy() const;
  // A field of a map; the zero (Nil) value when absent.
  const Value& field(const std::string& name) const;
};

// Go's default formatting (%v / print) of a value.
std::string format(const Value& v);
// encoding/json of a value (Go escapes <, >, & as \u003c, \u003e, \u0026).
std::string to_json(const Value& v);
// A string as encoding/json writes it, quotes included.
std::string json_quote(std::string_view s);
// Go's strconv.Quote (printf %q, %#v): no HTML escaping, \xNN for control bytes.
std::string go_quote(std::string_view s);
// Parses JSON text into a Value (objects become maps).
Result<Value> from_json(std::string_view text);

class Template {
 public:
  // Parse errors read like Go's: `template: :LINE: message`.
  static Result<Template> parse(std::string_view text);
  Result<std::string> execute(const Value& data) const;
  // Whether the main template mentions a field anywhere (e.g. "Messages", "Tools"),
  // including inside defined templates.
  bool references(std::string_view field) const;
  // Ollama's tool-call tag (tools/template.go): the first text inside the first {{if}}
  // whose condition names .ToolCalls, trimmed and cut before its first '{' (e.g.
  // "<tool_call>", "[TOOL_CALLS] ["); empty when there is none.
  std::string tool_call_tag() const;
  // Ollama's thinking tags (thinking/template.go): where .Thinking is used inside a range
  // over .Messages, the first and last texts of the innermost list around it (the last
  // such use wins), trimmed; empty when not found.
  std::pair<std::string, std::string> thinking_tags() const;

  struct Node;
  struct Tree;

 private:
  std::shared_ptr<const Tree> tree_;
};

}  // namespace hearth::server::tmpl
