#include "model/synth.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
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
  return Error{"unknown shape '" + name + "' (tiny, 1b, 3b, 7b)"};
}

Status write_synth_model(const std::string& out, const SynthOptions& opt) {
  if (opt.arch != "llama") return Error{"synth: architecture '" + opt.arch + "' is not available yet (llama)"};
  auto vocab = gguf::GgufFile::open(opt.vocab_path);
  if (!vocab) return vocab.error();
  auto ntok = vocab.value().metadata.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  if (!ntok) return Error{opt.vocab_path + ": " + ntok.message()};
  const SynthShape& s = opt.shape;
  const uint64_t n_vocab = ntok.value()->count;
  const bool direct = opt.type == quant::FileType::F16 || opt.type == quant::FileType::ALL_F32;
  const bool f32 = opt.type == quant::FileType::ALL_F32;

  gguf::Metadata md;
  md.set("general.architecture", gguf::Value::string("llama"));
  md.set("general.name", gguf::Value::string("hearth-synth-llama-" + s.name));
  md.set("general.file_type", gguf::Value::of<uint32_t>(f32 ? 0 : 1));
  md.set("llama.context_length", gguf::Value::of<uint32_t>(s.n_ctx));
  md.set("llama.embedding_length", gguf::Value::of<uint32_t>(s.n_embd));
  md.set("llama.feed_forward_length", gguf::Value::of<uint32_t>(s.n_ff));
  md.set("llama.block_count", gguf::Value::of<uint32_t>(s.n_layer));
  md.set("llama.attention.head_count", gguf::Value::of<uint32_t>(s.n_head));
  md.set("llama.attention.head_count_kv", gguf::Value::of<uint32_t>(s.n_head_kv));
  md.set("llama.rope.dimension_count", gguf::Value::of<uint32_t>(s.n_embd / s.n_head));
  md.set("llama.rope.freq_base", gguf::Value::of<float>(10000.f));
  md.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::of<float>(1e-5f));
  md.set("llama.vocab_size", gguf::Value::of<uint32_t>(static_cast<uint32_t>(n_vocab)));
  for (const gguf::KeyValue& kv : vocab.value().metadata.entries())
    if (kv.key.rfind("tokenizer.", 0) == 0) md.set(kv.key, kv.value);

  gguf::GgufWriter w(md);
  uint64_t tensor_seed = opt.seed;
  auto matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) -> Status {
    const uint64_t shape[] = {cols, rows};
    const uint64_t seed = (++tensor_seed) * 0x9E3779B97F4A7C15ull;
    const float sigma = opt.sigma;
    return w.add_tensor(name, f32 ? gguf::GgmlType::F32 : gguf::GgmlType::F16, shape,
                        [cols, rows, seed, sigma, f32](gguf::ByteSink& sink) -> Status {
                          Gauss g{seed | 1};
                          std::vector<uint16_t> h(cols * 64);
                          std::vector<float> f(f32 ? cols * 64 : 0);
                          for (uint64_t r = 0; r < rows; r += 64) {
                            const uint64_t nr = std::min<uint64_t>(64, rows - r);
                            g.fill_f16(h.data(), cols * nr, sigma);
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
  std::vector<float> ones(static_cast<size_t>(s.n_embd), 1.0f);
  auto norm = [&](const std::string& name) {
    const uint64_t shape[] = {static_cast<uint64_t>(s.n_embd)};
    return w.add_tensor(name, gguf::GgmlType::F32, shape, {reinterpret_cast<const uint8_t*>(ones.data()), ones.size() * 4});
  };
  const uint64_t E = s.n_embd, F = s.n_ff, hd = s.n_embd / s.n_head, kv = hd * s.n_head_kv;
  if (Status st = matrix("token_embd.weight", E, n_vocab); !st) return st;
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (Status st : {norm(b + "attn_norm.weight"), matrix(b + "attn_q.weight", E, E), matrix(b + "attn_k.weight", E, kv),
                      matrix(b + "attn_v.weight", E, kv), matrix(b + "attn_output.weight", E, E), norm(b + "ffn_norm.weight"),
                      matrix(b + "ffn_gate.weight", E, F), matrix(b + "ffn_up.weight", E, F), matrix(b + "ffn_down.weight", F, E)})
      if (!st) return st;
  }
  if (Status st = norm("output_norm.weight"); !st) return st;
  if (Status st = matrix("output.weight", E, n_vocab); !st) return st;
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
