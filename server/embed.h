// Embeddings over HTTP (../shared/reference/ollama-api.md §5.1, §5.2, §9.3):
//   POST /api/embed        input string | [string], truncate, dimensions → L2-normalised vectors
//   POST /api/embeddings   prompt → one raw (not normalised) vector, Ollama's legacy endpoint
//   POST /v1/embeddings    OpenAI's shape: float or base64 vectors, usage, OpenAI errors
// Every input of a request is embedded by Inference::embed, batched in the model's runner.
#pragma once

#include <string>
#include <vector>

#include "gguf/result.h"
#include "server/http.h"
#include "server/inference.h"

namespace hearth::server {

void embed(Inference& inference, const http::Request& req, http::Response& res);
void embeddings_legacy(Inference& inference, const http::Request& req, http::Response& res);
void openai_embeddings(Inference& inference, const http::Request& req, http::Response& res);

// x / max(‖x‖, 1e-12), after keeping the first `dimensions` values when 0 < dimensions <
// size; Error when a value is not finite (Ollama's normalize).
Result<std::vector<float>> normalized(std::vector<float> v, int64_t dimensions);

// Standard base64 (RFC 4648, padded) of bytes.
std::string base64(std::string_view bytes);

}  // namespace hearth::server
