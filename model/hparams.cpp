#include "model/hparams.h"

namespace hearth::model {
namespace {

// A required unsigned key of the architecture, with the file named in the error.
Result<uint32_t> need(const gguf::GgufFile& f, const std::string& key) {
  auto v = f.metadata.get_uint(key);
  if (!v) return Error{f.name() + ": " + v.message()};
  if (v.value() == 0 || v.value() > 0xffffffffu)
    return Error{f.name() + ": key '" + key + "' is " + std::to_string(v.value()) + ", out of range"};
  return static_cast<uint32_t>(v.value());
}

Result<float> optional_float(const gguf::GgufFile& f, const std::string& key, float fallback) {
  if (!f.metadata.contains(key)) return fallback;
  auto v = f.metadata.get<float>(key);
  if (!v) return Error{f.name() + ": " + v.message()};
  return v.value();
}

// What differs between the architectures before any tensor is read: one row each.
struct ArchRow {
  const char* name;
  Family family;
  bool neox_rope;       // rotate dim i with i + d/2 (else neighbours); unused without RoPE
  const char* eps_key;  // the norm's epsilon, under <arch>.
};
constexpr ArchRow kArchs[] = {
    {"llama", Family::Decoder, false, "attention.layer_norm_rms_epsilon"},
    {"qwen2", Family::Decoder, true, "attention.layer_norm_rms_epsilon"},
    {"qwen3", Family::Decoder, true, "attention.layer_norm_rms_epsilon"},
    {"bert", Family::Encoder, false, "attention.layer_norm_epsilon"},
    {"nomic-bert", Family::Encoder, true, "attention.layer_norm_epsilon"},
};

}  // namespace

Result<HParams> read_hparams(const gguf::GgufFile& f) {
  HParams h;
  auto arch = f.metadata.get_string("general.architecture");
  if (!arch) return Error{f.name() + ": " + arch.message()};
  h.arch = arch.value();
  const ArchRow* row = nullptr;
  std::string names;
  for (const ArchRow& r : kArchs) {
    if (r.name == h.arch) row = &r;
    names += (names.empty() ? "" : ", ") + std::string(r.name);
  }
  if (!row) return Error{f.name() + ": architecture '" + h.arch + "' is not supported (supported: " + names + ")"};
  h.family = row->family;
  const std::string a = h.arch + ".";
  for (auto [field, key] : {std::pair{&h.n_ctx_train, "context_length"}, {&h.n_embd, "embedding_length"},
                            {&h.n_layer, "block_count"}, {&h.n_ff, "feed_forward_length"},
                            {&h.n_head, "attention.head_count"}}) {
    auto v = need(f, a + key);
    if (!v) return v.error();
    *field = v.value();
  }
  h.n_head_kv = h.n_head;
  if (f.metadata.contains(a + "attention.head_count_kv")) {
    auto v = need(f, a + "attention.head_count_kv");
    if (!v) return v.error();
    h.n_head_kv = v.value();
  }
  if (h.n_head % h.n_head_kv != 0)
    return Error{f.name() + ": head_count " + std::to_string(h.n_head) + " is not a multiple of head_count_kv " +
                 std::to_string(h.n_head_kv)};
  h.head_dim = h.n_embd / h.n_head;
  if (f.metadata.contains(a + "attention.key_length")) {
    auto v = need(f, a + "attention.key_length");
    if (!v) return v.error();
    h.head_dim = v.value();
  } else if (h.n_embd % h.n_head != 0) {
    return Error{f.name() + ": embedding_length " + std::to_string(h.n_embd) + " is not a multiple of head_count " +
                 std::to_string(h.n_head) + " and attention.key_length is absent"};
  }
  h.rope_dim = h.head_dim;
  if (f.metadata.contains(a + "rope.dimension_count")) {
    auto v = need(f, a + "rope.dimension_count");
    if (!v) return v.error();
    h.rope_dim = v.value();
  }
  if (h.rope_dim > h.head_dim || h.rope_dim % 2)
    return Error{f.name() + ": rope.dimension_count " + std::to_string(h.rope_dim) + " must be even and at most the head size " +
                 std::to_string(h.head_dim)};
  auto base = optional_float(f, a + "rope.freq_base", 10000.f);
  auto eps = optional_float(f, a + row->eps_key, -1.f);
  if (!base) return base.error();
  if (!eps) return eps.error();
  if (eps.value() <= 0) return Error{f.name() + ": key '" + a + row->eps_key + "' is missing or not positive"};
  h.rope_freq_base = base.value();
  (h.family == Family::Encoder ? h.norm_eps : h.rms_eps) = eps.value();
  if (f.metadata.contains(a + "rope.scaling.type")) {
    auto t = f.metadata.get_string(a + "rope.scaling.type");
    if (!t) return Error{f.name() + ": " + t.message()};
    if (t.value() == "linear") h.rope_scaling = RopeScaling::Linear;
    else if (t.value() == "yarn") h.rope_scaling = RopeScaling::Yarn;
    else if (t.value() != "none") return Error{f.name() + ": unknown rope.scaling.type '" + t.value() + "'"};
  }
  h.rope_orig_ctx = h.n_ctx_train;
  if (h.rope_scaling != RopeScaling::None) {
    auto factor = optional_float(f, a + "rope.scaling.factor", 1.f);
    if (!factor) return factor.error();
    if (factor.value() <= 0) return Error{f.name() + ": rope.scaling.factor must be positive"};
    h.rope_freq_scale = 1.f / factor.value();
    auto orig = f.metadata.get_uint(a + "rope.scaling.original_context_length");
    if (orig.ok() && orig.value() > 0) h.rope_orig_ctx = static_cast<uint32_t>(orig.value());
    auto fast = optional_float(f, a + "rope.scaling.yarn_beta_fast", 32.f), slow = optional_float(f, a + "rope.scaling.yarn_beta_slow", 1.f);
    if (!fast) return fast.error();
    if (!slow) return slow.error();
    h.yarn_beta_fast = fast.value();
    h.yarn_beta_slow = slow.value();
  }
  h.neox_rope = row->neox_rope;
  if (h.family == Family::Encoder) {
    auto types = f.metadata.get_uint("tokenizer.ggml.token_type_count");
    h.n_token_types = types.ok() && types.value() <= 16 ? static_cast<uint32_t>(types.value()) : 0;
  }
  if (f.metadata.contains(a + "vocab_size")) {
    auto v = need(f, a + "vocab_size");
    if (!v) return v.error();
    h.n_vocab = v.value();
  } else {
    auto toks = f.metadata.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
    if (!toks) return Error{f.name() + ": no " + a + "vocab_size and " + toks.message()};
    h.n_vocab = static_cast<uint32_t>(toks.value()->count);
  }
  h.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  if (f.metadata.contains(a + "pooling_type")) {
    auto v = need(f, a + "pooling_type");
    if (!v) return v.error();
    if (v.value() > 4) return Error{f.name() + ": " + a + "pooling_type " + std::to_string(v.value()) + " is not 0-4"};
    h.pooling = static_cast<Pooling>(v.value());
  }
  return h;
}

}  // namespace hearth::model
