// hearth imatrix against llama-imatrix: the statistics, the two file formats, merging, and
// the values computed over real models (tests/data/imatrix/README.md says how the
// references were made and why the tolerances are what they are).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "gguf/gguf.h"
#include "model/imatrix.h"
#include "quant/imatrix_stats.h"
#include "testdata.h"

namespace hearth {
namespace {

using test::fs::path;

path own_refs() { return path(HEARTH_SOURCE_DIR) / "tests/data/imatrix"; }
path shared_refs() { return test::reference_dir() / "imatrix"; }
path text_dir() { return test::testdata_dir() / "text"; }

quant::ImatrixFile read(const path& p) {
  auto f = quant::read_imatrix_file(p.string());
  EXPECT_TRUE(f.ok()) << f.message();
  return f.ok() ? std::move(f.value()) : quant::ImatrixFile{};
}

// Every entry of `want` is in `got` with the same counts exactly and sums within `max_rel`
// of each element (relative to the reference) and `mean_rel` on average per tensor.
void expect_close(const quant::ImatrixFile& got, const quant::ImatrixFile& want, double max_rel, double mean_rel) {
  ASSERT_EQ(got.entries.size(), want.entries.size());
  EXPECT_EQ(got.chunk_count, want.chunk_count);
  EXPECT_EQ(got.chunk_size, want.chunk_size);
  EXPECT_EQ(got.datasets, want.datasets);
  for (const auto& [name, w] : want.entries) {
    auto it = got.entries.find(name);
    ASSERT_NE(it, got.entries.end()) << name;
    const auto& g = it->second;
    EXPECT_EQ(g.counts, w.counts) << name;
    ASSERT_EQ(g.sums.size(), w.sums.size()) << name;
    double worst = 0, diff = 0, total = 0;
    for (size_t i = 0; i < w.sums.size(); ++i) {
      const double d = std::fabs(static_cast<double>(g.sums[i]) - w.sums[i]);
      worst = std::max(worst, d / std::max(std::fabs(static_cast<double>(w.sums[i])), 1e-30));
      diff += d;
      total += std::fabs(w.sums[i]);
    }
    EXPECT_LE(worst, max_rel) << name;
    EXPECT_LE(diff / total, mean_rel) << name;
  }
}

struct ImatrixRun {
  quant::ImatrixStats stats{128};
  model::ImatrixSummary summary;
};

// hearth imatrix MODEL -f TEXT -c 128 with `o`'s other settings, the dataset named as typed.
ImatrixRun run(const path& model_path, const std::string& text_name, model::ImatrixOptions o) {
  ImatrixRun r;
  auto m = model::Model::load(model_path.string());
  EXPECT_TRUE(m.ok()) << m.message();
  if (!m.ok()) return r;
  const std::string text = test::read_text(text_dir() / text_name);
  o.n_ctx = 128;
  o.threads = 2;
  r.stats.add_dataset(text_name);
  auto s = model::compute_imatrix(*m.value(), text, o, r.stats);
  EXPECT_TRUE(s.ok()) << s.message();
  if (s.ok()) r.summary = s.value();
  return r;
}

quant::ImatrixFile saved(const quant::ImatrixStats& stats, const std::string& format = "gguf") {
  test::TempDir tmp;
  const path p = tmp.path() / ("out." + format);
  Status st = format == "dat" ? stats.save_dat(p.string()) : stats.save_gguf(p.string());
  EXPECT_TRUE(st.ok()) << st.message();
  return read(p);
}

model::ImatrixOptions f32_cache() {
  model::ImatrixOptions o;
  o.kv = model::KvType::F32;
  o.flash_attn = false;
  return o;
}

// Where llama.cpp computes in float (F32 weights and an F32 cache), the values agree to
// float rounding: within 1e-5 of every element.
TEST(Imatrix, MatchesLlamaImatrixWithAnF32Cache) {
  const path synth = test::reference_dir() / "logits/models/synth-llama-256.F32.gguf";
  ImatrixRun a = run(test::testdata_dir() / "models/stories260K.gguf", "tinystories_sample.txt", f32_cache());
  expect_close(saved(a.stats), read(own_refs() / "stories260K.f32kv.imatrix.gguf"), 1e-5, 2e-6);
  EXPECT_NEAR(a.summary.ppl, 6.8453, 5e-4);  // llama-imatrix's "Final estimate: PPL = 6.8453 +/- 0.74214"
  EXPECT_NEAR(a.summary.ppl_err, 0.74214, 5e-5);
  EXPECT_EQ(a.summary.n_chunks, 14);
  ImatrixRun b = run(synth, "tinystories_sample.txt", f32_cache());
  expect_close(saved(b.stats), read(own_refs() / "synth-llama-256.f32kv.imatrix.gguf"), 1e-5, 2e-6);
  EXPECT_NEAR(b.summary.ppl, 682.5349, 5e-4);
}

// The default: an F16 cache read as llama.cpp's flash attention reads it (what llama-imatrix
// does on a CPU today). Against a run of one sequence per batch (-b 128): within 1e-4 of each
// element and 2e-5 on average — an F16 cache rounds K and V, and a last-bit difference before
// the rounding (the float products' summation order differs from llama.cpp's) sometimes
// moves a value by a half's step (2^-11 = 4.9e-4 relative); measured 1.8e-5 / 3e-6 and, after
// the float dot products' order changed, 5e-5 / 7e-6.
TEST(Imatrix, MatchesLlamaImatrixFlashAttention) {
  const path synth = test::reference_dir() / "logits/models/synth-llama-256.F32.gguf";
  ImatrixRun r = run(synth, "tinystories_sample.txt", {});
  expect_close(saved(r.stats), read(own_refs() / "synth-llama-256.b128.imatrix.gguf"), 1e-4, 2e-5);
  EXPECT_NEAR(r.summary.ppl, 682.5228, 5e-3);
}

// --process-output adds output.weight, whose input is every token's final norm.
TEST(Imatrix, ProcessOutputCollectsTheOutputMatrix) {
  const path synth = test::reference_dir() / "logits/models/synth-llama-256.F32.gguf";
  model::ImatrixOptions o = f32_cache();
  o.process_output = true;
  o.max_chunks = 4;
  ImatrixRun r = run(synth, "tinystories_sample.txt", o);
  const quant::ImatrixFile got = saved(r.stats);
  EXPECT_EQ(got.entries.count("output.weight"), 1u);
  expect_close(got, read(own_refs() / "synth-llama-256.f32kv.output-4chunks.imatrix.gguf"), 1e-5, 2e-6);
}

// Against the shared references (llama-imatrix's defaults: 16 sequences per batch, F16 cache,
// flash attention): the same file layout byte for byte up to the data, the same counts, and
// values within llama.cpp's own spread — two runs of that llama-imatrix on stories260K differ
// by up to 3.1e-4 (its F16 flash-attention path for heads of 8 accumulates V in halves).
TEST(Imatrix, MatchesTheSharedReferencesWithinLlamaCppsOwnSpread) {
  ImatrixRun r = run(test::testdata_dir() / "models/stories260K.gguf", "tinystories_sample.txt", {});
  test::TempDir tmp;
  const path out = tmp.path() / "imatrix.gguf";
  ASSERT_TRUE(r.stats.save_gguf(out.string()).ok());
  const auto got = test::read_bytes(out), want = test::read_bytes(shared_refs() / "stories260K.imatrix.gguf");
  ASSERT_EQ(got.size(), want.size());
  constexpr size_t kDataOffset = 4416;  // `hearth gguf info`: keys, tensor infos and padding
  EXPECT_EQ(std::memcmp(got.data(), want.data(), kDataOffset), 0);
  expect_close(read(out), read(shared_refs() / "stories260K.imatrix.gguf"), 2e-3, 3e-4);
  EXPECT_NEAR(r.summary.ppl, 6.8457, 5e-3);  // "Final estimate: PPL = 6.8457 +/- 0.74219"
}

TEST(ImatrixStats, AccumulatesSquaresRowsAndChunks) {
  quant::ImatrixStats s(2);
  const float x[] = {1, 2, 3, -1, 0.5f, 2};  // two rows of three
  ASSERT_TRUE(s.add("blk.0.ffn_up.weight", x, 3, 2).ok());
  ASSERT_TRUE(s.add("blk.0.ffn_up.weight", x, 3, 1).ok());
  const auto& e = s.entries().at("blk.0.ffn_up.weight");
  EXPECT_EQ(e.sums, (std::vector<float>{1 + 1 + 1, 4 + 0.25f + 4, 9 + 4 + 9}));
  EXPECT_EQ(e.counts, std::vector<int64_t>{3});
  EXPECT_EQ(s.chunk_count(), 1);  // 3 rows of chunks of 2
  Status bad = s.add("blk.0.ffn_up.weight", x, 2, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("inconsistent size for blk.0.ffn_up.weight (3 vs 2)"), std::string::npos) << bad.message();
  const float inf[] = {INFINITY, 1, 1};
  Status nan = s.add("blk.1.attn_q.weight", inf, 3, 1);
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.message(), "imatrix: non-finite values detected in blk.1.attn_q.weight");
}

// Both formats read back as the quantizer reads them: GGUF sums / counts; the legacy file
// (sum / count) * ncall with ncall, which the quantizer divides out again.
TEST(ImatrixStats, BothFormatsRoundTripThroughTheQuantizersReader) {
  quant::ImatrixStats s(4);
  std::vector<float> x(8 * 5);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  ASSERT_TRUE(s.add("blk.0.attn_k.weight", x.data(), 8, 5).ok());
  s.add_dataset("calib.txt");
  test::TempDir tmp;
  for (const char* fmt : {"gguf", "dat"}) {
    SCOPED_TRACE(fmt);
    const path p = tmp.path() / (std::string("im.") + fmt);
    ASSERT_TRUE((std::string(fmt) == "dat" ? s.save_dat(p.string()) : s.save_gguf(p.string())).ok());
    auto im = quant::load_imatrix(p.string());
    ASSERT_TRUE(im.ok()) << im.message();
    EXPECT_EQ(im.value().datasets, std::vector<std::string>{"calib.txt"});
    EXPECT_EQ(im.value().chunk_count, 1);
    const auto* v = im.value().find("blk.0.attn_k.weight");
    ASSERT_NE(v, nullptr);
    const auto& sums = s.entries().at("blk.0.attn_k.weight").sums;
    for (size_t j = 0; j < 8; ++j) EXPECT_NEAR((*v)[j], sums[j] / 5, 1e-6 * sums[j]) << j;
  }
}

// Merging as llama-imatrix's --in-file: a GGUF file adds its sums and counts; a legacy one
// comes back as (value × chunk size), ncall × chunk size — so the reference .dat merged
// alone gives the reference GGUF's sums again.
TEST(ImatrixStats, MergesEarlierFilesAsLlamaImatrix) {
  const quant::ImatrixFile g = read(shared_refs() / "stories260K.imatrix.gguf");
  quant::ImatrixStats twice(128);
  ASSERT_TRUE(twice.merge(g, "a").ok());
  ASSERT_TRUE(twice.merge(g, "b").ok());
  EXPECT_EQ(twice.chunk_count(), 28);
  for (const auto& [name, e] : g.entries) {
    const auto& m = twice.entries().at(name);
    EXPECT_EQ(m.counts, std::vector<int64_t>{2 * std::lround(e.counts[0])}) << name;
    for (size_t i = 0; i < e.sums.size(); ++i) EXPECT_EQ(m.sums[i], 2 * e.sums[i]) << name;
  }
  quant::ImatrixStats legacy(128);
  ASSERT_TRUE(legacy.merge(read(shared_refs() / "stories260K.imatrix.dat"), "dat").ok());
  expect_close(saved(legacy), g, 1e-6, 1e-7);

  // A file of another model: the sizes differ, and the error names the file and the tensor.
  quant::ImatrixStats other(128);
  ASSERT_TRUE(other.merge(read(shared_refs() / "synth-q-256.imatrix.gguf"), "synth").ok());
  Status st = other.merge(g, "stories.gguf");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("stories.gguf: mismatched sums size for blk.0.attn_k.weight: 64 != ", 0), 0u) << st.message();
}

// The legacy file as llama-imatrix writes it: the same layout (entries, ncall, trailer),
// byte for byte apart from the values.
TEST(ImatrixStats, LegacyFileHasLlamaImatrixsLayout) {
  ImatrixRun r = run(test::testdata_dir() / "models/stories260K.gguf", "tinystories_sample.txt", f32_cache());
  test::TempDir tmp;
  const path out = tmp.path() / "im.dat";
  ASSERT_TRUE(r.stats.save_dat(out.string()).ok());
  const quant::ImatrixFile got = read(out), want = read(own_refs() / "stories260K.f32kv.imatrix.dat");
  ASSERT_TRUE(got.legacy);
  EXPECT_EQ(test::read_bytes(out).size(), test::read_bytes(own_refs() / "stories260K.f32kv.imatrix.dat").size());
  EXPECT_EQ(got.chunk_count, 14);
  expect_close(got, want, 1e-5, 2e-6);  // counts here are {ncall} = {14}
}

TEST(Imatrix, ErrorsNameTheProblem) {
  auto m = model::Model::load((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(m.ok());
  quant::ImatrixStats s(128);
  model::ImatrixOptions o;
  o.n_ctx = 128;
  auto short_text = model::compute_imatrix(*m.value(), "Once upon a time.", o, s);
  ASSERT_FALSE(short_text.ok());
  EXPECT_EQ(short_text.message().rfind("the text tokenizes to ", 0), 0u) << short_text.message();
  EXPECT_NE(short_text.message().find("a context of 128 needs at least 256"), std::string::npos);
  o.n_ctx = 64;
  auto mismatch = model::compute_imatrix(*m.value(), "x", o, s);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.message(), "the statistics count chunks of 128 tokens, not 64");
  o.n_ctx = 128;
  o.skip_chunks = 100;
  auto skip = model::compute_imatrix(*m.value(), test::read_text(text_dir() / "tinystories_sample.txt"), o, s);
  ASSERT_FALSE(skip.ok());
  EXPECT_EQ(skip.message(), "there will be not enough tokens left after removing 100 chunks");
}

}  // namespace
}  // namespace hearth
