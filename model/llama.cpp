#include "model/llama.h"

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/ops.h"
#include "kernels/repack.h"
#include "kernels/threads.h"
#include "model/encoder.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace hearth::model {
namespace {

// Tells the kernel that the mapped pages of a repacked matrix are not needed: the packed
// copy replaces them in the resident set (they are read back from the file if ever
// touched again, e.g. a tied token_embd row).
void release_pages(const uint8_t* p, size_t len) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page, e = (reinterpret_cast<uintptr_t>(p) + len) / page * page;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  auto f = gguf::GgufFile::open(path);
  if (!f) return f.error();
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(f.value());
  auto hp = read_hparams(m->file_);
  if (!hp) return hp.error();
  m->hp_ = hp.value();
  auto vocab = Vocab::from_gguf(m->file_);
  if (!vocab) return vocab.error();
  m->vocab_ = std::move(vocab.value());
  if (m->hp_.family == Family::Encoder) {
    if (Status s = bind_encoder(*m); !s) return s.error();
    m->repack_weights();
    return m;
  }
  const HParams& h = m->hp_;
  const gguf::GgufFile& file = m->file_;
  const int64_t E = h.n_embd, V = h.n_vocab, F = h.n_ff, Dq = int64_t{h.n_head} * h.head_dim,
                Dkv = int64_t{h.n_head_kv} * h.head_dim;
  for (Status s : {bind(file, "token_embd.weight", {E, V}, m->tok_embd, false, true), bind(file, "output_norm.weight", {E}, m->output_norm)})
    if (!s) return s.error();
  if (h.tied_embeddings) {
    m->output = m->tok_embd;
    if (!kernels::kernel_traits(m->output.info->type))
      return Error{file.name() + ": tied token_embd.weight of type " + std::string(gguf::type_info(m->output.info->type).name) +
                   " has no matmul kernel yet"};
  } else if (Status s = bind(file, "output.weight", {E, V}, m->output); !s) {
    return s.error();
  }
  m->layers.resize(h.n_layer);
  for (uint32_t l = 0; l < h.n_layer; ++l) {
    LayerWeights& L = m->layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    const bool qwen2 = h.arch == "qwen2", qwen3 = h.arch == "qwen3";
    for (Status s : {bind(file, p + "attn_norm.weight", {E}, L.attn_norm), bind(file, p + "attn_q.weight", {E, Dq}, L.wq),
                     bind(file, p + "attn_k.weight", {E, Dkv}, L.wk), bind(file, p + "attn_v.weight", {E, Dkv}, L.wv),
                     bind(file, p + "attn_output.weight", {Dq, E}, L.wo), bind(file, p + "ffn_norm.weight", {E}, L.ffn_norm),
                     bind(file, p + "ffn_gate.weight", {E, F}, L.w_gate), bind(file, p + "ffn_up.weight", {E, F}, L.w_up),
                     bind(file, p + "ffn_down.weight", {F, E}, L.w_down),
                     bind(file, p + "attn_q.bias", {Dq}, L.bq, !qwen2), bind(file, p + "attn_k.bias", {Dkv}, L.bk, !qwen2),
                     bind(file, p + "attn_v.bias", {Dkv}, L.bv, !qwen2),
                     bind(file, p + "attn_q_norm.weight", {h.head_dim}, L.q_norm, !qwen3),
                     bind(file, p + "attn_k_norm.weight", {h.head_dim}, L.k_norm, !qwen3)})
      if (!s) return s.error();
    if (Status s = need_f32(file, {&L.attn_norm, &L.ffn_norm, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm}); !s) return s.error();
  }
  if (m->output_norm.info->type != gguf::GgmlType::F32) return Error{file.name() + ": tensor 'output_norm.weight' must be f32"};
  if (Status s = bind(file, "rope_freqs.weight", {h.rope_dim / 2}, m->rope_freqs, true); !s) return s.error();
  if (m->rope_freqs.info && m->rope_freqs.info->type != gguf::GgmlType::F32)
    return Error{file.name() + ": tensor 'rope_freqs.weight' must be f32"};
  m->repack_weights();
  return m;
}

namespace {
template <class M>
auto matrices_of(M& m) {
  std::vector<decltype(&m.output)> ws;
  auto add = [&](auto* w) {
    if (w->info) ws.push_back(w);
  };
  add(&m.output);
  for (auto& L : m.layers)
    for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(w);
  for (auto& L : m.enc_layers)
    for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(w);
  add(&m.cls);
  add(&m.cls_out);
  return ws;
}
}  // namespace

std::vector<const Weight*> Model::matrices() const { return matrices_of(*this); }
std::vector<Weight*> Model::matrices() { return matrices_of(*this); }

void Model::repack_weights() {
  for (Weight* w : matrices()) {
    const kernels::RepackedTraits* r = kernels::repacked_traits(w->info->type, active_isa());
    if (!r || w->rows() % kernels::kRepackRows != 0) continue;
    packed_.emplace_back(new uint8_t[r->bytes(w->rows(), w->cols())]);
    r->repack(w->data, w->row_bytes, w->rows(), w->cols(), packed_.back().get());
    w->packed = packed_.back().get();
    w->repacked = r;
    release_pages(w->data, static_cast<size_t>(w->rows()) * w->row_bytes);
  }
}

std::string Context::unsupported(const Model& m, KvType kv) {
  if (kv == KvType::Q8_0 && m.hparams().head_dim % 32 != 0)
    return "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is " + std::to_string(m.hparams().head_dim);
  return {};
}

size_t Context::kv_bytes(const HParams& h, int n_ctx, int slots, KvType kv) {
  const int64_t nkv = static_cast<int64_t>(h.n_head_kv) * h.head_dim;
  const size_t row = kv == KvType::Q8_0 ? kernels::activation_bytes(gguf::GgmlType::Q8_0, nkv)
                                        : static_cast<size_t>(nkv) * (kv == KvType::F16 ? 2 : 4);
  return 2 * row * static_cast<size_t>(n_ctx) * h.n_layer * static_cast<size_t>(slots);
}

std::vector<float> Context::key(int seq, int l, int pos) const {
  const HParams& h = m_.hparams();
  const int64_t nkv = static_cast<int64_t>(h.n_head_kv) * h.head_dim;
  std::vector<float> k(static_cast<size_t>(nkv));
  const size_t at = lane(seq, l) * nkv * n_ctx_ + pos;  // K transposed: value i at at + i * n_ctx
  if (kv_type_ == KvType::Q8_0) {
    HEARTH_CHECK(quant::dequantize(gguf::GgmlType::Q8_0, &k_q8_[(lane(seq, l) * n_ctx_ + pos) * q8_row_bytes_], k.data(), nkv).ok());
  } else if (kv_type_ == KvType::F16) {
    for (int64_t i = 0; i < nkv; ++i) k[i] = quant::fp16_to_fp32(k_half_[at + static_cast<size_t>(i) * n_ctx_]);
  } else {
    for (int64_t i = 0; i < nkv; ++i) k[i] = k_cache_[at + static_cast<size_t>(i) * n_ctx_];
  }
  return k;
}

Status Context::shift(int seq, int keep, int discard) {
  const int n_past = length(seq);
  if (keep < 0 || discard <= 0 || keep + discard > n_past)
    return Error{"cannot shift the context: keeping " + std::to_string(keep) + " and discarding " + std::to_string(discard) +
                 " of " + std::to_string(n_past) + " positions"};
  const HParams& h = m_.hparams();
  const int64_t hd = h.head_dim, nkv = static_cast<int64_t>(h.n_head_kv) * hd;
  const int n_rot = static_cast<int>(h.rope_dim);
  // The rotation by -discard positions, without YaRN's magnitude (the keys carry it once).
  kernels::RopeParams back = rope_;
  if (back.ext_factor != 0.f) back.attn_factor = 1.0f / (1.0f + 0.1f * std::log(1.0f / back.freq_scale));
  std::vector<float> cs(static_cast<size_t>(n_rot)), k(static_cast<size_t>(nkv));
  kernels::rope_cache(back, -discard, cs.data());
  const int first = keep + discard;
  for (uint32_t l = 0; l < h.n_layer; ++l) {
    const size_t ln = lane(seq, static_cast<int>(l));
    for (int p = first; p < n_past; ++p) {
      k = key(seq, static_cast<int>(l), p);
      for (uint32_t hh = 0; hh < h.n_head_kv; ++hh) kernels::rope_apply(&k[hh * hd], cs.data(), n_rot, h.neox_rope);
      const int to = p - discard;
      const size_t at = ln * nkv * n_ctx_ + to;  // K transposed
      if (kv_type_ == KvType::Q8_0) {
        const size_t row = (ln * n_ctx_ + to) * q8_row_bytes_, from = row + static_cast<size_t>(discard) * q8_row_bytes_;
        kernels::quantize_activations(gguf::GgmlType::Q8_0, k.data(), nkv, &k_q8_[row]);
        std::memcpy(&v_q8_[row], &v_q8_[from], q8_row_bytes_);
      } else if (kv_type_ == KvType::F16) {
        for (int64_t i = 0; i < nkv; ++i) k_half_[at + static_cast<size_t>(i) * n_ctx_] = quant::fp32_to_fp16(k[i]);
      } else {
        for (int64_t i = 0; i < nkv; ++i) k_cache_[at + static_cast<size_t>(i) * n_ctx_] = k[i];
      }
    }
    // V (rows by position for F32/F16): the later positions' rows move down as one block.
    if (kv_type_ != KvType::Q8_0) {
      const size_t to = (ln * n_ctx_ + keep) * nkv, from = (ln * n_ctx_ + first) * nkv,
                   count = static_cast<size_t>(n_past - first) * nkv;
      if (kv_type_ == KvType::F16) std::memmove(&v_half_[to], &v_half_[from], count * sizeof(uint16_t));
      else std::memmove(&v_cache_[to], &v_cache_[from], count * sizeof(float));
    }
  }
  length_[static_cast<size_t>(seq)] -= discard;
  return {};
}

// Floats of attention scratch per thread: attend_rows' rows of scores and of q (the Q8_0
// path needs one row of each).
size_t Context::scratch_per_thread() const { return kernels::attend_scratch(n_ctx_, m_.hparams().head_dim); }

Context::Context(const Model& m, int n_ctx, int threads, KvType kv_type, int slots)
    : m_(m), n_ctx_(n_ctx), threads_(std::max(1, threads)), length_(static_cast<size_t>(std::max(1, slots)), 0), kv_type_(kv_type),
      mm_(threads) {
  const HParams& h = m.hparams();
  const size_t kv = static_cast<size_t>(h.n_head_kv) * h.head_dim, q = static_cast<size_t>(h.n_head) * h.head_dim;
  const size_t lanes = static_cast<size_t>(h.n_layer) * length_.size(), cache = lanes * n_ctx * kv;
  HEARTH_CHECK(unsupported(m, kv_type).empty());
  if (kv_type == KvType::Q8_0) {
    q8_row_bytes_ = kernels::activation_bytes(gguf::GgmlType::Q8_0, static_cast<int64_t>(kv));
    k_q8_.assign(lanes * n_ctx * q8_row_bytes_, 0);
    v_q8_.assign(lanes * n_ctx * q8_row_bytes_, 0);
  } else if (kv_type == KvType::F16) {
    k_half_.assign(cache, 0);
    v_half_.assign(cache, 0);
  } else {
    k_cache_.assign(cache, 0.f);
    v_cache_.assign(cache, 0.f);
  }
  const size_t U = kUbatch;
  rope_.n_rot = static_cast<int>(h.rope_dim);
  rope_.freq_base = h.rope_freq_base;
  rope_.freq_scale = h.rope_freq_scale;
  rope_.ext_factor = h.rope_scaling == RopeScaling::Yarn ? 1.f : 0.f;
  rope_.n_ctx_orig = static_cast<int>(h.rope_orig_ctx);
  rope_.beta_fast = h.yarn_beta_fast;
  rope_.beta_slow = h.yarn_beta_slow;
  rope_.freq_factors = m.rope_freqs.info ? f32(m.rope_freqs) : nullptr;
  rope_cs_.resize(U * h.rope_dim);
  x_.resize(U * h.n_embd);
  xn_.resize(U * h.n_embd);
  q_.resize(U * q);
  k_.resize(U * kv);
  v_.resize(U * kv);
  att_.resize(U * q);
  attn_out_.resize(U * h.n_embd);
  gate_.resize(U * h.n_ff);
  up_.resize(U * h.n_ff);
  ffn_out_.resize(U * h.n_embd);
  scores_.resize(static_cast<size_t>(threads_) * scratch_per_thread());
  logits_.resize(h.n_vocab);
}

Status Context::eval(TokenId token) { return eval(std::span<const TokenId>(&token, 1)); }

Status Context::check(std::span<const BatchRow> rows) const {
  const HParams& h = m_.hparams();
  std::vector<int> next(length_);
  for (const BatchRow& r : rows) {
    if (r.seq < 0 || r.seq >= slots())
      return Error{"sequence " + std::to_string(r.seq) + " is not one of the cache's " + std::to_string(slots()) + " slots"};
    if (r.token < 0 || static_cast<uint32_t>(r.token) >= h.n_vocab)
      return Error{"token id " + std::to_string(r.token) + " is outside the vocabulary of " + std::to_string(h.n_vocab)};
    int& n = next[static_cast<size_t>(r.seq)];
    if (n >= n_ctx_)
      return Error{"the context is full (" + std::to_string(n_ctx_) + " tokens); start a new one or use a larger context"};
    if (r.pos != n)
      return Error{"sequence " + std::to_string(r.seq) + ": position " + std::to_string(r.pos) + " given where " +
                   std::to_string(n) + " is next"};
    ++n;
  }
  return {};
}

void Context::run(std::span<const BatchRow> rows, const std::function<void(size_t, int, const float*)>& each) {
  const size_t V = m_.hparams().n_vocab;
  for (size_t i = 0; i < rows.size(); i += kUbatch) {
    const int B = static_cast<int>(std::min<size_t>(kUbatch, rows.size() - i));
    int wanted = 0;
    for (int j = 0; j < B; ++j) wanted += rows[i + j].logits;
    if (out_.size() < static_cast<size_t>(wanted) * V) out_.resize(static_cast<size_t>(wanted) * V);
    forward(rows.data() + i, B, out_.data());
    if (wanted) each(i, wanted, out_.data());
  }
}

Status Context::decode(std::span<const BatchRow> rows, std::vector<float>* out, std::vector<float>* embd) {
  if (Status s = check(rows); !s) return s;
  if (embd) embd->clear();
  embd_out_ = embd;
  const size_t V = m_.hparams().n_vocab;
  size_t n = 0;
  for (const BatchRow& r : rows) n += r.logits;
  out->resize(n * V);
  size_t done = 0;
  run(rows, [&](size_t, int wanted, const float* logits) {
    std::copy(logits, logits + static_cast<size_t>(wanted) * V, out->begin() + static_cast<std::ptrdiff_t>(done * V));
    done += static_cast<size_t>(wanted);
  });
  embd_out_ = nullptr;
  return {};
}

Status Context::eval(std::span<const TokenId> tokens, const std::function<void(size_t, const float*)>& each) {
  if (tokens.size() > static_cast<size_t>(n_ctx_ - n_past()))
    return Error{n_past() >= n_ctx_ ? "the context is full (" + std::to_string(n_ctx_) + " tokens); start a new one or use a larger context"
                                    : std::to_string(tokens.size()) + " tokens do not fit in the context's " +
                                          std::to_string(n_ctx_ - n_past()) + " free positions"};
  // Without `each`, only the last token needs logits: the other micro-batches skip the
  // output matrix (for a 512-token prompt, 15 of 16 passes over it).
  std::vector<BatchRow> rows(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) rows[i] = {tokens[i], n_past() + static_cast<int>(i), 0, each || i + 1 == tokens.size()};
  if (Status s = check(rows); !s) return s;
  const size_t V = m_.hparams().n_vocab;
  run(rows, [&](size_t first, int wanted, const float* logits) {
    if (each)
      for (int j = 0; j < wanted; ++j) each(first + static_cast<size_t>(j), logits + static_cast<size_t>(j) * V);
    if (first + static_cast<size_t>(wanted) >= rows.size() || !each)
      std::copy(logits + static_cast<size_t>(wanted - 1) * V, logits + static_cast<size_t>(wanted) * V, logits_.begin());
  });
  return {};
}

// Causal attention for the B rows of the micro-batch (already in the cache), each over
// its own sequence's positions 0 … its own. The query rows of a KV head (its query heads
// for each token, token by token) go to attend_rows kAttendRows at a time within a run of
// consecutive rows of one sequence, so that each K and V vector loaded serves several
// rows; the tasks go to the threads as they come free.
void Context::attention(int l, const BatchRow* rows, int B) {
  if (kv_type_ == KvType::Q8_0) return attention_q8_0(l, rows, B);
  const HParams& h = m_.hparams();
  const bool half = kv_type_ == KvType::F16;
  const int64_t hd = h.head_dim, nkv = static_cast<int64_t>(h.n_head_kv) * hd, nq = static_cast<int64_t>(h.n_head) * hd;
  const int64_t G = h.n_gqa();
  // Tasks of one KV head: up to kAttendRows query rows, all of one sequence.
  struct Task {
    int64_t r0;  // first query row (token j = r / G, head g = r % G)
    int R;
  };
  std::vector<Task> tasks;
  for (int j0 = 0; j0 < B;) {
    int j1 = j0 + 1;
    while (j1 < B && rows[j1].seq == rows[j0].seq) ++j1;
    for (int64_t r = j0 * G; r < j1 * G; r += kernels::kAttendRows)
      tasks.push_back({r, static_cast<int>(std::min<int64_t>(kernels::kAttendRows, j1 * G - r))});
    j0 = j1;
  }
  const int64_t per_head = static_cast<int64_t>(tasks.size());
  const size_t esize = half ? sizeof(uint16_t) : sizeof(float);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t per_thread = scratch_per_thread();
  kernels::parallel_chunks(int64_t{h.n_head_kv} * per_head, threads_, 8, [&](int64_t b, int64_t e) {
    float* scratch = &scores_[static_cast<size_t>(omp_get_thread_num()) * per_thread];
    for (int64_t task = b; task < e; ++task) {
      const int64_t kvh = task / per_head;
      const Task& t = tasks[static_cast<size_t>(task % per_head)];
      const size_t layer = lane(rows[t.r0 / G].seq, l) * n_ctx_ * nkv;
      const void* kc = half ? static_cast<const void*>(&k_half_[layer]) : &k_cache_[layer];
      const void* vc = half ? static_cast<const void*>(&v_half_[layer]) : &v_cache_[layer];
      kernels::KvHead kv;
      kv.kt = static_cast<const uint8_t*>(kc) + kvh * hd * n_ctx_ * esize;
      kv.k_stride = n_ctx_;
      kv.v = static_cast<const uint8_t*>(vc) + kvh * hd * esize;
      kv.v_stride = nkv;
      kv.half = half;
      kv.round = !flash_attn_;
      kv.hd = hd;
      const float* q[kernels::kAttendRows];
      float* out[kernels::kAttendRows];
      int n[kernels::kAttendRows];
      for (int r = 0; r < t.R; ++r) {
        const int64_t j = (t.r0 + r) / G, hh = kvh * G + (t.r0 + r) % G;  // token, query head
        q[r] = &q_[j * nq + hh * hd];
        out[r] = &att_[j * nq + hh * hd];
        n[r] = rows[j].pos + 1;
      }
      kernels::attend_rows(kv, q, n, t.R, scale, 0.f, out, scratch);
    }
  });
}

// The same over a Q8_0 cache: q quantized to Q8_0 for its products with the keys (the
// Q8_0 dot product), the weighted sum of the value rows dequantized.
void Context::attention_q8_0(int l, const BatchRow* rows, int B) {
  const HParams& h = m_.hparams();
  const int64_t hd = h.head_dim, nq = static_cast<int64_t>(h.n_head) * hd;
  const size_t head_bytes = kernels::activation_bytes(gguf::GgmlType::Q8_0, hd);
  const kernels::DotFn dot = kernels::dot_fn(gguf::GgmlType::Q8_0, active_isa());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t per_thread = scratch_per_thread();
  kernels::parallel_chunks(int64_t{B} * h.n_head, threads_, 8, [&](int64_t b, int64_t e) {
    float* scores = &scores_[static_cast<size_t>(omp_get_thread_num()) * per_thread];
    auto* q8 = reinterpret_cast<uint8_t*>(scores + n_ctx_);
    for (int64_t task = b; task < e; ++task) {
      const int64_t j = task / h.n_head, hh = task % h.n_head, kvh = hh / h.n_gqa();
      const int n = rows[j].pos + 1;
      const size_t layer = lane(rows[j].seq, l) * n_ctx_ * q8_row_bytes_;
      kernels::quantize_activations(gguf::GgmlType::Q8_0, &q_[j * nq + hh * hd], hd, q8);
      const uint8_t* k = &k_q8_[layer + kvh * head_bytes];
      for (int t = 0; t < n; ++t) scores[t] = dot(hd, k + static_cast<size_t>(t) * q8_row_bytes_, q8) * scale;
      kernels::softmax(scores, n, 1.0f, 0.f, nullptr);
      kernels::attn_values_q8_0(scores, &v_q8_[layer + kvh * head_bytes], q8_row_bytes_, hd, n, &att_[j * nq + hh * hd]);
    }
  });
}

void Context::forward(const BatchRow* rows, int B, float* out) {
  const HParams& h = m_.hparams();
  const int64_t E = h.n_embd, hd = h.head_dim, nkv = static_cast<int64_t>(h.n_head_kv) * hd,
                nq = static_cast<int64_t>(h.n_head) * hd, F = h.n_ff;
  const float eps = h.rms_eps;

  // Token embeddings: rows of token_embd, dequantized.
  const Weight& te = m_.tok_embd;
  for (int j = 0; j < B; ++j)
    HEARTH_CHECK(quant::dequantize(te.info->type, te.data + static_cast<size_t>(rows[j].token) * te.row_bytes, &x_[j * E], E).ok());

  // The rotation angles of each token's position, shared by every layer and head.
  const int n_rot = static_cast<int>(h.rope_dim);
  for (int j = 0; j < B; ++j) kernels::rope_cache(rope_, rows[j].pos, &rope_cs_[static_cast<size_t>(j) * n_rot]);

  for (uint32_t l = 0; l < h.n_layer; ++l) {
    const LayerWeights& L = m_.layers[l];
    // Attention: normalise, project to q, k, v (with bias for qwen2).
    for (int j = 0; j < B; ++j) kernels::rms_norm(&x_[j * E], f32(L.attn_norm), &xn_[j * E], E, eps);
    const MatMul::Job qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
    mm_(qkv, xn_.data(), B);
    for (int j = 0; j < B; ++j) {
      float *q = &q_[j * nq], *k = &k_[j * nkv], *v = &v_[j * nkv];
      if (L.bq.info) {
        kernels::add(q, f32(L.bq), q, nq);
        kernels::add(k, f32(L.bk), k, nkv);
        kernels::add(v, f32(L.bv), v, nkv);
      }
      // qwen3: RMS-normalise each head of q and k.
      if (L.q_norm.info) {
        for (uint32_t hh = 0; hh < h.n_head; ++hh) kernels::rms_norm(&q[hh * hd], f32(L.q_norm), &q[hh * hd], hd, eps);
        for (uint32_t hh = 0; hh < h.n_head_kv; ++hh) kernels::rms_norm(&k[hh * hd], f32(L.k_norm), &k[hh * hd], hd, eps);
      }
      // Rotary position embedding on every head of q and k.
      const int pos = rows[j].pos;
      const float* cs = &rope_cs_[static_cast<size_t>(j) * n_rot];
      for (uint32_t hh = 0; hh < h.n_head; ++hh) kernels::rope_apply(&q[hh * hd], cs, n_rot, h.neox_rope);
      for (uint32_t hh = 0; hh < h.n_head_kv; ++hh) kernels::rope_apply(&k[hh * hd], cs, n_rot, h.neox_rope);
      // Append k and v to the cache: K transposed (value i of every position contiguous),
      // V by position.
      const size_t ln = lane(rows[j].seq, static_cast<int>(l));
      const size_t kt = ln * n_ctx_ * nkv + pos, at = (ln * n_ctx_ + pos) * nkv;
      if (kv_type_ == KvType::Q8_0) {
        const size_t row = (ln * n_ctx_ + pos) * q8_row_bytes_;
        kernels::quantize_activations(gguf::GgmlType::Q8_0, k, nkv, &k_q8_[row]);
        kernels::quantize_activations(gguf::GgmlType::Q8_0, v, nkv, &v_q8_[row]);
      } else if (kv_type_ == KvType::F16) {
        for (int64_t i = 0; i < nkv; ++i) k_half_[kt + static_cast<size_t>(i) * n_ctx_] = quant::fp32_to_fp16(k[i]);
        for (int64_t i = 0; i < nkv; ++i) v_half_[at + i] = quant::fp32_to_fp16(v[i]);
      } else {
        for (int64_t i = 0; i < nkv; ++i) k_cache_[kt + static_cast<size_t>(i) * n_ctx_] = k[i];
        std::memcpy(&v_cache_[at], v, nkv * sizeof(float));
      }
    }
    attention(static_cast<int>(l), rows, B);
    mm_.one(L.wo, att_.data(), attn_out_.data(), B);
    kernels::add(x_.data(), attn_out_.data(), x_.data(), B * E);
    // Feed-forward: SwiGLU.
    for (int j = 0; j < B; ++j) kernels::rms_norm(&x_[j * E], f32(L.ffn_norm), &xn_[j * E], E, eps);
    const MatMul::Job gate_up[] = {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}};
    mm_(gate_up, xn_.data(), B);
    kernels::swiglu(gate_.data(), up_.data(), B * F);
    mm_.one(L.w_down, gate_.data(), ffn_out_.data(), B);
    kernels::add(x_.data(), ffn_out_.data(), x_.data(), B * E);
  }
  for (int j = 0; j < B; ++j) {
    int& n = length_[static_cast<size_t>(rows[j].seq)];
    n = std::max(n, rows[j].pos + 1);
  }
  // Embeddings: the final-norm hidden states of the rows that want them, appended.
  if (embd_out_)
    for (int j = 0; j < B; ++j)
      if (rows[j].embd) {
        const size_t at = embd_out_->size();
        embd_out_->resize(at + static_cast<size_t>(E));
        kernels::rms_norm(&x_[j * E], f32(m_.output_norm), embd_out_->data() + at, E, eps);
      }
  // Final norm and the output projection of the rows that want logits, gathered.
  int wanted = 0;
  for (int j = 0; j < B; ++j)
    if (rows[j].logits) kernels::rms_norm(&x_[j * E], f32(m_.output_norm), &xn_[static_cast<size_t>(wanted++) * E], E, eps);
  if (wanted) mm_.one(m_.output, xn_.data(), out, wanted);
}

}  // namespace hearth::model
