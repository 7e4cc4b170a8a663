// Computing an importance matrix over a text, as llama-imatrix does: the text tokenized
// once (with BOS, special tokens as text), cut into chunks of n_ctx tokens whose first
// token becomes BOS, each chunk run from an empty cache; every weight product of every
// token is shown to the statistics (the matrices under blk.*, and output.weight when
// asked), and the perplexity of the second half of each chunk is computed on the way.
#pragma once

#include <functional>
#include <string_view>

#include "model/llama.h"
#include "quant/imatrix_stats.h"

namespace hearth::model {

struct ImatrixOptions {
  int n_ctx = 512;              // tokens per chunk (-c)
  int max_chunks = -1;          // chunks to run (--chunks); < 0: all the text has
  int skip_chunks = 0;          // chunks dropped from the start of the text (--chunk)
  int threads = 1;
  bool process_output = false;  // also collect output.weight (--process-output)
  bool compute_ppl = true;      // --no-ppl turns it off (and the logits with it)
  KvType kv = KvType::F16;
  // Attention over the F16 cache as llama.cpp's flash attention, which llama-imatrix uses
  // on CPUs by default today (see Context::set_flash_attn).
  bool flash_attn = true;
};

struct ImatrixProgress {
  int chunk = 0, n_chunks = 0;  // chunk (1-based) of n_chunks done
  double ppl = 0;               // running perplexity after it (compute_ppl)
};

struct ImatrixSummary {
  int n_chunks = 0;
  int64_t tokens = 0;          // tokens run
  double ppl = 0, ppl_err = 0;  // the final estimate (compute_ppl)
};

// Adds the text's activations to `stats` (whose chunk size must be o.n_ctx). on_chunk is
// called after every chunk; an error it returns stops the run with that error. Errors: a
// model that is not a decoder, a text shorter than two chunks, a context below 4.
Result<ImatrixSummary> compute_imatrix(const Model& m, std::string_view text, const ImatrixOptions& o,
                                       quant::ImatrixStats& stats,
                                       const std::function<Status(const ImatrixProgress&)>& on_chunk = {});

}  // namespace hearth::model
