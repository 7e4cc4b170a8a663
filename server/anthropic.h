// Anthropic's Messages API over the inference handlers (../shared/reference/ollama-api.md
// §10): a /v1/messages request becomes an /api/chat request, and the answer is written as
// Anthropic writes it — one message object, or the event sequence message_start,
// content_block_start/_delta/_stop per block, message_delta, message_stop. Errors use
// Anthropic's shape.
#pragma once

#include "server/http.h"

#include <string>
#include <string_view>

#include "gguf/result.h"
#include "server/inference.h"

namespace hearth::server {

// Anthropic's error object for an HTTP status.
std::string anthropic_error(int status, const std::string& message);

struct AnthropicRequest {
  std::string ollama_body;  // the /api/chat request
  std::string model;
  bool stream = false;
};

// A /v1/messages body as an /api/chat one; errors are 400s with a message naming the field.
// `can_think`: whether the model's template takes .Think (thinking is dropped otherwise,
// as Ollama does).
// `counting`: a count_tokens request (no max_tokens).
Result<AnthropicRequest> anthropic_request(std::string_view body, bool can_think, bool counting = false);

// The writer of /v1/messages answers (for tests of the wire format).
std::unique_ptr<AnswerWriter> anthropic_writer(std::string model, bool stream);

// POST /v1/messages/count_tokens: {"input_tokens": N}, the prompt the request would evaluate.
void anthropic_count_tokens(Inference& inference, const http::Request& req, http::Response& res);

// POST /v1/messages.
void anthropic_messages(Inference& inference, const http::Request& req, http::Response& res);

}  // namespace hearth::server
