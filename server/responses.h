// OpenAI's Responses API, stateless as Ollama serves it (../shared/reference/ollama-api.md
// §9.5): a /v1/responses request becomes a /v1/chat/completions request (so tools,
// tool_choice, JSON schemas and reasoning go through the same translation, server/openai.h)
// and the answer is written as a `response` object, or as Responses' typed server-sent
// events (`event: response.output_text.delta` …) ending with `response.completed`.
#pragma once

#include "server/http.h"

#include <string>
#include <string_view>

#include "gguf/result.h"
#include "server/inference.h"

namespace hearth::server {

// What a response object repeats of its request (as JSON text, already minified).
struct ResponsesEcho {
  std::string instructions = "null";     // a JSON string, or null
  std::string tools = "[]";              // the request's tools as given
  std::string tool_choice = "\"auto\"";
  std::string text_format = R"({"type":"text"})";
  std::string reasoning = "null";        // {"effort","summary"} or null
  std::string max_output_tokens = "null";
  double temperature = 1.0, top_p = 1.0;
};

struct ResponsesRequest {
  std::string chat_body;  // the equivalent /v1/chat/completions request
  std::string model;
  bool stream = false;
  ResponsesEcho echo;
};

// A /v1/responses body as a /v1/chat/completions one: input (a string, or items —
// messages with input_text/output_text/input_image parts, function_call,
// function_call_output, reasoning), instructions (a system message first), tools (Responses'
// flat function tools), tool_choice, text.format, reasoning.effort, max_output_tokens,
// temperature, top_p, stream. State (previous_response_id, conversation, background) is a
// 400: nothing is stored. Errors are 400s naming the field or item.
Result<ResponsesRequest> responses_request(std::string_view body);

// The writer of /v1/responses answers (for tests of the wire format).
std::unique_ptr<AnswerWriter> responses_writer(std::string model, bool stream, ResponsesEcho echo);

// POST /v1/responses.
void openai_responses(Inference& inference, const http::Request& req, http::Response& res);

}  // namespace hearth::server
