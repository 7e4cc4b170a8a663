// Beyond Ollama: text to token ids and back with a model's own tokenizer.
//
//   POST /api/tokenize   {"model", "content", "add_special": false, "parse_special": true,
//                         "with_pieces": false} → {"tokens": [ids]} (with_pieces:
//                         [{"id", "piece"}])
//   POST /api/detokenize {"model", "tokens": [ids], "special": false} → {"content": "…"}
//
// The model's vocabulary is read from its GGUF (once per blob); the model is not loaded.
// Field names follow llama.cpp's server; errors are Ollama's {"error": "…"} with 400/404.
#pragma once

#include "server/http.h"

#include "server/inference.h"

namespace hearth::server {

void tokenize(Inference& inference, const http::Request& req, http::Response& res);
void detokenize(Inference& inference, const http::Request& req, http::Response& res);

}  // namespace hearth::server
