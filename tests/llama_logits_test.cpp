// The forward pass against llama.cpp's logits (../shared/reference/logits): every model
// and prompt, token by token from an empty cache, every stored position. Tolerances
// follow the reference README's measurements: absolute for f32 weights, relative to the
// spread (std) of the logits for f16 and quantized weights, plus top-1 agreement.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "gguf/writer.h"
#include "model/llama.h"
#include "quant/model_quantizer.h"
#include "quant/quant.h"
#include "testdata.h"

namespace hearth::model {
namespace {

using test::fs::path;

struct Tolerance {
  double max_abs;         // absolute bound for max |delta| (0: use max_sigma)
  double max_sigma;       // bound for max |delta| / std(logits)
  double mean_sigma;      // bound for mean |delta| / std(logits)
  double min_top1;        // fraction of positions with the same argmax
};

struct Stats {
  double max_abs = 0, mean_abs = 0, sigma = 0;
  double top1 = 0;
  int rows = 0;
};

Stats compare(const std::string& model_name, const std::string& prompt) {
  Stats st;
  const path dir = test::reference_dir() / "logits" / model_name;
  simdjson::dom::parser parser;
  simdjson::dom::element meta = parser.load((dir / (prompt + ".json")).string());
  std::string_view model_rel = meta["model"];
  auto m = Model::load((test::reference_dir().parent_path() / model_rel).string());
  EXPECT_TRUE(m.ok()) << m.message();
  if (!m.ok()) return st;
  std::vector<TokenId> tokens;
  for (auto t : meta["tokens"].get_array()) tokens.push_back(static_cast<TokenId>(int64_t(t)));
  std::vector<int> positions;
  for (auto p : meta["positions"].get_array()) positions.push_back(static_cast<int>(int64_t(p)));
  const int64_t n_vocab = int64_t(meta["n_vocab"]);
  std::vector<float> ref(positions.size() * n_vocab);
  std::ifstream bin(dir / (prompt + ".logits.bin"), std::ios::binary);
  bin.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size() * 4));
  EXPECT_TRUE(bin.good()) << "short logits file";

  // The prompt's tokenization must be llama.cpp's too, where Hearth has the tokenizer
  // (byte-level BPE, used by the qwen models here, is not written yet: say so exactly).
  std::string_view prompt_text = meta["prompt"];
  auto toks = m.value()->vocab().tokenize(prompt_text, true, true);
  if (m.value()->vocab().unsupported().empty()) {
    EXPECT_TRUE(toks.ok()) << toks.message();
    if (toks.ok()) {
      EXPECT_EQ(toks.value(), tokens) << model_name << " " << prompt;
    }
  } else {
    EXPECT_NE(m.value()->vocab().unsupported().find("tokenizer 'gpt2' is not supported yet"), std::string::npos);
  }

  // The KV cache type the reference ran with (f32 for llama.cpp mainline, f16 for ik's qwen3).
  std::string_view kv = meta["eval"]["kv_cache_type"];
  EXPECT_TRUE(kv == "f32" || kv == "f16") << kv;
  Context ctx(*m.value(), static_cast<int>(tokens.size()), 2, kv == "f16" ? KvType::F16 : KvType::F32);
  size_t next = 0;
  double sum_abs = 0, sum_ref = 0, sum_ref2 = 0;
  int same = 0;
  for (size_t p = 0; p < tokens.size() && next < positions.size(); ++p) {
    Status s = ctx.eval(tokens[p]);
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok()) return st;
    if (static_cast<int>(p) != positions[next]) continue;
    const float* r = &ref[next * n_vocab];
    const std::vector<float>& got = ctx.logits();
    int64_t a_ref = 0, a_got = 0;
    for (int64_t i = 0; i < n_vocab; ++i) {
      const double d = std::fabs(double(got[i]) - r[i]);
      st.max_abs = std::max(st.max_abs, d);
      sum_abs += d;
      sum_ref += r[i];
      sum_ref2 += double(r[i]) * r[i];
      if (r[i] > r[a_ref]) a_ref = i;
      if (got[i] > got[a_got]) a_got = i;
    }
    same += a_ref == a_got;
    ++next;
  }
  EXPECT_EQ(next, positions.size());
  const double n = static_cast<double>(next * n_vocab);
  st.rows = static_cast<int>(next);
  st.mean_abs = sum_abs / n;
  st.sigma = std::sqrt(sum_ref2 / n - (sum_ref / n) * (sum_ref / n));
  st.top1 = static_cast<double>(same) / next;
  return st;
}

void check(const std::string& model_name, const Tolerance& tol) {
  for (const char* prompt : {"p1-short", "p2-long", "p3-mixed"}) {
    SCOPED_TRACE(model_name + " " + prompt);
    const Stats s = compare(model_name, prompt);
    ASSERT_GT(s.rows, 0);
    if (tol.max_abs > 0) {
      EXPECT_LE(s.max_abs, tol.max_abs);
    }
    if (tol.max_sigma > 0) {
      EXPECT_LE(s.max_abs / s.sigma, tol.max_sigma);
    }
    if (tol.mean_sigma > 0) {
      EXPECT_LE(s.mean_abs / s.sigma, tol.mean_sigma);
    }
    EXPECT_GE(s.top1, tol.min_top1);
    std::printf("[ logits   ] %-24s %-9s rows %3d  max|d| %.3g  mean|d| %.3g  sigma %.3g  top1 %.3f\n", model_name.c_str(),
                prompt, s.rows, s.max_abs, s.mean_abs, s.sigma, s.top1);
  }
}

// f32 weights: llama.cpp agrees with a float64 numpy pass within 2e-5 here.
TEST(LlamaLogits, Stories260K) { check("stories260K", {2e-4, 0, 0, 1.0}); }
TEST(LlamaLogits, SynthLlamaF32) { check("synth-llama-256.F32", {2e-4, 0, 0, 1.0}); }
TEST(LlamaLogits, SynthQwen2F32) { check("synth-qwen2-256.F32", {2e-4, 0, 0, 1.0}); }
// The qwen3 reference ran with an F16 KV cache (ik_llama.cpp): its rounding, not ours.
// (a float64 numpy pass differs from it by up to 1.7e-3; we differ by 1.7e-3 too).
TEST(LlamaLogits, SynthQwen3F32) { check("synth-qwen3-256.F32", {2.5e-3, 0, 0, 1.0}); }
// f16 weights: activations are rounded to f16 for the matmuls, as llama.cpp does.
TEST(LlamaLogits, F16Weights) {
  check("synth-llama-256.F16", {0, 0.005, 0.001, 0.97});
  check("TinyStories-656K.f16", {0, 0.005, 0.001, 0.97});
  check("llama-2-tiny-random", {0, 0.005, 0.001, 0.97});
}
// Quantized weights: activations quantized to q8_0 / q8_K; see the reference README.
TEST(LlamaLogits, QuantizedWeights) {
  for (const char* m : {"synth-llama-256.Q8_0", "synth-llama-256.Q4_0", "synth-llama-256.Q4_K_M", "TinyStories-656K-Q8_0"})
    check(m, {0, 0.2, 0.03, 0.95});
}
// On AVX-512 VNNI the Q4_0, Q8_0, Q4_K and Q6_K matrices run through the eight-row
// repacked kernels, so the logits above were computed by them: check that they were in
// use for every matrix of those types.
TEST(LlamaLogits, QuantizedMatricesAreRepackedOnAvx512) {
  for (const char* type : {"Q4_0", "Q8_0", "Q4_K_M", "Q5_K_M"}) {
    auto m = Model::load((test::reference_dir() / "quant/synth-q-256" / ("synth-q-256." + std::string(type) + ".gguf")).string());
    ASSERT_TRUE(m.ok()) << m.message();
    const bool avx512 = active_isa() >= Isa::Avx512;
    EXPECT_EQ(m.value()->layers[0].wq.packed != nullptr, avx512) << type;
    for (const LayerWeights& L : m.value()->layers)
      for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
        const gguf::GgmlType t = w->info->type;
        const bool repackable = t == gguf::GgmlType::Q4_0 || t == gguf::GgmlType::Q8_0 || t == gguf::GgmlType::Q4_K ||
                                t == gguf::GgmlType::Q5_K || t == gguf::GgmlType::Q6_K;
        EXPECT_EQ(w->packed != nullptr, avx512 && repackable) << type << " " << w->info->name;
      }
  }
}

}  // namespace
}  // namespace hearth::model

namespace hearth::model {
namespace {

// Every quantization type end to end: the 21 llama-quantize outputs of synth-q-256 run
// through the engine; logits stay close to the F32 model's, the bound loosening with
// fewer bits (relative to the spread of the F32 logits).
// Every position's logits of a short story prompt, one token at a time.
void logits_of(const path& p, std::vector<float>& out) {
  auto m = Model::load(p.string());
  ASSERT_TRUE(m.ok()) << m.message();
  auto toks = m.value()->vocab().tokenize("Once upon a time there was a little girl", true, true);
  ASSERT_TRUE(toks.ok());
  Context ctx(*m.value(), 32, 2);
  out.clear();
  for (TokenId t : toks.value()) {
    ASSERT_TRUE(ctx.eval(t).ok());
    out.insert(out.end(), ctx.logits().begin(), ctx.logits().end());
  }
}

// A ternary model runs through the TQ1_0 / TQ2_0 kernels: its logits equal, up to the
// activations' Q8_K rounding, those of the same weights written out as f32. (synth-llama-256:
// on synth-q-256, whose random weights amplify every rounding, Q8_K activations alone move
// the logits by a third, for Q4_K_M as much as for the ternary types.)
TEST(LlamaLogits, TernaryModelsMatchTheirWeightsAsF32) {
  test::TempDir tmp;
  for (const auto& [type, ftype] : {std::pair{"TQ1_0", quant::FileType::TQ1_0}, std::pair{"TQ2_0", quant::FileType::TQ2_0}}) {
    SCOPED_TRACE(type);
    const path src = tmp.path() / (std::string(type) + ".gguf");
    quant::QuantizeOptions opt;
    opt.ftype = ftype;
    ASSERT_TRUE(quant::quantize_model((test::reference_dir() / "logits/models/synth-llama-256.F32.gguf").string(), src.string(), opt).ok());
    auto f = gguf::GgufFile::open(src.string());
    ASSERT_TRUE(f.ok()) << f.message();
    gguf::GgufWriter w(f.value().metadata);
    std::vector<std::vector<float>> keep;
    int ternary = 0;
    for (const gguf::TensorInfo& t : f.value().tensors) {
      auto data = f.value().tensor_data(t);
      if (t.type != gguf::GgmlType::TQ1_0 && t.type != gguf::GgmlType::TQ2_0) {
        ASSERT_TRUE(w.add_tensor(t.name, t.type, t.shape(), data).ok());
        continue;
      }
      ++ternary;
      keep.emplace_back(t.n_elements);
      ASSERT_TRUE(quant::dequantize(t.type, data.data(), keep.back().data(), static_cast<int64_t>(t.n_elements)).ok());
      ASSERT_TRUE(w.add_tensor(t.name, gguf::GgmlType::F32, t.shape(),
                               {reinterpret_cast<const uint8_t*>(keep.back().data()), t.n_elements * 4}).ok());
    }
    EXPECT_EQ(ternary, 14);  // every layer matrix; token_embd q4_K, output q6_K
    const path f32 = tmp.path() / (std::string(type) + ".as-f32.gguf");
    ASSERT_TRUE(w.write(f32.string()).ok());
    std::vector<float> got, want;
    logits_of(src, got);
    logits_of(f32, want);
    ASSERT_EQ(got.size(), want.size());
    double mad = 0, mag = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      mad += std::fabs(double(got[i]) - want[i]);
      mag += std::fabs(want[i]);
    }
    // Measured 2.6 % (the activations' 8-bit rounding through two layers); a value read from
    // the wrong place would move them by about their own size.
    EXPECT_LT(mad / mag, 0.05) << "mean |d| " << mad / got.size() << ", mean |logit| " << mag / got.size();
  }
}

TEST(LlamaLogits, EveryQuantizedTypeRunsCloseToF32) {
  const path dir = test::reference_dir() / "quant/synth-q-256";
  std::vector<float> ref;
  logits_of(dir / "synth-q-256.f32.gguf", ref);
  ASSERT_FALSE(ref.empty());
  double mean = 0, var = 0;
  for (float v : ref) mean += v;
  mean /= ref.size();
  for (float v : ref) var += (v - mean) * (v - mean);
  const double sigma = std::sqrt(var / ref.size());
  int n = 0;
  for (const auto& e : test::fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (e.path().extension() != ".gguf" || f == "synth-q-256.f32.gguf") continue;
    std::vector<float> got;
    logits_of(e.path(), got);
    ASSERT_EQ(got.size(), ref.size()) << f;
    double mad = 0;
    for (size_t i = 0; i < got.size(); ++i) mad += std::fabs(double(got[i]) - ref[i]);
    mad /= got.size();
    const bool low_bits = f.find("Q2_K") != std::string::npos || f.find("Q3_K") != std::string::npos;
    EXPECT_LT(mad / sigma, low_bits ? 0.5 : 0.15) << f;
    std::printf("[ quant e2e] %-34s mean|d| / sigma = %.4f\n", f.c_str(), mad / sigma);
    ++n;
  }
  EXPECT_EQ(n, 21);
}

}  // namespace
}  // namespace hearth::model

namespace hearth::model {
namespace {

// Micro-batched evaluation is the same computation as one token at a time: every
// position's logits bit for bit, for prompts spanning several micro-batches and a
// partial one, starting from an empty and from a non-empty cache, for every kind of
// matrix path (f32, packed q4_0, q8_0, q4_K, q5_K and q6_K, f16).
TEST(LlamaBatch, MicroBatchesGiveTheSameLogitsAsSingleTokens) {
  const path q = test::reference_dir() / "quant/synth-q-256";
  for (const path& p : {q / "synth-q-256.f32.gguf", q / "synth-q-256.Q4_0.gguf", q / "synth-q-256.Q8_0.gguf",
                        q / "synth-q-256.Q4_K_M.gguf", q / "synth-q-256.Q5_K_M.gguf", q / "synth-q-256.F16.gguf"}) {
    auto m = Model::load(p.string());
    ASSERT_TRUE(m.ok()) << m.message();
    const int64_t V = m.value()->hparams().n_vocab;
    std::vector<TokenId> toks;
    for (int i = 0; i < 2 * Context::kUbatch + 7; ++i) toks.push_back(static_cast<TokenId>((i * 7919 + 13) % V));
    for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
      Context one(*m.value(), 128, 2, kv), batch(*m.value(), 128, 2, kv);
      std::vector<float> want, got;
      for (TokenId t : toks) {
        ASSERT_TRUE(one.eval(t).ok());
        want.insert(want.end(), one.logits().begin(), one.logits().end());
      }
      // Five tokens alone first, so the batches start at a non-zero position.
      ASSERT_TRUE(batch.eval(std::span<const TokenId>(toks).first(5), [&](size_t, const float* l) { got.insert(got.end(), l, l + V); }).ok());
      size_t calls = 0;
      ASSERT_TRUE(batch
                      .eval(std::span<const TokenId>(toks).subspan(5),
                            [&](size_t i, const float* l) {
                              EXPECT_EQ(i, calls++);
                              got.insert(got.end(), l, l + V);
                            })
                      .ok());
      EXPECT_EQ(batch.n_past(), static_cast<int>(toks.size()));
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << p.filename();
      EXPECT_EQ(std::memcmp(batch.logits().data(), one.logits().data(), V * sizeof(float)), 0) << p.filename();
    }
  }
}

// A reference prompt's model and tokens evaluated with an F32 cache (a) and with
// `other` (b): every position's logits. Empty on a failure (reported).
struct CacheRun {
  std::vector<TokenId> tokens;
  std::vector<float> a, b;
  int64_t n_vocab = 0;
};
CacheRun run_with_caches(simdjson::dom::element meta, KvType other) {
  CacheRun run;
  auto m = Model::load((test::reference_dir().parent_path() / std::string_view(meta["model"])).string());
  EXPECT_TRUE(m.ok()) << m.message();
  if (!m.ok()) return {};
  for (auto t : meta["tokens"].get_array()) run.tokens.push_back(static_cast<TokenId>(int64_t(t)));
  run.n_vocab = m.value()->hparams().n_vocab;
  for (auto [kv, out] : {std::pair{KvType::F32, &run.a}, std::pair{other, &run.b}}) {
    Context ctx(*m.value(), static_cast<int>(run.tokens.size()), 2, kv);
    Status s = ctx.eval(std::span<const TokenId>(run.tokens), [&](size_t, const float* l) { out->insert(out->end(), l, l + run.n_vocab); });
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok()) return {};
  }
  return run;
}

// The F16 cache against the F32 one on stories260K's long prompt: it must round (the
// logits move) by about as much as llama.cpp's F16 cache moves them (the reference
// records max |d| 0.0357 and max |d| / row range 0.00139), and keep the argmax.
TEST(LlamaBatch, F16CacheMovesLogitsLikeLlamaCpp) {
  simdjson::dom::parser parser;
  simdjson::dom::element meta = parser.load((test::reference_dir() / "logits/stories260K/p2-long.json").string());
  const double ref_max = double(meta["vs_other_kv_cache_type"]["max_abs_diff"]);
  CacheRun run = run_with_caches(meta, KvType::F16);
  ASSERT_FALSE(run.a.empty());
  const std::vector<float>&a = run.a, &b = run.b;
  const std::vector<TokenId>& tokens = run.tokens;
  const int64_t V = run.n_vocab;
  double max_abs = 0;
  size_t same = 0;
  for (size_t r = 0; r < tokens.size(); ++r) {
    const float* x = &a[r * V];
    const float* y = &b[r * V];
    for (int64_t i = 0; i < V; ++i) max_abs = std::max(max_abs, std::fabs(double(x[i]) - y[i]));
    same += std::max_element(x, x + V) - x == std::max_element(y, y + V) - y;
  }
  EXPECT_GT(max_abs, ref_max / 2) << "the F16 cache rounds less than llama.cpp's";
  EXPECT_LT(max_abs, ref_max * 2);
  EXPECT_GE(same, tokens.size() - 2);
  std::printf("[ f16 kv   ] stories260K p2-long: max|d| vs f32 %.4g (llama.cpp %.4g), argmax equal %zu/%zu\n", max_abs, ref_max, same,
              tokens.size());
}

// The Q8_0 cache against the F32 one on the synthetic llama's long prompt: the logits
// move (k and v rounded to 8 bits, q too for its products with k) by a small fraction of
// their spread, the argmax stays almost everywhere; a model whose head size is not a
// multiple of 32 cannot have one, and says so.
TEST(LlamaBatch, Q8_0CacheStaysCloseToF32) {
  simdjson::dom::parser parser;
  simdjson::dom::element meta = parser.load((test::reference_dir() / "logits/synth-llama-256.F32/p2-long.json").string());
  CacheRun run = run_with_caches(meta, KvType::Q8_0);
  ASSERT_FALSE(run.a.empty());
  const std::vector<float>&a = run.a, &b = run.b;
  const std::vector<TokenId>& tokens = run.tokens;
  const int64_t V = run.n_vocab;
  double max_rel = 0, max_abs = 0;
  size_t same = 0;
  for (size_t r = 0; r < tokens.size(); ++r) {
    const float* x = &a[r * V];
    const float* y = &b[r * V];
    const float range = *std::max_element(x, x + V) - *std::min_element(x, x + V);
    for (int64_t i = 0; i < V; ++i) {
      max_abs = std::max(max_abs, std::fabs(double(x[i]) - y[i]));
      max_rel = std::max(max_rel, std::fabs(double(x[i]) - y[i]) / range);
    }
    same += std::max_element(x, x + V) - x == std::max_element(y, y + V) - y;
  }
  EXPECT_GT(max_abs, 0.0) << "the Q8_0 cache should round";
  EXPECT_LT(max_rel, 0.02);
  EXPECT_GE(same, tokens.size() * 95 / 100);
  std::printf("[ q8_0 kv  ] synth-llama-256 p2-long: max|d| vs f32 %.4g (%.3g of the row range), argmax equal %zu/%zu\n", max_abs,
              max_rel, same, tokens.size());
  auto small = Model::load((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(Context::unsupported(*small.value(), KvType::Q8_0),
            "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is 8");
  EXPECT_EQ(Context::unsupported(*small.value(), KvType::F16), "");
}

// A micro-batched call checks all its tokens and the free space before evaluating any.
TEST(LlamaBatch, RejectsBadTokensAndOverflowBeforeEvaluating) {
  auto m = Model::load((test::reference_dir() / "quant/synth-q-256/synth-q-256.Q8_0.gguf").string());
  ASSERT_TRUE(m.ok()) << m.message();
  Context ctx(*m.value(), 8, 2);
  const std::vector<TokenId> bad{1, 2, static_cast<TokenId>(m.value()->hparams().n_vocab)};
  Status s = ctx.eval(std::span<const TokenId>(bad));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("outside the vocabulary"), std::string::npos) << s.message();
  EXPECT_EQ(ctx.n_past(), 0);
  const std::vector<TokenId> nine(9, 1);
  s = ctx.eval(std::span<const TokenId>(nine));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("do not fit"), std::string::npos) << s.message();
  EXPECT_EQ(ctx.n_past(), 0);
}

}  // namespace
}  // namespace hearth::model

#include "gguf/writer.h"

namespace hearth::model {
namespace {

// synth-llama-256.F32 rewritten with extra metadata and, optionally, a rope_freqs tensor.
path rope_variant(const test::TempDir& dir, const std::string& name, const std::vector<std::pair<std::string, gguf::Value>>& md_extra,
                  const std::vector<float>* freqs) {
  auto f = gguf::GgufFile::open((test::reference_dir() / "logits/models/synth-llama-256.F32.gguf").string());
  EXPECT_TRUE(f.ok());
  gguf::Metadata md = f.value().metadata;
  for (const auto& [k, v] : md_extra) md.set(k, v);
  gguf::GgufWriter w(md);
  for (const auto& t : f.value().tensors) EXPECT_TRUE(w.add_tensor(t.name, t.type, t.shape(), f.value().tensor_data(t)).ok());
  if (freqs) {
    const uint64_t shape[] = {freqs->size()};
    EXPECT_TRUE(w.add_tensor("rope_freqs.weight", gguf::GgmlType::F32, shape,
                             {reinterpret_cast<const uint8_t*>(freqs->data()), freqs->size() * sizeof(float)})
                    .ok());
  }
  path p = dir.path() / (name + ".gguf");
  EXPECT_TRUE(w.write(p.string()).ok());
  return p;
}

std::vector<float> all_logits(const path& p, std::string* error = nullptr) {
  auto m = Model::load(p.string());
  if (!m.ok()) {
    if (error) *error = m.message();
    return {};
  }
  std::vector<TokenId> toks;
  for (int i = 0; i < 40; ++i) toks.push_back(static_cast<TokenId>((i * 37 + 5) % m.value()->hparams().n_vocab));
  Context ctx(*m.value(), 64, 2);
  std::vector<float> out;
  const int64_t V = m.value()->hparams().n_vocab;
  EXPECT_TRUE(ctx.eval(std::span<const TokenId>(toks), [&](size_t, const float* l) { out.insert(out.end(), l, l + V); }).ok());
  return out;
}

// RoPE scaling as the model file asks for it: YaRN with factor 1 (up to rounding) and
// rope_freqs of ones change nothing; rope_freqs of 2 is linear scaling by 2 exactly; YaRN with factor 4
// leaves position 0 (no rotation, a single key) alone and moves every later position;
// a rope_freqs tensor of the wrong shape is refused by name.
TEST(LlamaRope, ScalingFromTheModelFile) {
  test::TempDir dir;
  const std::vector<float> base = all_logits(test::reference_dir() / "logits/models/synth-llama-256.F32.gguf");
  ASSERT_FALSE(base.empty());
  auto f = gguf::GgufFile::open((test::reference_dir() / "logits/models/synth-llama-256.F32.gguf").string());
  auto hp = read_hparams(f.value());
  ASSERT_TRUE(hp.ok());
  const size_t pairs = hp.value().rope_dim / 2, V = hp.value().n_vocab;

  const std::vector<float> yarn1 = all_logits(rope_variant(
      dir, "yarn1", {{"llama.rope.scaling.type", gguf::Value::string("yarn")}, {"llama.rope.scaling.factor", gguf::Value::of<float>(1.f)}},
      nullptr));
  // (t (1 - ramp) + t ramp may differ from t in its last bit, as in ggml.)
  ASSERT_EQ(yarn1.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) ASSERT_NEAR(yarn1[i], base[i], 1e-4) << i;
  const std::vector<float> ones(pairs, 1.f), twos(pairs, 2.f);
  EXPECT_EQ(all_logits(rope_variant(dir, "ones", {}, &ones)), base);
  const std::vector<float> by_freqs = all_logits(rope_variant(dir, "twos", {}, &twos));
  const std::vector<float> linear2 = all_logits(rope_variant(
      dir, "linear2",
      {{"llama.rope.scaling.type", gguf::Value::string("linear")}, {"llama.rope.scaling.factor", gguf::Value::of<float>(2.f)}}, nullptr));
  EXPECT_EQ(by_freqs, linear2);
  EXPECT_NE(linear2, base);

  const std::vector<float> yarn4 = all_logits(rope_variant(dir, "yarn4",
                                                           {{"llama.rope.scaling.type", gguf::Value::string("yarn")},
                                                            {"llama.rope.scaling.factor", gguf::Value::of<float>(4.f)},
                                                            {"llama.rope.scaling.original_context_length", gguf::Value::of<uint32_t>(64)}},
                                                           nullptr));
  ASSERT_EQ(yarn4.size(), base.size());
  EXPECT_TRUE(std::equal(yarn4.begin(), yarn4.begin() + V, base.begin())) << "position 0 has nothing to rotate against";
  for (size_t r = 1; r < base.size() / V; ++r)
    EXPECT_FALSE(std::equal(yarn4.begin() + r * V, yarn4.begin() + (r + 1) * V, base.begin() + r * V)) << "position " << r;

  const std::vector<float> short_freqs(pairs - 1, 1.f);
  std::string err;
  EXPECT_TRUE(all_logits(rope_variant(dir, "bad", {}, &short_freqs), &err).empty());
  EXPECT_NE(err.find("tensor 'rope_freqs.weight' has shape [" + std::to_string(pairs - 1) + "], expected [" + std::to_string(pairs) + "]"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace hearth::model
