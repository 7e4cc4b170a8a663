#include "quant/model_quantizer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <unordered_map>

#include "gguf/writer.h"
#include "quant/quant.h"

namespace hearth::quant {
namespace {

using gguf::GgmlType;

std::string tname(GgmlType t) { return std::string(gguf::type_info(t).name); }

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Layer of "blk.N.*" names, -1 for the rest.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

// llama.cpp's tensor order: tensors outside any layer first, then by layer number,
// each group by name.
bool tensor_order(const std::string& a, const std::string& b) {
  int la = layer_of(a), lb = layer_of(b);
  if (la != lb) return la < lb;
  return a < b;
}

// Dimensions counted as ggml does: trailing dimensions of size 1 do not count.
int effective_dims(const gguf::TensorInfo& t) {
  int n = 1;
  for (int d = 1; d < gguf::kMaxDims; ++d)
    if (t.ne[d] > 1) n = d + 1;
  return n;
}

enum class Category { TokenEmbd, Output, AttnV, AttnK, AttnQ, AttnOutput, AttnQkv, FfnUp, FfnGate, FfnDown, Other };

Category category_of(const std::string& n) {
  if (n == "output.weight") return Category::Output;
  if (n == "token_embd.weight" || n == "per_layer_token_embd.weight") return Category::TokenEmbd;
  if (contains(n, "attn_qkv.weight")) return Category::AttnQkv;
  if (contains(n, "attn_v.weight")) return Category::AttnV;
  if (contains(n, "attn_k.weight")) return Category::AttnK;
  if (contains(n, "attn_q.weight")) return Category::AttnQ;
  if (contains(n, "attn_output.weight")) return Category::AttnOutput;
  if (contains(n, "ffn_up")) return Category::FfnUp;
  if (contains(n, "ffn_gate")) return Category::FfnGate;
  if (contains(n, "ffn_down")) return Category::FfnDown;
  return Category::Other;
}

// Whether llama-quantize touches this tensor at all (norms, 1-D tensors, routers,
// positional embeddings and a few small special tensors keep their type).
bool allows_quantization(const gguf::TensorInfo& t, const QuantizeOptions& opt) {
  if (effective_dims(t) < 2) return false;
  const std::string& n = t.name;
  if (!ends_with(n, "weight")) return false;
  if (contains(n, "_norm.weight")) return false;
  if (opt.leave_output_tensor && n == "output.weight") return false;
  static const char* const kKeep[] = {
      "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight",
      "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
      "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
      "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
      "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight"};
  for (const char* k : kKeep)
    if (contains(n, k)) return false;
  if (n == "position_embd.weight" || n == "token_types.weight") return false;
  return true;
}

// Model facts the mixes depend on.
struct ModelFacts {
  std::string arch;
  int n_layer = 0;
  int n_gqa = 1;
  int n_expert = 0;
  bool is_70b = false;
  bool tied_embeddings = true;  // no output.weight: token_embd doubles as the output
  int n_attention_wv = 0;
};

uint64_t first_uint(const gguf::Metadata& md, const std::string& key, uint64_t fallback) {
  const gguf::Value* v = md.find(key);
  if (!v) return fallback;
  if (v->type() == gguf::ValueType::ARRAY) {  // per-layer arrays: take layer 0
    const gguf::Array& a = v->arr();
    if (a.count == 0) return fallback;
    if (a.elem == gguf::ValueType::U32) return a.at<uint32_t>(0);
    if (a.elem == gguf::ValueType::I32) return static_cast<uint64_t>(std::max(0, a.at<int32_t>(0)));
    return fallback;
  }
  auto r = md.get_uint(key);
  return r.ok() ? r.value() : fallback;
}

Result<ModelFacts> model_facts(const InputModel& in) {
  ModelFacts f;
  const gguf::Metadata& md = in.metadata();
  auto arch = md.get_string("general.architecture");
  if (!arch) return Error{in.name() + ": " + arch.message()};
  f.arch = arch.value();
  f.n_layer = static_cast<int>(first_uint(md, f.arch + ".block_count", 0));
  uint64_t n_head = first_uint(md, f.arch + ".attention.head_count", 0);
  uint64_t n_head_kv = first_uint(md, f.arch + ".attention.head_count_kv", n_head);
  f.n_gqa = n_head_kv > 0 ? static_cast<int>(n_head / n_head_kv) : 1;
  f.n_expert = static_cast<int>(first_uint(md, f.arch + ".expert_count", 0));
  f.is_70b = f.arch == "llama" && f.n_layer == 80 && n_head != n_head_kv;
  for (const InputModel::Tensor& it : in.tensors()) {
    const gguf::TensorInfo& t = *it.info;
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") || contains(t.name, "attn_kv_b.weight"))
      ++f.n_attention_wv;
    if (t.name == "output.weight") f.tied_embeddings = false;
  }
  return f;
}

// The mix: llama-quantize's choice of type for one tensor (llama_tensor_get_type).
class Mixer {
 public:
  Mixer(const ModelFacts& m, FileType ft, bool has_imatrix) : m_(m), ft_(ft), has_imatrix_(has_imatrix) {}

  // `name`: the tensor's name in the output (its layer renumbered after pruning).
  GgmlType choose(const gguf::TensorInfo& t, const std::string& name, GgmlType type) {
    using FT = FileType;
    const Category cat = category_of(name);
    const bool falcon = m_.arch == "falcon";
    auto more_bits = [](int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; };
    auto layer = [&](int counter) {
      int i = counter;
      if (m_.n_expert > 1) i = layer_of(name);
      return i;
    };
    if (cat == Category::Output || (m_.tied_embeddings && cat == Category::TokenEmbd)) {
      const uint64_t nx = t.ne[0];
      if (falcon || nx % gguf::type_info(type).block_size != 0) type = GgmlType::Q8_0;
      else if (type != GgmlType::Q8_0) type = GgmlType::Q6_K;
    } else if (cat == Category::TokenEmbd) {
      // The ternary mixes keep the embedding table at q4_K (the IQ mixes too, when they land).
      if (ft_ == FT::TQ1_0 || ft_ == FT::TQ2_0) type = GgmlType::Q4_K;
    } else if (cat == Category::AttnV || cat == Category::AttnQkv) {
      if (cat == Category::AttnV) {
        if (ft_ == FT::Q2_K) type = m_.n_gqa >= 4 ? GgmlType::Q4_K : GgmlType::Q3_K;
        else if (ft_ == FT::Q2_K_S && m_.n_gqa >= 4) type = GgmlType::Q4_K;
        else if (ft_ == FT::Q3_K_M) type = i_attention_wv_ < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
        else if (ft_ == FT::Q3_K_L) type = GgmlType::Q5_K;
        else if ((ft_ == FT::IQ4_NL || ft_ == FT::IQ4_XS) && m_.n_gqa >= 4) type = GgmlType::Q5_K;
        else if ((ft_ == FT::Q4_K_M || ft_ == FT::Q5_K_M) && more_bits(i_attention_wv_, m_.n_attention_wv))
          type = GgmlType::Q6_K;
        else if (ft_ == FT::Q4_K_S && i_attention_wv_ < 4) type = GgmlType::Q5_K;
        if (m_.is_70b && (type == GgmlType::Q3_K || type == GgmlType::Q4_K)) type = GgmlType::Q5_K;
        if (m_.n_expert == 8) type = GgmlType::Q8_0;
        ++i_attention_wv_;
      } else {  // fused QKV: its own rule, and it does not advance the attn_v counter
        if (ft_ == FT::Q3_K_M || ft_ == FT::Q3_K_L) type = GgmlType::Q4_K;
        else if (ft_ == FT::Q4_K_M) type = GgmlType::Q5_K;
        else if (ft_ == FT::Q5_K_M) type = GgmlType::Q6_K;
      }
    } else if (cat == Category::AttnK) {
      if (m_.n_expert == 8) type = GgmlType::Q8_0;
    } else if (cat == Category::FfnDown) {
      const int i = layer(i_ffn_down_), n = m_.n_layer;
      if (ft_ == FT::Q2_K) type = GgmlType::Q3_K;
      else if (ft_ == FT::Q2_K_S) {
        if (i < n / 8) type = GgmlType::Q4_K;
      } else if (ft_ == FT::Q3_K_M) {
        type = i < n / 16 ? GgmlType::Q5_K : (!falcon || more_bits(i, n)) ? GgmlType::Q4_K : GgmlType::Q3_K;
      } else if (ft_ == FT::Q3_K_L) {
        type = falcon ? GgmlType::Q4_K : GgmlType::Q5_K;
      } else if (ft_ == FT::Q4_K_M) {
        if (falcon) type = i < n / 16 ? GgmlType::Q6_K : more_bits(i, n) ? GgmlType::Q5_K : GgmlType::Q4_K;
        else if (more_bits(i, n)) type = GgmlType::Q6_K;
      } else if (i < n / 8 && (ft_ == FT::IQ4_NL || ft_ == FT::IQ4_XS) && !has_imatrix_) {
        type = GgmlType::Q5_K;
      } else if (ft_ == FT::Q5_K_M && more_bits(i, n)) {
        type = GgmlType::Q6_K;
      } else if (ft_ == FT::Q4_K_S && !falcon && i < n / 8) {
        type = GgmlType::Q5_K;
      } else if ((ft_ == FT::Q4_0 || ft_ == FT::Q5_0) && has_imatrix_ && i < n / 8) {
        type = ft_ == FT::Q4_0 ? GgmlType::Q4_1 : GgmlType::Q5_1;
      }
      ++i_ffn_down_;
    } else if (cat == Category::AttnOutput) {
      if (!falcon) {
        if (m_.n_expert == 8) {
          if (ft_ == FT::Q2_K || ft_ == FT::Q3_K_S || ft_ == FT::Q3_K_M || ft_ == FT::Q4_K_S || ft_ == FT::Q4_K_M ||
              ft_ == FT::IQ4_NL || ft_ == FT::IQ4_XS)
            type = GgmlType::Q5_K;
        } else {
          if (ft_ == FT::Q2_K) type = GgmlType::Q3_K;
          else if (ft_ == FT::Q3_K_M) type = GgmlType::Q4_K;
          else if (ft_ == FT::Q3_K_L) type = GgmlType::Q5_K;
        }
      } else if (ft_ == FT::Q3_K_L) {
        type = GgmlType::Q4_K;
      }
    }
    return type;
  }

 private:
  const ModelFacts& m_;
  FileType ft_;
  bool has_imatrix_;
  int i_attention_wv_ = 0, i_ffn_down_ = 0;
};

// A row length the chosen type cannot hold falls back as llama-quantize does today
// (tensor_type_fallback): a 256-value type to the 32-value type below, then to f16 when the
// row does not fit that either; a 32-value type straight to f16. (The 2025-02 llama.cpp sent
// q2_K and q3_K to iq4_nl and refused 32-value types.)
struct Fallback {
  GgmlType from, to;
};
constexpr Fallback kFallbacks[] = {
    {GgmlType::Q2_K, GgmlType::Q4_0},  {GgmlType::Q3_K, GgmlType::Q4_0},  {GgmlType::TQ1_0, GgmlType::Q4_0},
    {GgmlType::TQ2_0, GgmlType::Q4_0}, {GgmlType::Q4_K, GgmlType::Q5_0},  {GgmlType::Q5_K, GgmlType::Q5_1},
    {GgmlType::Q6_K, GgmlType::Q8_0},  {GgmlType::IQ4_XS, GgmlType::IQ4_NL},
};

Result<GgmlType> fallback_for(const gguf::TensorInfo& t, GgmlType type, bool& fell_back) {
  fell_back = false;
  const uint64_t block = gguf::type_info(type).block_size;
  if (t.ne[0] % block == 0) return type;
  fell_back = true;
  GgmlType to = type;
  if (block > 32) {
    const Fallback* f = std::find_if(std::begin(kFallbacks), std::end(kFallbacks), [&](const Fallback& x) { return x.from == type; });
    if (f == std::end(kFallbacks))
      return Error{"tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) + " does not fit " + tname(type) +
                   " and it has no fallback type"};
    to = f->to;
  }
  if (t.ne[0] % gguf::type_info(to).block_size != 0) to = GgmlType::F16;
  return to;
}

bool needs_imatrix(const std::string& name, GgmlType to, FileType ft) {
  return to == GgmlType::Q2_K && ft == FileType::Q2_K_S && name != "token_embd.weight" && name != "output.weight";
}

// llama-quantize's renumbering for --prune-layers, over the layers in ascending order: a
// pruned layer maps to -1, layers below the first pruned one keep their number, the rest
// are numbered on from the last kept one.
std::map<int, int> layer_map(const std::vector<InputModel::Tensor>& tensors, const std::vector<int>& prune) {
  std::map<int, int> m;
  if (prune.empty()) return m;
  for (const InputModel::Tensor& it : tensors)
    if (const int l = layer_of(it.info->name); l >= 0) m[l] = 0;
  int next = 0;
  for (auto& [layer, to] : m) {
    if (std::binary_search(prune.begin(), prune.end(), layer)) {
      to = -1;
    } else if (layer < prune.front()) {
      to = layer;
      next = layer + 1;
    } else {
      to = next++;
    }
  }
  return m;
}

// `name` with its layer number replaced by the map's ("" when the layer is pruned).
std::string renumbered(const std::string& name, const std::map<int, int>& m) {
  const int l = layer_of(name);
  if (l < 0 || m.empty()) return name;
  const int to = m.at(l);
  if (to < 0) return "";
  const size_t digits = name.find('.', 4);
  return "blk." + std::to_string(to) + name.substr(digits);
}

// The --tensor-type rule's type for `name`, if one matches (the first that does).
std::optional<GgmlType> manual_type(const std::vector<std::pair<std::regex, GgmlType>>& rules, const std::string& name) {
  for (const auto& [re, type] : rules)
    if (std::regex_search(name, re)) return type;
  return std::nullopt;
}

}  // namespace

Result<std::vector<TensorPlan>> plan_quantization(const InputModel& in, const QuantizeOptions& opt) {
  auto facts = model_facts(in);
  if (!facts) return facts.error();
  const FileTypeInfo& ft = file_type_info(opt.ftype);
  if (ft.needs_imatrix && !opt.imatrix)
    return Error{"the " + std::string(ft.name) + " mix needs an importance matrix (--imatrix FILE), as in llama-quantize"};
  std::vector<InputModel::Tensor> order = in.tensors();
  if (opt.keep_split) {
    std::stable_sort(order.begin(), order.end(), [](const InputModel::Tensor& a, const InputModel::Tensor& b) {
      return a.shard != b.shard ? a.shard < b.shard : a.info->offset < b.info->offset;
    });
  } else {
    std::stable_sort(order.begin(), order.end(), [](const InputModel::Tensor& a, const InputModel::Tensor& b) {
      return tensor_order(a.info->name, b.info->name);
    });
  }
  // Pruning: as llama-quantize, the attn_v rule counts the tensors kept, while the
  // ffn_down rule keeps the model's layer count.
  const std::map<int, int> layers = layer_map(order, opt.prune_layers);
  if (!layers.empty()) {
    facts.value().n_attention_wv = 0;
    for (const InputModel::Tensor& it : order) {
      const std::string& n = it.info->name;
      if (!renumbered(n, layers).empty() && (contains(n, "attn_v.weight") || contains(n, "attn_qkv.weight") || contains(n, "attn_kv_b.weight")))
        ++facts.value().n_attention_wv;
    }
  }
  std::vector<std::pair<std::regex, GgmlType>> rules;
  for (const TensorTypeRule& r : opt.tensor_types) {
    try {
      rules.emplace_back(std::regex(r.pattern), r.type);
    } catch (const std::regex_error& e) {
      return Error{"invalid tensor name pattern '" + r.pattern + "': " + e.what()};
    }
  }

  if (opt.imatrix)
    for (const auto& [name, v] : opt.imatrix->values)
      for (float x : v)
        if (!std::isfinite(x)) return Error{"importance matrix entry '" + name + "' has a non-finite value"};
  const bool base_quantized = gguf::type_info(ft.base).quantized;
  Mixer mixer(facts.value(), opt.ftype, opt.imatrix != nullptr);
  std::vector<TensorPlan> plan;
  for (const InputModel::Tensor& it : order) {
    const gguf::TensorInfo* t = it.info;
    const std::string name = renumbered(t->name, layers);
    if (name.empty()) continue;  // a pruned layer
    TensorPlan p{name, t, it.file, it.shard, t->type, t->type};
    if (allows_quantization(*t, opt)) {
      GgmlType to = ft.base;
      if (base_quantized) {
        if (auto m = manual_type(rules, name)) {
          to = *m;
          p.manual = true;
        } else if (!opt.pure) {
          to = mixer.choose(*t, name, to);
        }
        if (opt.token_embedding_type && t->name == "token_embd.weight") to = *opt.token_embedding_type;
        if (opt.output_tensor_type && t->name == "output.weight") to = *opt.output_tensor_type;
        auto fb = fallback_for(*t, to, p.fallback);
        if (!fb) return fb.error();
        to = fb.value();
      } else {
        if (opt.token_embedding_type && t->name == "token_embd.weight") to = *opt.token_embedding_type;
        if (opt.output_tensor_type && t->name == "output.weight") to = *opt.output_tensor_type;
      }
      p.to = to;
    }
    if (p.to != p.from) {
      if (gguf::type_info(p.from).quantized && !opt.allow_requantize)
        return Error{"tensor '" + p.name + "' is already quantized (" + tname(p.from) +
                     "); requantizing loses quality, pass --allow-requantize to do it anyway"};
      if (!quant_traits(p.from)) return Error{"tensor '" + p.name + "': cannot read type " + tname(p.from)};
      if (!quant_traits(p.to))
        return Error{"tensor '" + p.name + "': quantizing to " + tname(p.to) + " is not supported yet" +
                     (p.fallback ? " (it is llama.cpp's fallback for rows of " + std::to_string(t->ne[0]) + ")" : "")};
      // The imatrix knows the tensor by its name in the input.
      const std::vector<float>* w = opt.imatrix ? opt.imatrix->find(t->name) : nullptr;
      if (w) {
        const uint64_t want = t->ne[0] * t->ne[2] * t->ne[3];
        if (w->size() != want)
          return Error{"importance matrix entry '" + t->name + "' has " + std::to_string(w->size()) + " values, expected " +
                       std::to_string(want)};
        p.use_imatrix = true;
      }
      if (!w && needs_imatrix(p.name, p.to, opt.ftype))
        return Error{"tensor '" + p.name + "' needs an importance matrix entry for " + tname(p.to) + " in " +
                     std::string(ft.name) + ", and the imatrix has none"};
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

gguf::Metadata output_metadata(const gguf::Metadata& in, const QuantizeOptions& opt, int n_layer) {
  gguf::Metadata md = in;
  md.set("general.quantization_version", gguf::Value::of<uint32_t>(2));
  md.set("general.file_type", gguf::Value::of<uint32_t>(static_cast<uint32_t>(opt.ftype)));
  md.erase("split.no");
  md.erase("split.count");
  md.erase("split.tensors.count");
  for (const KvOverride& o : opt.kv_overrides) md.set(o.key, o.value);
  if (opt.imatrix) {
    if (!opt.imatrix_path.empty()) md.set("quantize.imatrix.file", gguf::Value::string(opt.imatrix_path));
    if (!opt.imatrix->datasets.empty())
      md.set("quantize.imatrix.dataset", gguf::Value::string(opt.imatrix->datasets[0]));
    // uint32, as llama-quantize writes them today (its 2025-02 build wrote int32).
    md.set("quantize.imatrix.entries_count", gguf::Value::of<uint32_t>(static_cast<uint32_t>(opt.imatrix->values.size())));
    if (opt.imatrix->chunk_count > 0)
      md.set("quantize.imatrix.chunks_count", gguf::Value::of<uint32_t>(static_cast<uint32_t>(opt.imatrix->chunk_count)));
  }
  if (!opt.prune_layers.empty() && n_layer >= 0)
    if (auto arch = in.get_string("general.architecture"); arch.ok())
      md.set(arch.value() + ".block_count", gguf::Value::of<uint32_t>(static_cast<uint32_t>(n_layer)));
  return md;
}

std::string split_path(const std::string& prefix, int shard, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", shard, count);
  return prefix + buf;
}

Result<InputModel> InputModel::open(const std::string& path) {
  InputModel m;
  auto first = gguf::GgufFile::open(path);
  if (!first) return first.error();
  m.shards_.push_back(std::make_unique<gguf::GgufFile>(std::move(first.value())));
  const gguf::Metadata& md = m.shards_[0]->metadata;
  if (md.contains("split.count")) {
    auto count = md.get_uint("split.count");
    auto no = md.get_uint("split.no");
    if (!count || !no) return Error{path + ": bad split keys: " + (count ? no.message() : count.message())};
    if (no.value() != 0)
      return Error{path + ": this is shard " + std::to_string(no.value() + 1) + " of a split model; give the first shard"};
    const int n = static_cast<int>(count.value());
    const std::string suffix = split_path("", 1, n);
    if (n > 1 && (path.size() <= suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0))
      return Error{path + ": split model whose first shard is not named PREFIX" + suffix};
    const std::string prefix = path.substr(0, path.size() - suffix.size());
    for (int i = 1; i < n; ++i) {
      const std::string p = split_path(prefix, i + 1, n);
      auto shard = gguf::GgufFile::open(p);
      if (!shard) return Error{"shard " + std::to_string(i + 1) + " of " + std::to_string(n) + ": " + shard.message()};
      auto sn = shard.value().metadata.get_uint("split.no");
      if (!sn || sn.value() != static_cast<uint64_t>(i))
        return Error{p + ": expected split.no = " + std::to_string(i) + (sn ? ", found " + std::to_string(sn.value()) : "")};
      m.shards_.push_back(std::make_unique<gguf::GgufFile>(std::move(shard.value())));
    }
  }
  std::unordered_map<std::string, int> seen;
  for (int i = 0; i < m.shard_count(); ++i) {
    for (const gguf::TensorInfo& t : m.shards_[i]->tensors) {
      if (auto [it, fresh] = seen.emplace(t.name, i); !fresh)
        return Error{"tensor '" + t.name + "' is in shards " + std::to_string(it->second + 1) + " and " + std::to_string(i + 1)};
      m.tensors_.push_back({m.shards_[i].get(), &t, i});
    }
  }
  return m;
}

namespace {

// Quantizes one planned tensor into `out` (threads over chunks of rows).
Status quantize_tensor(const TensorPlan& tp, const QuantizeOptions& opt, int threads, std::vector<uint8_t>& out) {
  const gguf::TensorInfo& ti = *tp.info;
  const int64_t n_per_row = static_cast<int64_t>(ti.ne[0]);
  const int64_t nrows = static_cast<int64_t>(ti.n_elements / ti.ne[0]);
  const int64_t rows_per_matrix = static_cast<int64_t>(ti.ne[1]);
  const std::vector<float>* imat = tp.use_imatrix ? opt.imatrix->find(tp.name) : nullptr;
  const auto src = tp.file->tensor_data(ti);
  const size_t in_row = gguf::type_bytes(tp.from, ti.ne[0], tp.name).value();
  const size_t out_row = gguf::type_bytes(tp.to, ti.ne[0], tp.name).value();
  out.resize(out_row * static_cast<size_t>(nrows));
  // Rows are independent: split them into chunks of about 16k values over the threads.
  const int64_t rows_per_chunk = std::max<int64_t>(1, 16384 / n_per_row);
  const int64_t nchunks = (nrows + rows_per_chunk - 1) / rows_per_chunk;
  std::atomic<bool> stopped{false};
  // With turns, the chunks go in groups of about half a million values, each group one
  // turn at the cores; without, as one group.
  const int64_t group = opt.turns ? std::max<int64_t>(1, 32 * threads) : nchunks;
  for (int64_t g0 = 0; g0 < nchunks; g0 += group) {
    const ComputeTurns::Turn turn(opt.turns);
    const int64_t g1 = std::min(nchunks, g0 + group);
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> buf(static_cast<size_t>(rows_per_chunk * n_per_row));
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = g0; c < g1; ++c) {
        if (stopped.load(std::memory_order_relaxed) || (opt.cancel && opt.cancel->load())) {
          stopped = true;
          continue;
        }
        const int64_t r0 = c * rows_per_chunk, nr = std::min(rows_per_chunk, nrows - r0);
        const float* x;
        if (tp.from == GgmlType::F32) {
          x = reinterpret_cast<const float*>(src.data() + static_cast<size_t>(r0) * in_row);
        } else {
          quant_traits(tp.from)->dequantize(src.data() + static_cast<size_t>(r0) * in_row, buf.data(), nr * n_per_row);
          x = buf.data();
        }
        for (int64_t r = 0; r < nr; ++r) {
          // Each matrix of a 3-D (expert) tensor has its own imatrix slice.
          const float* wrow = imat ? imat->data() + ((r0 + r) / rows_per_matrix) * n_per_row : nullptr;
          quant_traits(tp.to)->quantize(x + r * n_per_row, out.data() + static_cast<size_t>(r0 + r) * out_row, n_per_row, wrow);
        }
      }
    }
  }
  if (stopped || (opt.cancel && opt.cancel->load())) return Error{"interrupted"};
  return validate_quantized(tp.to, out.data(), out.size());
}

}  // namespace

// Layers in the output: one more than the highest layer number of the plan's names.
static int kept_layers(const std::vector<TensorPlan>& plan) {
  int n = 0;
  for (const TensorPlan& p : plan) n = std::max(n, layer_of(p.name) + 1);
  return n;
}

Result<QuantizeSummary> quantize_model(const std::string& in_path, const std::string& out_path,
                                       const QuantizeOptions& opt, const std::function<void(const Progress&)>& on_tensor) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_path, ec) && fs::equivalent(in_path, out_path, ec))
    return Error{"output '" + out_path + "' is the input file; choose another name"};
  auto in = InputModel::open(in_path);
  if (!in) return in.error();
  const InputModel& model = in.value();
  auto plan = plan_quantization(model, opt);
  if (!plan) return plan.error();

  QuantizeSummary sum;
  sum.tensors = plan.value();
  sum.threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const bool split_out = opt.keep_split && model.shard_count() > 1;
  const int n_out = split_out ? model.shard_count() : 1;

  // One writer per output file; shard 0 carries the metadata, every shard the split keys.
  std::vector<gguf::GgufWriter> writers;
  for (int i = 0; i < n_out; ++i) {
    gguf::Metadata md = i == 0 ? output_metadata(model.metadata(), opt, kept_layers(sum.tensors)) : gguf::Metadata{};
    if (split_out) {
      md.set("split.no", gguf::Value::of<uint16_t>(static_cast<uint16_t>(i)));
      md.set("split.count", gguf::Value::of<uint16_t>(static_cast<uint16_t>(n_out)));
      md.set("split.tensors.count", gguf::Value::of<int32_t>(static_cast<int32_t>(sum.tensors.size())));
    }
    writers.emplace_back(std::move(md));
  }
  auto t0 = std::chrono::steady_clock::now();
  for (size_t idx = 0; idx < sum.tensors.size(); ++idx) {
    const TensorPlan& p = sum.tensors[idx];
    const gguf::TensorInfo& t = *p.info;
    sum.in_bytes += t.n_bytes;
    sum.n_elements += t.n_elements;
    const uint64_t out_bytes = p.to == p.from ? t.n_bytes : gguf::type_bytes(p.to, t.n_elements, p.name).value();
    sum.out_bytes += out_bytes;
    gguf::GgufWriter& w = writers[split_out ? p.shard : 0];
    Status s = w.add_tensor(p.name, p.to, t.shape(), [&, idx, out_bytes](gguf::ByteSink& sink) -> Status {
      auto s0 = std::chrono::steady_clock::now();
      const TensorPlan& tp = sum.tensors[idx];
      Status st;
      if (tp.to == tp.from) {
        st = sink.write(tp.file->tensor_data(*tp.info));
      } else {
        std::vector<uint8_t> out;
        st = quantize_tensor(tp, opt, sum.threads, out);
        if (st) st = sink.write(out.data(), out.size());
      }
      if (on_tensor && st)
        on_tensor({idx, sum.tensors.size(), &tp, tp.info->n_bytes, out_bytes,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count()});
      return st;
    });
    if (!s) return s.error();
  }

  std::vector<std::string> names, temps;
  std::string prefix = out_path;
  if (split_out && prefix.size() > 5 && prefix.compare(prefix.size() - 5, 5, ".gguf") == 0)
    prefix.resize(prefix.size() - 5);
  for (int i = 0; i < n_out; ++i) names.push_back(split_out ? split_path(prefix, i + 1, n_out) : out_path);
  auto discard_all = [&] {
    for (const std::string& tmp : temps) gguf::GgufWriter::discard(tmp);
  };
  for (int i = 0; i < n_out; ++i) {
    auto tmp = writers[i].write_unpublished(names[i]);
    if (!tmp) {
      discard_all();
      return tmp.error();
    }
    temps.push_back(tmp.value());
  }
  for (int i = 0; i < n_out; ++i)
    if (Status s = gguf::GgufWriter::publish(temps[i], names[i]); !s) return s.error();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace hearth::quant
