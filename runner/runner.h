// One loaded model serving many sequences: a compute thread, the only caller into the
// engine, decodes every active sequence together by continuous batching. Each step it
// admits waiting requests into free KV slots (reusing the longest cached prefix),
// builds one batch of prompt chunks and one decode token per generating sequence,
// runs one forward pass, samples, streams, and retires finished or cancelled
// sequences. Knows no HTTP.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "model/encoder.h"
#include "model/grammar_matcher.h"
#include "model/llama.h"
#include "quant/compute_turns.h"
#include "runner/sequence.h"

namespace hearth::runner {

struct RunnerOptions {
  int n_ctx = 4096;        // positions per sequence
  int parallel = 4;        // sequences decoded together (KV slots)
  int threads = 0;         // kernel threads (0: all cores)
  model::KvType kv = model::KvType::F16;
  size_t max_queue = 512;  // requests waiting for a slot before submit() refuses
  // Rows of prompt chunks per step beside the decode tokens: a long prompt delays the
  // others' next tokens by at most one such chunk.
  int step_rows = 64;
  // When set, every forward pass takes a turn at the cores (shared with other runners and
  // with quantization), so that two thread teams never run at once.
  quant::ComputeTurns* turns = nullptr;

  bool operator==(const RunnerOptions&) const = default;
};

class Runner {
 public:
  Runner(std::shared_ptr<const model::Model> m, RunnerOptions opt);
  // Cancels every sequence (each gets no further event) and joins the compute thread.
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Queues a request. Errors: the queue is full (Ollama's "server busy" message), a
  // prompt that does not fit the context with shifting off, an empty prompt.
  Result<std::shared_ptr<Sequence>> submit(SeqRequest req);
  // Queues several requests at once (all or none: the first refusal is returned and
  // nothing is queued), so that the compute thread sees them together — an embedding
  // request's inputs then share forward passes from the first.
  Result<std::vector<std::shared_ptr<Sequence>>> submit_all(std::vector<SeqRequest> reqs);

  const model::Model& model() const { return *model_; }
  const RunnerOptions& options() const { return opt_; }
  // Requests queued or running.
  size_t busy() const;
  // Requests waiting for a slot, and sequences in slots.
  std::pair<size_t, size_t> load() const;

 private:
  struct Active;
  struct Waiting;
  // A request checked and fitted to the context, ready to queue.
  Result<Waiting> prepare(SeqRequest req) const;
  void loop();
  // Moves waiting requests into free slots; under mu_.
  void admit();
  // One forward pass over every active sequence; false when there was nothing to do.
  bool step();
  // Ends the sequence in `slot` with `e` (not sent when it was cancelled) and frees the slot.
  void finish(size_t slot, Event e);
  // The token after a sequence's last row: sample, stream, maybe finish.
  void advance(size_t slot, const float* logits);
  // Embedding requests: pools the step's hidden states, ends those with the whole prompt.
  void pool(const std::vector<model::BatchRow>& rows, const std::vector<size_t>& owner);
  // An encoder's step: whole sequences of one pooling, up to kEncoderRows rows, embedded
  // in one forward pass and ended.
  bool encode_step();

  std::shared_ptr<const model::Model> model_;
  RunnerOptions opt_;
  // The engine: a decoder's context (KV slots), or an encoder (no cache).
  std::unique_ptr<model::Context> ctx_;
  std::unique_ptr<model::Encoder> enc_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Waiting {
    std::shared_ptr<Sequence> seq;
    SeqRequest req;  // its prompt fitted to the context
    int truncated = 0;
  };
  std::deque<Waiting> waiting_;                                          // guarded by mu_
  size_t running_ = 0;                                                   // guarded by mu_
  bool stop_ = false;                                                    // guarded by mu_
  // Compute thread only:
  std::vector<std::vector<TokenId>> cached_;      // per slot: the tokens in its cache
  std::vector<std::unique_ptr<Active>> active_;   // per slot: the sequence using it, or null
  std::vector<float> logits_;
  std::vector<float> embd_;  // the step's hidden states of rows with `embd`
  // Structured output: the vocabulary's byte trie and its end-of-generation tokens, made
  // the first time a sequence has a grammar.
  std::shared_ptr<const model::TokenTrie> trie_;
  std::vector<TokenId> eog_;
  // The token a sequence with a grammar samples: the sampler's pick when the grammar
  // allows it (a cheap check), else a pick among the tokens it allows (Ollama's order:
  // mask only when needed). Negative when no token can continue the document.
  TokenId constrained_sample(Active& a, const float* logits);
  std::thread thread_;
};

// How many prompt rows each prompting sequence reads in a step of `budget` rows, given how
// many each has `remaining`. When every one can read a micro-batch (or all it has left)
// within the budget, it does — a short prompt beside a long one finishes in a step or
// two — and the rest of the budget goes by size; when there are more prompts than that,
// all of it goes by size, so that prompts sent together finish together and their
// sequences start decoding in the same step. Never more than the budget in total nor more
// than a sequence has left; every sequence gets a row while the budget lasts.
std::vector<size_t> prompt_shares(const std::vector<size_t>& remaining, size_t budget);

// An encoder embeds up to this many sequences in one forward pass (they hold no cache; a
// slot is only a place in the batch), of up to kEncoderRows tokens in all.
inline constexpr int kEncoderSlots = 64;
inline constexpr size_t kEncoderRows = 4096;

// Ollama's message when the queue is full.
inline constexpr const char* kServerBusy = "server busy, please try again.  maximum pending requests exceeded";

}  // namespace hearth::runner
