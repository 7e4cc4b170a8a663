// A request's side of a generation: what the HTTP thread submits to a runner and the
// channel it reads the results from. Knows no HTTP.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/grammar.h"

namespace hearth::runner {

using model::TokenId;

struct SeqRequest {
  std::vector<TokenId> prompt;    // tokenized, BOS included when the model adds one
  model::GenerateOptions options;
  int logprobs = -1;              // < 0: none; else the top alternatives per token (0–20)
  // Structured output: when set, every sampled token keeps the text a prefix of a
  // document of this grammar, and generation stops when the document is complete.
  std::shared_ptr<const model::Grammar> grammar;
  // Embedding: not None makes this an embedding request. The prompt is evaluated (every
  // row, no cached prefix reused) and its final-norm hidden states pooled into the Done
  // event's `embedding`, raw (not normalised); nothing is generated.
  model::Pooling pooling = model::Pooling::None;
};

// One token's log probability and the most likely alternatives at its position.
struct TokenLogprob {
  TokenId token = 0;
  float logprob = 0;
  std::vector<std::pair<TokenId, float>> top;
};

struct Event {
  enum class Kind { Text, Done, Error } kind = Kind::Text;
  std::string text;                        // Text: what to show (may be empty with logprobs)
  std::vector<TokenLogprob> logprobs;      // Text: the tokens this text came from
  // Done:
  std::string done_reason;                 // "stop" or "length"
  int prompt_eval_count = 0;               // prompt tokens evaluated (a reused prefix is not)
  int prompt_tokens = 0;                   // prompt tokens in all, reused or not
  int truncated = 0;                       // prompt tokens dropped to fit the context
  int eval_count = 0;                      // tokens generated
  int64_t prompt_eval_ns = 0, eval_ns = 0;
  std::vector<TokenId> context;            // the prompt as evaluated and the generated tokens
  std::vector<float> embedding;            // an embedding request's pooled vector
  std::string error;                       // Error: what went wrong
};

// The channel between the compute thread (push, cancelled) and the request's thread
// (next, cancel). Thread-safe. A sequence ends with exactly one Done or Error event,
// unless it was cancelled first.
class Sequence {
 public:
  // Waits up to `timeout` for the next event; false when none came.
  bool next(Event* out, std::chrono::milliseconds timeout);
  // The client went away or the server is stopping: the runner stops this sequence at
  // its next step and frees its slot.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  void push(Event e);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace hearth::runner
