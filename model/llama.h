// The llama family (llama 2/3, mistral, the stories models, qwen2 with QKV bias, qwen3
// with per-head QK norm): weights bound by name, type and shape, and a forward pass
// that reads like the paper, one token at a time.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/repack.h"
#include "model/hparams.h"
#include "model/matmul.h"
#include "model/vocab.h"

namespace hearth::model {

struct LayerWeights {
  Weight attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
  Weight ffn_norm, w_gate, w_up, w_down;
};

// An encoder layer (bert: separate q/k/v with biases, GELU feed-forward with biases;
// nomic-bert: fused qkv, SwiGLU), LayerNorms after the attention and after the
// feed-forward. Absent tensors stay unbound.
struct EncoderLayer {
  Weight wq, bq, wk, bk, wv, bv, wqkv, wo, bo, attn_out_norm, attn_out_norm_b;
  Weight w_up, b_up, w_gate, w_down, b_down, out_norm, out_norm_b;
};

class Model {
 public:
  // Maps the file, reads hyperparameters and tokenizer, binds every weight with a check
  // of its type and exact shape (errors name the tensor and the expected shape).
  static Result<std::unique_ptr<Model>> load(const std::string& path);

  const HParams& hparams() const { return hp_; }
  const Vocab& vocab() const { return vocab_; }
  const gguf::GgufFile& file() const { return file_; }

  Weight tok_embd, output_norm, output;
  Weight rope_freqs;  // optional: llama 3.1-style per-pair frequency factors (f32, rope_dim / 2)
  std::vector<LayerWeights> layers;
  // Encoders (hparams().family == Family::Encoder; bound by model/encoder.cpp): token type
  // and absolute position tables, the embedding LayerNorm, the layers, and a
  // reranker's classification head (cls: n_embd → n_embd, tanh; cls_out: → scores).
  Weight token_types, position_embd, embd_norm, embd_norm_b, cls, cls_b, cls_out, cls_out_b;
  std::vector<EncoderLayer> enc_layers;

  // The matrices of the forward pass (every layer's projections and the output), the
  // weights a decoded token reads once each.
  std::vector<const Weight*> matrices() const;
  std::vector<Weight*> matrices();

 private:
  // Repacks the Q4_0, Q8_0, Q4_K and Q6_K matrices eight rows at a time when this CPU
  // runs the kernels for it.
  void repack_weights();
  gguf::GgufFile file_;
  std::vector<std::unique_ptr<uint8_t[]>> packed_;
  HParams hp_;
  Vocab vocab_;
};

// The element type of the KV cache: F16 by default, as llama.cpp's (half the memory;
// rounded as llama.cpp does: k and v stored as halves, q and the attention weights
// rounded to half for their products, sums in float), or F32 (no rounding; what the
// reference logits were made with), or Q8_0 (a little over half of F16's memory; q
// quantized to Q8_0 for its products with k, as llama.cpp does; needs a head size that
// is a multiple of 32).
enum class KvType { F32, F16, Q8_0 };

// One row of a batch: a token of sequence `seq` at position `pos` of that sequence, and
// whether its next-token logits are wanted.
struct BatchRow {
  TokenId token = 0;
  int pos = 0;
  int seq = 0;
  bool logits = false;
  bool embd = false;  // its hidden state after the final norm is wanted (embeddings)
};

// The KV cache with `slots` sequences of n_ctx positions each, and the scratch buffers of
// the forward pass, allocated once. A batch may mix rows of any sequences (prompt chunks
// and single decode tokens); each row attends only to its own sequence's cache, and its
// logits are the same, bit for bit, whatever else is in the batch (every kernel computes
// a row of a multi-row product exactly as the one-row product). Not thread-safe: one
// caller at a time.
//
// The single-sequence calls (eval, shift, n_past, reset, key without a slot) act on slot 0.
class Context {
 public:
  // Prompt tokens are evaluated in micro-batches of this many rows (llama.cpp's ubatch):
  // each weight matrix is streamed once per micro-batch instead of once per token.
  static constexpr int kUbatch = 32;

  // kv must be one supports() accepts for the model.
  Context(const Model& m, int n_ctx, int threads, KvType kv = KvType::F16, int slots = 1);
  // Empty when the model can use a cache of this type, else why not.
  static std::string unsupported(const Model& m, KvType kv);
  // Bytes of KV cache for `slots` sequences of n_ctx positions (the memory estimate).
  static size_t kv_bytes(const HParams& h, int n_ctx, int slots, KvType kv);

  // Runs the rows in order, in micro-batches of kUbatch. Each sequence's rows must have
  // consecutive positions starting at its length(seq) and end before n_ctx; every row is
  // checked before any is evaluated. For the rows with `logits`, in order, the next-token
  // logits are written to `out` (resized to that many rows of n_vocab); for the rows with
  // `embd`, in order, the final-norm hidden states to `embd` (that many rows of n_embd),
  // when given.
  Status decode(std::span<const BatchRow> rows, std::vector<float>* out, std::vector<float>* embd = nullptr);

  // Slot 0: runs one token at position n_past() and appends it to the cache; the
  // next-token logits are in logits(). Error when the context is full.
  Status eval(TokenId token);
  // Slot 0: runs tokens at positions n_past() … n_past() + size - 1, in micro-batches;
  // logits() then holds the last token's next-token logits, and each(i, logits) is called
  // for every token i when given. The same numbers as one eval() per token, bit for bit.
  // Checks every token and the free space before evaluating any.
  Status eval(std::span<const TokenId> tokens, const std::function<void(size_t, const float*)>& each = nullptr);
  const std::vector<float>& logits() const { return logits_; }
  // Context shift of sequence `seq`: forgets positions [keep, keep + discard) and moves the
  // later ones down by `discard`, turning their keys back by that many positions of RoPE
  // (a rotation is linear in the position, YaRN's included), so generation can go on in a
  // full context.
  Status shift(int keep, int discard) { return shift(0, keep, discard); }
  Status shift(int seq, int keep, int discard);
  // Layer l's key at position pos of sequence seq (every KV head, post-RoPE), as float: for tests.
  std::vector<float> key(int l, int pos) const { return key(0, l, pos); }
  std::vector<float> key(int seq, int l, int pos) const;
  // Positions in use by a sequence; truncate keeps its first n (a reused prefix).
  int length(int seq) const { return length_[static_cast<size_t>(seq)]; }
  void truncate(int seq, int n) { length_[static_cast<size_t>(seq)] = std::min(n, length(seq)); }
  int slots() const { return static_cast<int>(length_.size()); }
  int n_past() const { return length(0); }
  int n_ctx() const { return n_ctx_; }
  void reset() { truncate(0, 0); }
  const Model& model() const { return m_; }
  // Every weight product of the forward pass is shown to `o` first: its matrix and input
  // rows (llama-imatrix's view of a MUL_MAT). Empty: none.
  void observe_matmuls(MatMul::Observer o) { mm_.observe(std::move(o)); }
  // With an F16 cache: attention products as llama.cpp's flash attention computes them (q
  // and the probabilities kept in float) instead of as its F16 matmuls (both rounded to
  // half; the default, and what the reference logits and perplexities were made with).
  void set_flash_attn(bool on) { flash_attn_ = on; }

 private:
  // Whether the rows may run (see decode()); names the first bad row's problem.
  Status check(std::span<const BatchRow> rows) const;
  // Checked rows in micro-batches; after each, each(first row, rows with logits, their logits).
  void run(std::span<const BatchRow> rows, const std::function<void(size_t, int, const float*)>& each);
  // One micro-batch of B <= kUbatch rows; the logits of the rows that want them go to
  // `out`, one after another.
  void forward(const BatchRow* rows, int B, float* out);
  void attention(int l, const BatchRow* rows, int B);
  void attention_q8_0(int l, const BatchRow* rows, int B);
  size_t scratch_per_thread() const;
  // The cache lane of layer l of sequence seq: lanes are [seq][layer], each n_ctx positions.
  size_t lane(int seq, int l) const { return static_cast<size_t>(seq) * m_.hparams().n_layer + static_cast<size_t>(l); }
  kernels::RopeParams rope_;
  const Model& m_;
  int n_ctx_, threads_;
  std::vector<int> length_;  // per sequence
  KvType kv_type_;
  bool flash_attn_ = false;
  // F32 (k_cache_, v_cache_) or F16 (k_half_, v_half_), per lane: K transposed as
  // [n_head_kv * head_dim][pos], V as [pos][n_head_kv * head_dim], so that both products
  // of attention run with positions (scores) or values (weighted sum) along the vectors
  // and each K or V vector loaded serves several query rows (kernels::attend_rows).
  std::vector<float> k_cache_, v_cache_;
  std::vector<uint16_t> k_half_, v_half_;
  // Q8_0: K and V both as [lane][pos][n_head_kv * head_dim] in Q8_0 blocks (V is not
  // transposed: a block cannot grow one position at a time).
  std::vector<uint8_t> k_q8_, v_q8_;
  size_t q8_row_bytes_ = 0;
  // [kUbatch][dim] scratch; scores_ is [threads][n_ctx + head_dim]; out_ is [rows][n_vocab].
  // rope_cs_: [kUbatch][rope_dim] cos/sin of each micro-batch row's angles.
  std::vector<float> rope_cs_, x_, xn_, q_, k_, v_, att_, attn_out_, gate_, up_, ffn_out_, scores_, out_, logits_;
  std::vector<float>* embd_out_ = nullptr;  // during decode(): where rows with `embd` go
  MatMul mm_;
};

}  // namespace hearth::model
