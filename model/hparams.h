// Hyperparameters of the llama-family architectures, read from GGUF metadata with an
// error that names the missing or mistyped key.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf.h"

namespace hearth::model {

// Llama 3.1-style scaling is not a type: such files carry per-pair frequency factors in
// the rope_freqs.weight tensor (bound by the model).
enum class RopeScaling { None, Linear, Yarn };

// How a sequence's per-token hidden states become one embedding (<arch>.pooling_type, as
// llama.cpp numbers it). Unspecified: the file names none.
enum class Pooling { Unspecified = -1, None = 0, Mean = 1, Cls = 2, Last = 3, Rank = 4 };

// The forward pass an architecture runs: a decoder (causal attention over a KV cache,
// model/llama.h) or an encoder (every token of a sequence attends to every other, no
// cache, model/encoder.h).
enum class Family { Decoder, Encoder };

struct HParams {
  std::string arch;            // "llama", "qwen2", "qwen3"; encoders "bert", "nomic-bert"
  Family family = Family::Decoder;
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_ff = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;       // attention.key_length, default n_embd / n_head
  uint32_t rope_dim = 0;       // rope.dimension_count, default head_dim
  float rope_freq_base = 10000.f;
  float rope_freq_scale = 1.f; // 1 / rope.scaling.factor for linear scaling
  RopeScaling rope_scaling = RopeScaling::None;
  uint32_t rope_orig_ctx = 0;   // YaRN: rope.scaling.original_context_length, else n_ctx_train
  float yarn_beta_fast = 32.f, yarn_beta_slow = 1.f;
  float rms_eps = 1e-5f;       // decoders: RMSNorm's epsilon
  float norm_eps = 1e-12f;     // encoders: LayerNorm's epsilon (attention.layer_norm_epsilon)
  uint32_t n_token_types = 0;  // encoders: rows of token_types (tokenizer.ggml.token_type_count)
  bool neox_rope = false;      // qwen2/qwen3 rotate dim i with i + d/2; llama pairs neighbours
  bool tied_embeddings = false;  // no output.weight: token_embd is reused
  Pooling pooling = Pooling::Unspecified;  // <arch>.pooling_type

  uint32_t n_gqa() const { return n_head_kv ? n_head / n_head_kv : 1; }
};

// Reads and checks the hyperparameters of a model file (the tokenizer's size comes
// from tokenizer.ggml.tokens when <arch>.vocab_size is absent).
Result<HParams> read_hparams(const gguf::GgufFile& f);

}  // namespace hearth::model
