// The Ollama HTTP API on cpp-httplib: so far the model-management endpoints that need
// no inference: /, /api/version, /api/tags, /api/ps, HEAD|POST /api/blobs/:digest,
// /api/copy, /api/delete, /v1/models, /v1/models/{model}. Errors are {"error": "..."}
// with Ollama's status codes and messages; unknown paths 404, wrong methods 405.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "gguf/result.h"

namespace hearth::server {

// The Ollama API version these endpoints follow (clients gate features on it).
inline constexpr const char* kOllamaApiVersion = "0.9.6";

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 11434;                 // 0: any free port (tests)
  std::filesystem::path models;     // the store root
  std::string api_key;              // non-empty: require "Authorization: Bearer <key>"
  bool quiet = false;               // no access log
};

// From OLLAMA_HOST / HEARTH_HOST ("host", "host:port", "scheme://host:port", ":port"),
// OLLAMA_MODELS and HEARTH_API_KEY.
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
