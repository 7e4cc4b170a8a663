// POST /api/generate and POST /api/chat (../shared/reference/ollama-api.md §3): a handler
// checks the request, renders the prompt with the model's template, submits it to the
// model's runner (runner/) and streams what comes back as NDJSON, or one object with
// "stream": false. A client that goes away cancels its sequence. HTTP threads never run
// kernels: they render, tokenize and wait.
#pragma once

#include "server/http.h"

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "runner/model_cache.h"
#include "server/answer.h"
#include "server/metrics.h"
#include "server/options.h"
#include "server/store.h"

namespace hearth::server {

struct InferenceOptions {
  int parallel = 4;                       // OLLAMA_NUM_PARALLEL
  size_t max_queue = 512;                 // OLLAMA_MAX_QUEUE
  int threads = 0;                        // kernel threads per model (0: every core)
  model::KvType kv = model::KvType::F16;  // OLLAMA_KV_CACHE_TYPE
  int default_num_ctx = 4096;             // OLLAMA_CONTEXT_LENGTH
  runner::CacheOptions cache;             // OLLAMA_MAX_LOADED_MODELS, OLLAMA_KEEP_ALIVE
  quant::ComputeTurns* turns = nullptr;   // shared by every runner and /api/create's quantizer
  Metrics* metrics = nullptr;             // the server's counters (tokens, latencies), when set
};

// An /api/chat field set by the OpenAI layer when tool_choice forces a call (through a
// grammar): the output is then a bare JSON call, whatever the template's tool-call tag.
inline constexpr const char* kForcedToolsField = "hearth_forced_tool_call";

// An error answered before any byte of the response: its status and message.
struct Refusal {
  int status;
  std::string message;
};

// One input of an embedding request: text, or (OpenAI's token arrays) token ids.
struct EmbedInput {
  std::string text;
  std::optional<std::vector<model::TokenId>> tokens;
};

// What Inference::embed gives back: one raw (pooled, not normalised) vector per input.
struct EmbedResult {
  std::vector<std::vector<float>> vectors;
  int prompt_tokens = 0;           // tokens evaluated, all inputs
  int64_t total_ns = 0, load_ns = 0;
};

class Inference {
 public:
  Inference(const Store& store, InferenceOptions opt) : store_(store), opt_(opt), cache_(opt.cache) {}
  // How an answer is written (server/answer.h); null: Ollama's NDJSON.
  using WriterFactory = std::function<std::unique_ptr<AnswerWriter>(const std::string& model, bool stream)>;
  // `choices` > 1 (OpenAI's n): that many answers to the one prompt, decoded as parallel
  // sequences and written by a writer made for that many (server/answer.h).
  void generate(const http::Request& req, http::Response& res, const WriterFactory& writer = nullptr, int choices = 1);
  void chat(const http::Request& req, http::Response& res, const WriterFactory& writer = nullptr, int choices = 1);
  // The vocabulary of the model of that name (read from its GGUF once per blob), or the
  // refusal: 400 for an invalid name, 404 for an unknown model.
  std::optional<Refusal> vocab(const std::string& model_name, std::shared_ptr<const model::Vocab>& out);
  // The prompt tokens a chat request (an /api/chat body) would evaluate, or the refusal.
  std::optional<Refusal> count_chat_tokens(const http::Request& req, int& count);
  // Embeds `inputs` with the model the body (an /api/embed-style request: model, options,
  // keep_alive) names, all of them submitted at once to the model's runner, which batches
  // them with whatever else it runs. Pooling from <arch>.pooling_type; mean when the file
  // names none (a generative model), as Ollama answers those too. An input longer than
  // the context is cut to it with `truncate`, else refused. No inputs: the model is loaded.
  // With `rank`, the model must be a reranker (pooling rank) and each vector is its
  // classification head's scores for one input (a query and document pair).
  std::optional<Refusal> embed(const http::Request& req, const std::vector<EmbedInput>& inputs, bool truncate,
                               EmbedResult& out, bool rank = false);
  // Whether the model of that name has a template that takes .Think (false when unknown).
  bool can_think(const std::string& model_name) const;
  // The server is stopping: every answer being streamed cancels its sequence and ends.
  void stop() { stopping_ = true; }
  runner::ModelCache& cache() { return cache_; }
  const runner::ModelCache& cache() const { return cache_; }
  // One generation request, checked and rendered (defined in inference.cpp).
  struct Call;

 private:
  void run(Call& call, http::Response& res);
  runner::RunnerOptions runner_options(const ModelOptions& o) const;
  // Checks and renders a chat request into `call`; the refusal when it cannot run.
  std::optional<Refusal> chat_call(const http::Request& req, Call& call);
  // A model blob's hyperparameters, its GGUF header read once per digest (blobs never
  // change under their digest).
  Result<model::HParams> hparams(const std::string& digest, const std::string& path);
  const Store& store_;
  InferenceOptions opt_;
  std::atomic<bool> stopping_{false};
  std::mutex hp_mu_;
  std::map<std::string, model::HParams> hp_;  // guarded by hp_mu_
  std::map<std::string, std::shared_ptr<const model::Vocab>> vocabs_;  // guarded by hp_mu_
  runner::ModelCache cache_;
};

}  // namespace hearth::server
