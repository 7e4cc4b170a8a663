// Encoders: bert (absolute position embeddings, token types, LayerNorm after attention and
// after a GELU feed-forward, biases everywhere) and nomic-bert (fused QKV, RoPE, SwiGLU).
// Every token of a sequence attends to every other, so a sequence is evaluated whole, in
// one forward pass with any others (packed one after another, no padding), and nothing is
// cached. The weights are bound into Model (model/llama.h) by bind_encoder.
#pragma once

#include <span>
#include <vector>

#include "kernels/ops.h"
#include "model/llama.h"
#include "model/matmul.h"

namespace hearth::model {

// Binds an encoder's weights by name, type and exact shape (called by Model::load for
// Family::Encoder); errors name the tensor.
Status bind_encoder(Model& m);

class Encoder {
 public:
  Encoder(const Model& m, int threads);

  // Evaluates the sequences together and pools each: Mean (every token), Cls (the first),
  // Last → n_embd floats of the last layer's output, raw (not normalised); Rank → the
  // classification head's scores (cls, tanh, cls_out on the first token). Errors, before
  // anything runs: an empty sequence, a token outside the vocabulary, a sequence longer
  // than the position table (bert), Rank without a classification head, Pooling None.
  Status embed(std::span<const std::vector<TokenId>> seqs, Pooling pooling, std::vector<std::vector<float>>& out);

  // Tokens per sequence at most (bert's position table; the training context otherwise).
  int max_tokens() const;
  const Model& model() const { return m_; }

 private:
  Status check(std::span<const std::vector<TokenId>> seqs, Pooling pooling) const;
  // The input rows: token + token type 0 + position embeddings, LayerNorm'd.
  void embed_rows(std::span<const std::vector<TokenId>> seqs);
  void layer(const EncoderLayer& L, std::span<const std::vector<TokenId>> seqs);
  // Y rows = W X rows (+ bias), T rows in micro-batches of the decoder's size.
  void project(const Weight& w, const Weight* bias, const float* x, float* y);
  // Softmax attention of every row over the rows of its own sequence, all heads.
  void attend(std::span<const std::vector<TokenId>> seqs);
  std::vector<float> pool(const std::vector<TokenId>& seq, size_t first, Pooling pooling);

  const Model& m_;
  MatMul mm_;
  kernels::RopeParams rope_;
  int T_ = 0;  // rows of the current batch
  // [T][width] buffers, grown to the largest batch: x_ the running hidden state.
  std::vector<float> x_, y_, q_, k_, v_, att_, up_, gate_;
  std::vector<float> kt_;       // K transposed, [n_embd][T], for attend_rows
  std::vector<float> scratch_;  // attend_rows' per-thread scratch
};

}  // namespace hearth::model
