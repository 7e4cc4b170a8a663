#include "model/synth.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "gguf/writer.h"
#include "quant/fp16.h"
#include "quant/model_quantizer.h"

namespace hearth::model {
namespace {

// Deterministic normal values: xorshift64* and Box-Muller.
struct Gauss {
  uint64_t s;
  float uniform() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<float>((s * 2685821657736338717ull) >> 40) * (1.0f / 16777216.0f);
  }
  void fill_f16(uint16_t* h, size_t n, float sigma) {
    for (size_t i = 0; i + 1 < n; i += 2) {
      const float u1 = std::max(uniform(), 1e-7f), u2 = uniform();
      const float r = sigma * std::sqrt(-2 * std::log(u1));
      h[i] = quant::fp32_to_fp16(r * std::cos(6.2831853f * u2));
      h[i + 1] = quant::fp32_to_fp16(r * std::sin(6.2831853f * u2));
    }
  }
};

}  // namespace

Result<SynthShape> synth_shape(const std::string& name) {
  if (name == "tiny") return SynthShape{name, 256, 2, 4, 2, 768, 512};
  if (name == "1b") return SynthShape{name, 2048, 22, 32, 4, 5632, 2048};
  if (name == "3b") return SynthShape{name, 3072, 28, 24, 8, 8192, 4096};
  if (name == "7b") return SynthShape{name, 4096, 32, 32, 32, 11008, 4096};
  if (name == "bert-tiny") return SynthShape{name, 128, 2, 4, 4, 512, 512};
  if (name == "minilm") return SynthShape{name, 384, 6, 12, 12, 1536, 512};
  if (name == "bge-base") return SynthShape{name, 768, 12, 12, 12, 3072, 512};
  return Error{"unknown shape '" + name + "' (tiny, 1b, 3b, 7b; encoders: bert-tiny, minilm, bge-base)"};
}

namespace {

// Adds a model's tensors: a matrix (cols × rows of N(0, sigma)) or a vector (f32, N(mean, sigma)).
struct TensorSink {
  std::function<Status(const std::string&, uint64_t cols, uint64_t rows)> matrix;
  std::function<Status(const std::string&, uint64_t n, float mean, float sigma)> vec;
  std::function<Status(const std::string&, uint64_t cols, uint64_t rows)> f32_matrix;  // kept f32 at any type
};

// What differs between the architectures synth writes: the metadata beyond the shape, and
// the tensors (named and shaped as llama.cpp loads them).
struct SynthArch {
  const char* name;
  bool encoder;
  void (*metadata)(gguf::Metadata& md, const SynthOptions& opt);
  Status (*tensors)(TensorSink& t, const SynthOptions& opt, uint64_t n_vocab);
};

void llama_metadata(gguf::Metadata& md, const SynthOptions& opt) {
  md.set("llama.attention.head_count_kv", gguf::Value::of<uint32_t>(opt.shape.n_head_kv));
  md.set("llama.rope.dimension_count", gguf::Value::of<uint32_t>(opt.shape.n_embd / opt.shape.n_head));
  md.set("llama.rope.freq_base", gguf::Value::of<float>(10000.f));
  md.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::of<float>(1e-5f));
}

Status llama_tensors(TensorSink& t, const SynthOptions& opt, uint64_t V) {
  const SynthShape& s = opt.shape;
  const uint64_t E = s.n_embd, F = s.n_ff, hd = s.n_embd / s.n_head, kv = hd * s.n_head_kv;
  if (Status st = t.matrix("token_embd.weight", E, V); !st) return st;
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (Status st : {t.vec(b + "attn_norm.weight", E, 1, 0), t.matrix(b + "attn_q.weight", E, E), t.matrix(b + "attn_k.weight", E, kv),
                      t.matrix(b + "attn_v.weight", E, kv), t.matrix(b + "attn_output.weight", E, E), t.vec(b + "ffn_norm.weight", E, 1, 0),
                      t.matrix(b + "ffn_gate.weight", E, F), t.matrix(b + "ffn_up.weight", E, F), t.matrix(b + "ffn_down.weight", F, E)})
      if (!st) return st;
  }
  if (Status st = t.vec("output_norm.weight", E, 1, 0); !st) return st;
  return t.matrix("output.weight", E, V);
}

// bert and nomic-bert: LayerNorm weights near 1 and small biases, so that every term counts.
void encoder_metadata(gguf::Metadata& md, const SynthOptions& opt) {
  const std::string a = opt.arch + ".";
  md.set(a + "attention.layer_norm_epsilon", gguf::Value::of<float>(1e-12f));
  md.set(a + "attention.causal", gguf::Value::of<bool>(false));
  md.set(a + "pooling_type", gguf::Value::of<uint32_t>(static_cast<uint32_t>(opt.pooling)));
  if (opt.arch == "nomic-bert") md.set(a + "rope.freq_base", gguf::Value::of<float>(1000.f));
  if (!md.contains("tokenizer.ggml.token_type_count")) md.set("tokenizer.ggml.token_type_count", gguf::Value::of<uint32_t>(2));
}

Status encoder_tensors(TensorSink& t, const SynthOptions& opt, uint64_t V) {
  const SynthShape& s = opt.shape;
  const uint64_t E = s.n_embd, F = s.n_ff;
  const bool nomic = opt.arch == "nomic-bert";
  const float b = opt.sigma;
  // token_types stays f32, as converters write it (llama.cpp adds its row to f32 states).
  for (Status st : {t.matrix("token_embd.weight", E, V), t.f32_matrix("token_types.weight", E, 2),
                    nomic ? Status{} : t.matrix("position_embd.weight", E, static_cast<uint64_t>(s.n_ctx)),
                    t.vec("token_embd_norm.weight", E, 1, b), t.vec("token_embd_norm.bias", E, 0, b)})
    if (!st) return st;
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    if (nomic) {
      for (Status st : {t.matrix(p + "attn_qkv.weight", E, 3 * E), t.matrix(p + "attn_output.weight", E, E)})
        if (!st) return st;
    } else {
      for (Status st : {t.matrix(p + "attn_q.weight", E, E), t.vec(p + "attn_q.bias", E, 0, b), t.matrix(p + "attn_k.weight", E, E),
                        t.vec(p + "attn_k.bias", E, 0, b), t.matrix(p + "attn_v.weight", E, E), t.vec(p + "attn_v.bias", E, 0, b),
                        t.matrix(p + "attn_output.weight", E, E), t.vec(p + "attn_output.bias", E, 0, b)})
        if (!st) return st;
    }
    for (Status st : {t.vec(p + "attn_output_norm.weight", E, 1, b), t.vec(p + "attn_output_norm.bias", E, 0, b),
                      t.matrix(p + "ffn_up.weight", E, F), nomic ? t.matrix(p + "ffn_gate.weight", E, F) : t.vec(p + "ffn_up.bias", F, 0, b),
                      t.matrix(p + "ffn_down.weight", F, E), nomic ? Status{} : t.vec(p + "ffn_down.bias", E, 0, b),
                      t.vec(p + "layer_output_norm.weight", E, 1, b), t.vec(p + "layer_output_norm.bias", E, 0, b)})
      if (!st) return st;
  }
  if (opt.pooling != Pooling::Rank) return {};
  // A reranker's head: dense + tanh, then one score.
  for (Status st : {t.matrix("cls.weight", E, E), t.vec("cls.bias", E, 0, b), t.matrix("cls.output.weight", E, 1), t.vec("cls.output.bias", 1, 0, b)})
    if (!st) return st;
  return {};
}

constexpr SynthArch kSynthArchs[] = {
    {"llama", false, llama_metadata, llama_tensors},
    {"bert", true, encoder_metadata, encoder_tensors},
    {"nomic-bert", true, encoder_metadata, encoder_tensors},
};

}  // namespace

Status write_synth_model(const std::string& out, const SynthOptions& opt) {
  const SynthArch* arch = nullptr;
  for (const SynthArch& a : kSynthArchs)
    if (opt.arch == a.name) arch = &a;
  if (!arch) return Error{"synth: architecture '" + opt.arch + "' is not available (llama, bert, nomic-bert)"};
  const SynthShape& s = opt.shape;
  if (arch->encoder && s.n_head_kv != s.n_head) return Error{"synth: an encoder needs a shape without grouped KV heads (bert-tiny, minilm, bge-base)"};
  auto vocab = gguf::GgufFile::open(opt.vocab_path);
  if (!vocab) return vocab.error();
  auto ntok = vocab.value().metadata.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  if (!ntok) return Error{opt.vocab_path + ": " + ntok.message()};
  const uint64_t n_vocab = ntok.value()->count;
  const bool direct = opt.type == quant::FileType::F16 || opt.type == quant::FileType::ALL_F32;
  const bool f32 = opt.type == quant::FileType::ALL_F32;

  gguf::Metadata md;
  const std::string a = opt.arch + ".";
  md.set("general.architecture", gguf::Value::string(opt.arch));
  md.set("general.name", gguf::Value::string("hearth-synth-" + opt.arch + "-" + s.name));
  md.set("general.file_type", gguf::Value::of<uint32_t>(f32 ? 0 : 1));
  md.set(a + "context_length", gguf::Value::of<uint32_t>(s.n_ctx));
  md.set(a + "embedding_length", gguf::Value::of<uint32_t>(s.n_embd));
  md.set(a + "feed_forward_length", gguf::Value::of<uint32_t>(s.n_ff));
  md.set(a + "block_count", gguf::Value::of<uint32_t>(s.n_layer));
  md.set(a + "attention.head_count", gguf::Value::of<uint32_t>(s.n_head));
  md.set(a + "vocab_size", gguf::Value::of<uint32_t>(static_cast<uint32_t>(n_vocab)));
  for (const gguf::KeyValue& kv : vocab.value().metadata.entries())
    if (kv.key.rfind("tokenizer.", 0) == 0) md.set(kv.key, kv.value);
  arch->metadata(md, opt);

  gguf::GgufWriter w(md);
  uint64_t tensor_seed = opt.seed;
  TensorSink sink;
  sink.matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) -> Status {
    const uint64_t shape[] = {cols, rows};
    const uint64_t seed = (++tensor_seed) * 0x9E3779B97F4A7C15ull;
    const float sigma = opt.sigma;
    return w.add_tensor(name, f32 ? gguf::GgmlType::F32 : gguf::GgmlType::F16, shape,
                        [cols, rows, seed, sigma, f32](gguf::ByteSink& sink) -> Status {
                          Gauss g{seed | 1};
                          std::vector<uint16_t> h(cols * 64 + 1);
                          std::vector<float> f(f32 ? cols * 64 : 0);
                          for (uint64_t r = 0; r < rows; r += 64) {
                            const uint64_t nr = std::min<uint64_t>(64, rows - r);
                            g.fill_f16(h.data(), cols * nr + 1, sigma);
                            if (f32) {
                              for (size_t i = 0; i < cols * nr; ++i) f[i] = quant::fp16_to_fp32(h[i]);
                              if (Status st = sink.write(f.data(), cols * nr * 4); !st) return st;
                            } else if (Status st = sink.write(h.data(), cols * nr * 2); !st) {
                              return st;
                            }
                          }
                          return {};
                        });
  };
  // Vectors are small: made now, kept until the file is written.
  std::vector<std::unique_ptr<std::vector<float>>> vectors;
  auto floats = [&](const std::string& name, std::span<const uint64_t> shape, float mean, float sigma) -> Status {
    const uint64_t n = shape.size() == 2 ? shape[0] * shape[1] : shape[0];
    auto v = std::make_unique<std::vector<float>>(n, mean);
    if (sigma > 0) {
      Gauss g{((++tensor_seed) * 0x9E3779B97F4A7C15ull) | 1};
      std::vector<uint16_t> h(n + 1);
      g.fill_f16(h.data(), n + 1, sigma);
      for (uint64_t i = 0; i < n; ++i) (*v)[i] += quant::fp16_to_fp32(h[i]);
    }
    vectors.push_back(std::move(v));
    return w.add_tensor(name, gguf::GgmlType::F32, shape, {reinterpret_cast<const uint8_t*>(vectors.back()->data()), n * 4});
  };
  sink.vec = [&](const std::string& name, uint64_t n, float mean, float sigma) {
    const uint64_t shape[] = {n};
    return floats(name, shape, mean, sigma);
  };
  sink.f32_matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) {
    const uint64_t shape[] = {cols, rows};
    return floats(name, shape, 0, opt.sigma);
  };
  if (Status st = arch->tensors(sink, opt, n_vocab); !st) return st;
  if (direct) return w.write(out);

  // Other types: an F16 model beside OUT, quantized by the model quantizer, then removed.
  const std::string tmp = out + ".f16-tmp-" + std::to_string(::getpid());
  if (Status st = w.write(tmp); !st) return st;
  quant::QuantizeOptions q;
  q.ftype = opt.type;
  q.threads = opt.threads;
  auto r = quant::quantize_model(tmp, out, q);
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  if (!r) return r.error();
  return {};
}

}  // namespace hearth::model
