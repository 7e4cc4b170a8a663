// Reranking over HTTP, beyond Ollama (which has none): POST /api/rerank and /v1/rerank, in
// the request and response shape of llama.cpp's /v1/rerank and the Jina/Cohere APIs:
//   {"model", "query", "documents": [string], "top_n"?, "return_documents"?}
//   → {"model", "object": "list", "results": [{"index", "relevance_score", "document": {"text"}?}],
//      "usage": {"prompt_tokens", "total_tokens"}}
// for models whose pooling is rank (a bert-style cross-encoder: a classification head over
// [CLS] query [SEP] document [SEP], as llama-embedding forms the pair). Results are sorted by
// score, highest first; top_n keeps that many. Every pair of a request is scored in one
// batch by the model's runner. Errors: Ollama's {"error"} on /api/rerank, OpenAI's on /v1.
#pragma once

#include "server/http.h"
#include "server/inference.h"

namespace hearth::server {

void rerank(Inference& inference, const http::Request& req, http::Response& res, bool openai_errors);

}  // namespace hearth::server
