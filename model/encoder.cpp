#include "model/encoder.h"

#include <algorithm>
#include <cmath>

#include <omp.h>

#include "kernels/threads.h"
#include "quant/quant.h"

namespace hearth::model {

Status bind_encoder(Model& m) {
  const HParams& h = m.hparams();
  const gguf::GgufFile& file = m.file();
  const int64_t E = h.n_embd, V = h.n_vocab, F = h.n_ff;
  const bool nomic = h.arch == "nomic-bert";
  if (h.n_head_kv != h.n_head || int64_t{h.n_head} * h.head_dim != E)
    return Error{file.name() + ": an encoder needs n_head * head_dim == n_embd and no grouped KV heads"};
  const int64_t types = std::max<int64_t>(1, h.n_token_types);
  for (Status s : {bind(file, "token_embd.weight", {E, V}, m.tok_embd, false, true),
                   bind(file, "token_types.weight", {E, types}, m.token_types, true, true),
                   bind(file, "position_embd.weight", {E, int64_t{h.n_ctx_train}}, m.position_embd, nomic, true),
                   bind(file, "token_embd_norm.weight", {E}, m.embd_norm), bind(file, "token_embd_norm.bias", {E}, m.embd_norm_b),
                   bind(file, "cls.weight", {E, E}, m.cls, true), bind(file, "cls.bias", {E}, m.cls_b, true)})
    if (!s) return s;
  // The head's output: as many scores as the file's cls.output has rows.
  if (const gguf::TensorInfo* t = file.find_tensor("cls.output.weight")) {
    const int64_t labels = t->n_dims == 2 ? static_cast<int64_t>(t->ne[1]) : 0;
    for (Status s : {bind(file, "cls.output.weight", {E, labels}, m.cls_out), bind(file, "cls.output.bias", {labels}, m.cls_out_b, true)})
      if (!s) return s;
  }
  if (Status s = need_f32(file, {&m.embd_norm, &m.embd_norm_b, &m.cls_b, &m.cls_out_b}); !s) return s;
  m.enc_layers.resize(h.n_layer);
  for (uint32_t l = 0; l < h.n_layer; ++l) {
    EncoderLayer& L = m.enc_layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    // bert: q, k, v and every bias; nomic-bert: fused qkv, a gate, no biases.
    for (Status s : {bind(file, p + "attn_q.weight", {E, E}, L.wq, nomic), bind(file, p + "attn_q.bias", {E}, L.bq, true),
                     bind(file, p + "attn_k.weight", {E, E}, L.wk, nomic), bind(file, p + "attn_k.bias", {E}, L.bk, true),
                     bind(file, p + "attn_v.weight", {E, E}, L.wv, nomic), bind(file, p + "attn_v.bias", {E}, L.bv, true),
                     bind(file, p + "attn_qkv.weight", {E, 3 * E}, L.wqkv, !nomic),
                     bind(file, p + "attn_output.weight", {E, E}, L.wo), bind(file, p + "attn_output.bias", {E}, L.bo, true),
                     bind(file, p + "attn_output_norm.weight", {E}, L.attn_out_norm),
                     bind(file, p + "attn_output_norm.bias", {E}, L.attn_out_norm_b),
                     bind(file, p + "ffn_up.weight", {E, F}, L.w_up), bind(file, p + "ffn_up.bias", {F}, L.b_up, true),
                     bind(file, p + "ffn_gate.weight", {E, F}, L.w_gate, !nomic),
                     bind(file, p + "ffn_down.weight", {F, E}, L.w_down), bind(file, p + "ffn_down.bias", {E}, L.b_down, true),
                     bind(file, p + "layer_output_norm.weight", {E}, L.out_norm),
                     bind(file, p + "layer_output_norm.bias", {E}, L.out_norm_b)})
      if (!s) return s;
    if (Status s = need_f32(file, {&L.bq, &L.bk, &L.bv, &L.bo, &L.attn_out_norm, &L.attn_out_norm_b, &L.b_up, &L.b_down,
                                   &L.out_norm, &L.out_norm_b});
        !s)
      return s;
  }
  return {};
}

Encoder::Encoder(const Model& m, int threads) : m_(m), mm_(threads) {
  const HParams& h = m.hparams();
  rope_.n_rot = static_cast<int>(h.rope_dim);
  rope_.freq_base = h.rope_freq_base;
  rope_.freq_scale = h.rope_freq_scale;
  rope_.n_ctx_orig = static_cast<int>(h.rope_orig_ctx);
}

int Encoder::max_tokens() const { return static_cast<int>(m_.hparams().n_ctx_train); }

Status Encoder::check(std::span<const std::vector<TokenId>> seqs, Pooling pooling) const {
  if (pooling == Pooling::None || pooling == Pooling::Unspecified) return Error{"an encoder's output must be pooled (mean, cls, last or rank)"};
  if (pooling == Pooling::Rank && !m_.cls_out.info && !m_.cls.info)
    return Error{m_.file().name() + ": rank pooling needs a classification head (cls.weight or cls.output.weight)"};
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].empty()) return Error{"input " + std::to_string(i) + " has no tokens"};
    if (seqs[i].size() > static_cast<size_t>(max_tokens()))
      return Error{"input " + std::to_string(i) + " has " + std::to_string(seqs[i].size()) + " tokens, more than the model's " +
                   std::to_string(max_tokens())};
    for (TokenId t : seqs[i])
      if (t < 0 || static_cast<uint32_t>(t) >= m_.hparams().n_vocab)
        return Error{"input " + std::to_string(i) + ": token " + std::to_string(t) + " is outside the vocabulary"};
  }
  return {};
}

void Encoder::embed_rows(std::span<const std::vector<TokenId>> seqs) {
  const int64_t E = m_.hparams().n_embd;
  const Weight& te = m_.tok_embd;
  std::vector<float> row(static_cast<size_t>(E)), type0;
  // Token types are all 0 ("sentence A"), as llama.cpp has them: one row for every token.
  if (m_.token_types.info) {
    type0.resize(static_cast<size_t>(E));
    HEARTH_CHECK(quant::dequantize(m_.token_types.info->type, m_.token_types.data, type0.data(), E).ok());
  }
  size_t t = 0;
  for (const std::vector<TokenId>& s : seqs)
    for (size_t pos = 0; pos < s.size(); ++pos, ++t) {
      float* x = &x_[t * E];
      HEARTH_CHECK(quant::dequantize(te.info->type, te.data + static_cast<size_t>(s[pos]) * te.row_bytes, x, E).ok());
      if (!type0.empty()) kernels::add(x, type0.data(), x, E);
      if (m_.position_embd.info) {
        const Weight& pe = m_.position_embd;
        HEARTH_CHECK(quant::dequantize(pe.info->type, pe.data + pos * pe.row_bytes, row.data(), E).ok());
        kernels::add(row.data(), x, x, E);
      }
      kernels::layer_norm(x, f32(m_.embd_norm), f32(m_.embd_norm_b), x, E, m_.hparams().norm_eps);
    }
}

void Encoder::project(const Weight& w, const Weight* bias, const float* x, float* y) {
  const int64_t n = w.cols(), r = w.rows();
  for (int j = 0; j < T_; j += Context::kUbatch) {
    const int B = std::min(Context::kUbatch, T_ - j);
    mm_.one(w, x + static_cast<size_t>(j) * n, y + static_cast<size_t>(j) * r, B);
  }
  if (bias && bias->info)
    for (int j = 0; j < T_; ++j) kernels::add(y + static_cast<size_t>(j) * r, f32(*bias), y + static_cast<size_t>(j) * r, r);
}

// Every row over its own sequence's rows, per head, through kernels::attend_rows: K
// transposed once for all rows ([n_embd][T]), V read in place; up to kAttendRows
// consecutive rows of one sequence share each K and V vector loaded.
void Encoder::attend(std::span<const std::vector<TokenId>> seqs) {
  const HParams& h = m_.hparams();
  const int64_t E = h.n_embd, hd = h.head_dim, T = T_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  kt_.resize(static_cast<size_t>(E * T));
  kernels::parallel_rows(E, mm_.threads(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t t = 0; t < T; ++t) kt_[static_cast<size_t>(i * T + t)] = k_[static_cast<size_t>(t * E + i)];
  });
  struct Task {
    int first, len;  // the sequence's rows
    int r0, R;       // the query rows of this task
  };
  std::vector<Task> tasks;
  int first = 0, longest = 0;
  for (const std::vector<TokenId>& s : seqs) {
    const int len = static_cast<int>(s.size());
    for (int r = 0; r < len; r += kernels::kAttendRows) tasks.push_back({first, len, first + r, std::min(kernels::kAttendRows, len - r)});
    first += len;
    longest = std::max(longest, len);
  }
  const int64_t per_head = static_cast<int64_t>(tasks.size());
  const size_t per_thread = kernels::attend_scratch(longest, hd);
  scratch_.resize(per_thread * static_cast<size_t>(mm_.threads()));
  kernels::parallel_chunks(int64_t{h.n_head} * per_head, mm_.threads(), 8, [&](int64_t b, int64_t e) {
    float* scratch = &scratch_[static_cast<size_t>(omp_get_thread_num()) * per_thread];
    for (int64_t task = b; task < e; ++task) {
      const int64_t hh = task / per_head;
      const Task& t = tasks[static_cast<size_t>(task % per_head)];
      kernels::KvHead kv;
      kv.kt = &kt_[static_cast<size_t>(hh * hd * T + t.first)];
      kv.k_stride = static_cast<size_t>(T);
      kv.v = &v_[static_cast<size_t>(int64_t{t.first} * E + hh * hd)];
      kv.v_stride = static_cast<size_t>(E);
      kv.hd = hd;
      const float* q[kernels::kAttendRows];
      float* out[kernels::kAttendRows];
      int n[kernels::kAttendRows];
      for (int r = 0; r < t.R; ++r) {
        q[r] = &q_[static_cast<size_t>(int64_t{t.r0 + r} * E + hh * hd)];
        out[r] = &att_[static_cast<size_t>(int64_t{t.r0 + r} * E + hh * hd)];
        n[r] = t.len;
      }
      kernels::attend_rows(kv, q, n, t.R, scale, 0.f, out, scratch);
    }
  });
}

void Encoder::layer(const EncoderLayer& L, std::span<const std::vector<TokenId>> seqs) {
  const HParams& h = m_.hparams();
  const int64_t E = h.n_embd, F = h.n_ff, hd = h.head_dim;
  const float eps = h.norm_eps;
  // Attention: q, k, v (fused in nomic-bert, then rotated by position), every row over its sequence.
  if (L.wqkv.info) {
    project(L.wqkv, nullptr, x_.data(), up_.data());  // [T][3E], q | k | v
    std::vector<float> cs(static_cast<size_t>(rope_.n_rot));
    size_t t = 0;
    for (const std::vector<TokenId>& s : seqs)
      for (size_t pos = 0; pos < s.size(); ++pos, ++t) {
        const float* qkv = &up_[t * 3 * E];
        std::copy(qkv, qkv + E, &q_[t * E]);
        std::copy(qkv + E, qkv + 2 * E, &k_[t * E]);
        std::copy(qkv + 2 * E, qkv + 3 * E, &v_[t * E]);
        kernels::rope_cache(rope_, static_cast<int>(pos), cs.data());
        for (uint32_t hh = 0; hh < h.n_head; ++hh) {
          kernels::rope_apply(&q_[t * E + hh * hd], cs.data(), rope_.n_rot, h.neox_rope);
          kernels::rope_apply(&k_[t * E + hh * hd], cs.data(), rope_.n_rot, h.neox_rope);
        }
      }
  } else {
    project(L.wq, &L.bq, x_.data(), q_.data());
    project(L.wk, &L.bk, x_.data(), k_.data());
    project(L.wv, &L.bv, x_.data(), v_.data());
  }
  attend(seqs);
  // Output projection, the residual, LayerNorm (post-norm).
  project(L.wo, &L.bo, att_.data(), y_.data());
  for (int t = 0; t < T_; ++t) {
    float* x = &x_[static_cast<size_t>(t) * E];
    kernels::add(&y_[static_cast<size_t>(t) * E], x, x, E);
    kernels::layer_norm(x, f32(L.attn_out_norm), f32(L.attn_out_norm_b), x, E, eps);
  }
  // Feed-forward: GELU(up) (bert) or SwiGLU (nomic-bert), down, the residual, LayerNorm.
  project(L.w_up, &L.b_up, x_.data(), up_.data());
  if (L.w_gate.info) {
    project(L.w_gate, nullptr, x_.data(), gate_.data());
    for (int t = 0; t < T_; ++t) kernels::swiglu(&gate_[static_cast<size_t>(t) * F], &up_[static_cast<size_t>(t) * F], F);
    project(L.w_down, &L.b_down, gate_.data(), y_.data());
  } else {
    kernels::gelu_half(up_.data(), int64_t{T_} * F);
    project(L.w_down, &L.b_down, up_.data(), y_.data());
  }
  for (int t = 0; t < T_; ++t) {
    float* x = &x_[static_cast<size_t>(t) * E];
    kernels::add(&y_[static_cast<size_t>(t) * E], x, x, E);
    kernels::layer_norm(x, f32(L.out_norm), f32(L.out_norm_b), x, E, eps);
  }
}

std::vector<float> Encoder::pool(const std::vector<TokenId>& seq, size_t first, Pooling pooling) {
  const int64_t E = m_.hparams().n_embd;
  const float* rows = &x_[first * E];
  std::vector<float> out(static_cast<size_t>(E), 0.f);
  if (pooling == Pooling::Mean) {
    for (size_t t = 0; t < seq.size(); ++t)
      for (int64_t i = 0; i < E; ++i) out[i] += rows[t * E + i];
    for (float& v : out) v /= static_cast<float>(seq.size());
    return out;
  }
  const size_t pick = pooling == Pooling::Last ? seq.size() - 1 : 0;
  std::copy(rows + pick * E, rows + (pick + 1) * E, out.begin());
  if (pooling != Pooling::Rank) return out;
  // The classification head: dense + tanh, then the output projection.
  if (m_.cls.info) {
    std::vector<float> d(static_cast<size_t>(E));
    mm_.one(m_.cls, out.data(), d.data(), 1);
    if (m_.cls_b.info) kernels::add(d.data(), f32(m_.cls_b), d.data(), E);
    for (int64_t i = 0; i < E; ++i) out[i] = std::tanh(d[i]);
  }
  if (!m_.cls_out.info) return out;
  std::vector<float> scores(static_cast<size_t>(m_.cls_out.rows()));
  mm_.one(m_.cls_out, out.data(), scores.data(), 1);
  if (m_.cls_out_b.info) kernels::add(scores.data(), f32(m_.cls_out_b), scores.data(), m_.cls_out.rows());
  return scores;
}

Status Encoder::embed(std::span<const std::vector<TokenId>> seqs, Pooling pooling, std::vector<std::vector<float>>& out) {
  if (Status s = check(seqs, pooling); !s) return s;
  const HParams& h = m_.hparams();
  T_ = 0;
  for (const std::vector<TokenId>& s : seqs) T_ += static_cast<int>(s.size());
  const size_t T = static_cast<size_t>(T_), E = h.n_embd, F = h.n_ff;
  for (std::vector<float>* b : {&x_, &y_, &q_, &k_, &v_, &att_}) b->resize(T * E);
  up_.resize(T * std::max(F, 3 * E));
  gate_.resize(T * F);
  embed_rows(seqs);
  for (const EncoderLayer& L : m_.enc_layers) layer(L, seqs);
  out.clear();
  size_t first = 0;
  for (const std::vector<TokenId>& s : seqs) {
    out.push_back(pool(s, first, pooling));
    first += s.size();
  }
  return {};
}

}  // namespace hearth::model
