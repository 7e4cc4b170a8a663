// OpenAI's chat completions and completions APIs over the inference handlers
// (../shared/reference/ollama-api.md §9.1–9.2): a /v1/chat/completions request becomes an
// /api/chat request (/v1/completions: /api/generate), and the answer is written as OpenAI
// writes it — one object, or server-sent events of chunks ending with `data: [DONE]`.
// Errors use OpenAI's shape.
#pragma once

#include "server/http.h"

#include <string>
#include <string_view>

#include "gguf/result.h"
#include "server/inference.h"

namespace hearth::server {

// OpenAI's error object for an HTTP status: invalid_request_error (400), not_found_error
// (404), authentication_error (401), api_error (others).
std::string openai_error(int status, const std::string& message);

// A refusal of the inference handlers (Ollama's {"error": "…"}, status >= 400, before the
// answer started) rewritten in OpenAI's shape; other responses are left as they are.
void openai_refusal(http::Response& res);

// What the translation keeps for the answer.
struct OpenAIChatRequest {
  std::string ollama_body;  // the /api/chat request
  std::string model;
  bool stream = false, include_usage = false;
  int n = 1;  // choices
};

// A /v1/chat/completions body as an /api/chat one; errors are 400s with OpenAI's messages.
Result<OpenAIChatRequest> openai_chat_request(std::string_view body);

// The writer of /v1/chat/completions answers with `n` choices (for tests of the wire format).
std::unique_ptr<AnswerWriter> openai_chat_writer(std::string model, bool stream, bool include_usage, int n = 1);

struct OpenAICompletionRequest {
  std::string ollama_body;  // the /api/generate request
  std::string model;
  bool stream = false, include_usage = false, logprobs = false;
  int n = 1;         // choices
  std::string echo;  // echo: the prompt, to start each choice's text
};

// A /v1/completions body as an /api/generate one (the model's template applies, as in
// Ollama); errors are 400s.
Result<OpenAICompletionRequest> openai_completion_request(std::string_view body);

// POST /v1/completions.
void openai_completions(Inference& inference, const http::Request& req, http::Response& res);

// POST /v1/chat/completions.
void openai_chat(Inference& inference, const http::Request& req, http::Response& res);

}  // namespace hearth::server
