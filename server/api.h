// The Ollama HTTP API on Hearth's HTTP server (http.h): the model-management endpoints: /, /api/version,
// /api/tags, /api/ps, /api/show, /api/create, HEAD|POST /api/blobs/:digest, /api/copy,
// /api/delete, /v1/models, /v1/models/{model}. Errors are {"error": "..."} with Ollama's
// status codes and messages; unknown paths 404, wrong methods 405; CORS and the
// DNS-rebinding Host guard as Ollama has them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gguf/result.h"
#include "server/http_parse.h"
#include "server/inference.h"

namespace hearth::server {

// The Ollama API version these endpoints follow (clients gate features on it).
inline constexpr const char* kOllamaApiVersion = "0.9.6";

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 11434;                 // 0: any free port (tests)
  std::filesystem::path models;     // the store root
  std::string api_key;              // non-empty: require "Authorization: Bearer <key>"
  bool quiet = false;               // no access log
  std::vector<std::string> origins; // OLLAMA_ORIGINS: extra allowed browser origins ('*' wildcards)
  bool prune = false;               // prune unreferenced blobs at start-up (unless OLLAMA_NOPRUNE)
  int64_t prune_grace_seconds = 3600;
  std::filesystem::path templates;  // HEARTH_TEMPLATES: Ollama's template/ directory, for detection
  InferenceOptions inference;       // OLLAMA_NUM_PARALLEL, OLLAMA_MAX_QUEUE, OLLAMA_KEEP_ALIVE, …
  // Sizes, counts and timeouts of the HTTP layer (http_parse.h). max_body is for JSON
  // bodies (blob uploads stream); workers 0: enough for every request the runners may hold.
  http::Limits http = default_http_limits();
  static http::Limits default_http_limits() {
    http::Limits l;
    l.max_body = size_t{64} << 20;  // images in chat requests are base64
    l.workers = 0;
    return l;
  }
};

// From OLLAMA_HOST / HEARTH_HOST ("host", "host:port", "scheme://host:port", ":port"),
// OLLAMA_MODELS, HEARTH_API_KEY, and the serving variables: OLLAMA_NUM_PARALLEL (default 4),
// OLLAMA_MAX_QUEUE (512), OLLAMA_KEEP_ALIVE (5m), OLLAMA_MAX_LOADED_MODELS (3),
// OLLAMA_CONTEXT_LENGTH (4096), OLLAMA_KV_CACHE_TYPE (f16, f32, q8_0), HEARTH_THREADS.
Result<ServeOptions> serve_options_from_env();

class ApiServer {
 public:
  explicit ApiServer(ServeOptions opt);
  ~ApiServer();
  // Binds the listening socket; returns the port.
  Result<int> bind();
  // Serves until stop() (from another thread or a signal watcher).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
