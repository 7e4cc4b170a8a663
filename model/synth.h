// Models of real architectures' shapes with seeded random weights, so benchmarks need
// no downloads: `hearth synth`.
#pragma once

#include <string>

#include "gguf/result.h"
#include "model/hparams.h"
#include "quant/ftype.h"

namespace hearth::model {

struct SynthShape {
  std::string name;  // tiny, 1b, 3b, 7b
  int n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
};

// tiny: 256 wide, 2 layers; 1b: TinyLlama-1.1B; 3b: Llama-3.2-3B's blocks; 7b: Llama-2-7B;
// encoders: bert-tiny (128 wide, 2 layers), minilm (all-MiniLM-L6), bge-base (bge-base-en).
Result<SynthShape> synth_shape(const std::string& name);

struct SynthOptions {
  std::string arch = "llama";  // llama, bert, nomic-bert
  SynthShape shape;
  std::string vocab_path;   // a GGUF whose tokenizer.* keys are copied; required
  quant::FileType type = quant::FileType::F16;
  uint64_t seed = 1;
  float sigma = 0.02f;      // weights ~ N(0, sigma); norms 1
  int threads = 0;
  Pooling pooling = Pooling::Mean;  // encoders: <arch>.pooling_type; Rank adds a classification head
};

// Writes OUT (F16 or F32 directly; any other type by quantizing a temporary F16 file).
Status write_synth_model(const std::string& out, const SynthOptions& opt);

}  // namespace hearth::model
