// Structured output: JSON schemas (the draft 2020-12 subset Ollama, OpenAI and llama.cpp
// accept) compiled to grammars whose every complete document parses as JSON and
// validates against the schema.
//
// Where a keyword allows more than a grammar can say simply, the grammar produces a
// subset of the valid documents, never a superset: numbers are written without exponents
// and with at most 15 integer digits; a fraction's last digit is never 0; declared
// properties come in their declared order (additional ones only in objects that declare
// none, and maxProperties only there); generic values (`{}`, `true`, "json") nest at most kMaxValueDepth deep; `.` and
// negated classes in patterns produce printable ASCII; dates avoid 29 February. Every
// other keyword that constrains is an error naming it and where it is (a JSON pointer),
// never ignored. Annotations (title, description, examples, default, $schema, $id,
// $comment, deprecated, readOnly, writeOnly) are ignored.
//
// `oneOf` is compiled as `anyOf`: a document matching two of its branches is possible
// when the branches overlap.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "model/grammar.h"

namespace hearth::model {

constexpr int kMaxValueDepth = 8;
constexpr int kMaxSchemaDepth = 64;
constexpr size_t kMaxSchemaBytes = 1 << 20;

// Room to think before the document: a thinking model writes its reasoning freely up to
// the first `close` tag, then the document follows (after blanks). `inside`: the prompt
// already opened the reasoning; else it may open it with `open` first, or skip it.
// Empty `close`: no room (the document comes first).
struct ThinkingRoom {
  std::string open, close;
  bool inside = false;
};

// `schema`: the schema as JSON text.
Result<std::shared_ptr<const Grammar>> compile_json_schema(std::string_view schema, const ThinkingRoom& room = {});
// Ollama's format "json": any JSON object.
std::shared_ptr<const Grammar> json_object_grammar(const ThinkingRoom& room = {});

}  // namespace hearth::model
