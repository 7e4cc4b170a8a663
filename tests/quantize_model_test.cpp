// The model quantizer against llama-quantize's own files: whole-file byte identity
// (metadata, tensor order, per-tensor types and data) for every reference output.
#include <gtest/gtest.h>

#include <algorithm>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "quant/model_quantizer.h"
#include "testdata.h"

namespace hearth::quant {
namespace {

using test::fs::path;

// A reference file's bytes as today's llama-quantize writes them: ../quant/ was made by the
// 2025-02 llama.cpp, which wrote quantize.imatrix.entries_count and .chunks_count as int32;
// current llama-quantize (quant-iq/README.md) and Hearth write uint32, the only difference.
std::vector<uint8_t> reference_bytes(const path& p) {
  std::vector<uint8_t> b = test::read_bytes(p);
  for (const std::string key : {"quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"}) {
    auto at = std::search(b.begin(), b.end(), key.begin(), key.end());
    if (at == b.end() || b.end() - at < static_cast<std::ptrdiff_t>(key.size() + 4)) continue;
    uint8_t* type = &*(at + static_cast<std::ptrdiff_t>(key.size()));
    if (type[0] == 5 && type[1] == 0 && type[2] == 0 && type[3] == 0) type[0] = 4;  // INT32 -> UINT32
  }
  return b;
}

// Quantizes `src` as `type` into a temp file and compares it with `want` byte for byte.
void expect_same_file(const path& src, const path& want, const std::string& type, const Imatrix* im = nullptr,
                      const std::string& im_path = {}) {
  test::TempDir tmp;
  auto ft = parse_file_type(type);
  ASSERT_TRUE(ft.has_value()) << type;
  QuantizeOptions opt;
  opt.ftype = ft->ftype;
  opt.threads = 2;
  opt.imatrix = im;
  opt.imatrix_path = im_path;
  path out = tmp.path() / "out.gguf";
  auto r = quantize_model(src.string(), out.string(), opt);
  ASSERT_TRUE(r.ok()) << want.filename() << ": " << r.message();
  auto a = test::read_bytes(out), b = reference_bytes(want);
  if (a != b) {
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    ADD_FAILURE() << want.filename() << ": differs from llama-quantize's file at byte " << i << " (sizes " << a.size()
                  << " vs " << b.size() << ")";
  }
}

TEST(QuantizeModel, SyntheticModelEveryTypeWithAndWithoutImatrix) {
  path dir = test::reference_dir() / "quant/synth-q-256";
  auto im = load_imatrix((dir / "synth-q-256.imatrix.dat").string());
  ASSERT_TRUE(im.ok()) << im.message();
  int n = 0;
  for (const auto& e : test::fs::directory_iterator(dir)) {
    std::string f = e.path().filename().string();
    const std::string prefix = "synth-q-256.";
    if (e.path().extension() != ".gguf" || f == "synth-q-256.f32.gguf") continue;
    std::string type = f.substr(prefix.size(), f.find('.', prefix.size()) - prefix.size());
    bool with_im = f.find(".imatrix.gguf") != std::string::npos;
    SCOPED_TRACE(f);
    // The reference was made with "--imatrix synth-q-256.imatrix.dat": the path as typed is stored.
    expect_same_file(dir / "synth-q-256.f32.gguf", e.path(), type, with_im ? &im.value() : nullptr,
                     with_im ? "synth-q-256.imatrix.dat" : "");
    ++n;
  }
  EXPECT_EQ(n, 21);
}

// The newest llama-quantize (quant-iq/, de3ff81) makes the same files with the imatrix.
TEST(QuantizeModel, MatchesTodaysLlamaQuantizeWithAnImatrix) {
  const path dir = test::reference_dir() / "quant/synth-q-256", iq = test::reference_dir() / "quant-iq/synth-q-256";
  auto im = load_imatrix((dir / "synth-q-256.imatrix.dat").string());
  ASSERT_TRUE(im.ok()) << im.message();
  for (const char* type : {"Q4_K_M", "Q2_K_S"}) {
    const path want = iq / (std::string("synth-q-256.") + type + ".imatrix.gguf");
    ASSERT_EQ(test::read_bytes(want), reference_bytes(dir / (std::string("synth-q-256.") + type + ".imatrix.gguf")))
        << "the two llama.cpp builds differ in more than the key types";
    expect_same_file(dir / "synth-q-256.f32.gguf", want, type, &im.value(), "synth-q-256.imatrix.dat");
  }
}

// The ternary types and IQ4_XS: today's llama-quantize's files (quant-iq/), with and without
// the imatrix (which the ternary types do not use; the metadata records it all the same).
TEST(QuantizeModel, TernaryAndIq4XsAreLlamaQuantizesBytes) {
  const path dir = test::reference_dir() / "quant/synth-q-256", iq = test::reference_dir() / "quant-iq/synth-q-256";
  auto im = load_imatrix((dir / "synth-q-256.imatrix.dat").string());
  ASSERT_TRUE(im.ok()) << im.message();
  for (const char* type : {"TQ1_0", "TQ2_0", "IQ4_XS"}) {
    expect_same_file(dir / "synth-q-256.f32.gguf", iq / (std::string("synth-q-256.") + type + ".gguf"), type);
    expect_same_file(dir / "synth-q-256.f32.gguf", iq / (std::string("synth-q-256.") + type + ".imatrix.gguf"), type,
                     &im.value(), "synth-q-256.imatrix.dat");
  }
}

TEST(QuantizeModel, LogitsModels) {
  path dir = test::reference_dir() / "logits/models";
  for (const char* t : {"F16", "Q8_0", "Q4_0", "Q4_K_M"})
    expect_same_file(dir / "synth-llama-256.F32.gguf", dir / (std::string("synth-llama-256.") + t + ".gguf"), t);
}

// TinyStories-656K from F16: rows of 128 make Q4_K_M fall back to q5_0 and q8_0; the
// tied token_embd becomes q8_0.
TEST(QuantizeModel, TinyStoriesFromF16WithFallbacks) {
  path src = test::testdata_dir() / "models/TinyStories-656K.f16.gguf";
  path dir = test::testdata_dir() / "golden/llama.cpp-ref/quant";
  for (const char* t : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K_M", "IQ4_NL"})
    expect_same_file(src, dir / (std::string("TinyStories-656K.") + t + ".gguf"), t);
  auto in = InputModel::open(src.string());
  ASSERT_TRUE(in.ok());
  QuantizeOptions opt;
  opt.ftype = FileType::Q4_K_M;
  auto plan = plan_quantization(in.value(), opt);
  ASSERT_TRUE(plan.ok()) << plan.message();
  int fallbacks = 0;
  for (const TensorPlan& p : plan.value()) fallbacks += p.fallback;
  EXPECT_EQ(fallbacks, 14);  // 12 q4_K -> q5_0 and 2 q6_K -> q8_0; token_embd is q8_0 by the output rule
  // Q2_K on rows of 128: q2_K and q3_K fall back to q4_0, as today's llama-quantize does
  // (the 2025-02 one chose iq4_nl).
  opt.ftype = FileType::Q2_K;
  auto q2 = plan_quantization(in.value(), opt);
  ASSERT_TRUE(q2.ok()) << q2.message();
  int q4 = 0;
  for (const TensorPlan& p : q2.value()) q4 += p.to == gguf::GgmlType::Q4_0 && p.fallback;
  EXPECT_EQ(q4, 14);
}

TEST(QuantizeModel, ErrorsAreNamedAndLeaveNoOutput) {
  test::TempDir tmp;
  path src = test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf";
  path out = tmp.path() / "out.gguf";
  QuantizeOptions opt;
  opt.ftype = FileType::Q2_K_S;
  auto r = quantize_model(src.string(), out.string(), opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("needs an importance matrix"), std::string::npos) << r.message();

  opt.ftype = FileType::Q4_0;
  auto same = quantize_model(src.string(), src.string(), opt);
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.message().find("is the input file"), std::string::npos) << same.message();

  // Already quantized input.
  path q8 = test::reference_dir() / "quant/synth-q-256/synth-q-256.Q8_0.gguf";
  auto re = quantize_model(q8.string(), out.string(), opt);
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.message().find("--allow-requantize"), std::string::npos) << re.message();
  opt.allow_requantize = true;
  auto ok = quantize_model(q8.string(), out.string(), opt);
  EXPECT_TRUE(ok.ok()) << ok.message();
  EXPECT_TRUE(test::fs::exists(out));
  test::fs::remove(out);

  opt.allow_requantize = false;

  // Cancelled: an error, and nothing written.
  std::atomic<bool> cancel{true};
  opt.ftype = FileType::Q4_K_M;
  opt.cancel = &cancel;
  auto c = quantize_model(src.string(), out.string(), opt);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("interrupted"), std::string::npos) << c.message();
  EXPECT_EQ(std::distance(test::fs::directory_iterator(tmp.path()), test::fs::directory_iterator()), 0);
}

TEST(QuantizeModel, FileTypeNames) {
  EXPECT_EQ(parse_file_type("q4_k_m")->ftype, FileType::Q4_K_M);
  EXPECT_EQ(parse_file_type("Q4_K")->ftype, FileType::Q4_K_M);
  EXPECT_EQ(parse_file_type("15")->ftype, FileType::Q4_K_M);
  EXPECT_EQ(parse_file_type("f32")->ftype, FileType::ALL_F32);
  EXPECT_EQ(parse_file_type("0")->ftype, FileType::ALL_F32);
  EXPECT_FALSE(parse_file_type("Q9_X").has_value());
  EXPECT_FALSE(parse_file_type("99").has_value());
}

}  // namespace
}  // namespace hearth::quant

namespace hearth::quant {
namespace {

// The GGUF imatrix format: write the legacy file's entries as <name>.in_sum2 with
// counts of 1, read it back, and quantize with it: the same bytes as llama-quantize
// made from the legacy file.
TEST(QuantizeModel, GgufImatrixGivesTheSameResultAsLegacy) {
  path dir = test::reference_dir() / "quant/synth-q-256";
  auto legacy = load_imatrix((dir / "synth-q-256.imatrix.dat").string());
  ASSERT_TRUE(legacy.ok());
  gguf::Metadata md;
  ASSERT_TRUE(md.add("general.type", gguf::Value::string("imatrix")).ok());
  ASSERT_TRUE(md.add("imatrix.datasets", gguf::Value::strings(legacy.value().datasets)).ok());
  ASSERT_TRUE(md.add("imatrix.chunk_count", gguf::Value::of<uint32_t>(legacy.value().chunk_count)).ok());
  gguf::GgufWriter w(md);
  std::vector<std::string> names;
  for (const auto& [name, v] : legacy.value().values) names.push_back(name);
  std::sort(names.begin(), names.end());
  const float one = 1.0f;
  for (const std::string& name : names) {
    const std::vector<float>& v = legacy.value().values.at(name);
    const uint64_t sums_shape[] = {v.size(), 1}, count_shape[] = {1, 1};
    ASSERT_TRUE(w.add_tensor(name + ".in_sum2", gguf::GgmlType::F32, sums_shape,
                             {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4}).ok());
    ASSERT_TRUE(w.add_tensor(name + ".counts", gguf::GgmlType::F32, count_shape,
                             {reinterpret_cast<const uint8_t*>(&one), 4}).ok());
  }
  test::TempDir tmp;
  path im_path = tmp.path() / "imatrix.gguf";
  ASSERT_TRUE(w.write(im_path.string()).ok());
  auto im = load_imatrix(im_path.string());
  ASSERT_TRUE(im.ok()) << im.message();
  EXPECT_FALSE(im.value().legacy);
  EXPECT_EQ(im.value().values, legacy.value().values);
  EXPECT_EQ(im.value().chunk_count, 14);
  expect_same_file(dir / "synth-q-256.f32.gguf", dir / "synth-q-256.Q4_K_M.imatrix.gguf", "Q4_K_M", &im.value(),
                   "synth-q-256.imatrix.dat");
}

}  // namespace
}  // namespace hearth::quant

namespace hearth::quant {
namespace {

// Writes `src` as a three-shard split model (llama.cpp's layout: metadata in the first
// shard, split.no/split.count/split.tensors.count in each) and returns the first shard.
path write_split(const path& src, const path& dir) {
  auto f = gguf::GgufFile::open(src.string());
  EXPECT_TRUE(f.ok());
  const auto& ts = f.value().tensors;
  const int n = 3;
  path first;
  for (int i = 0; i < n; ++i) {
    gguf::Metadata md = i == 0 ? f.value().metadata : gguf::Metadata{};
    md.set("split.no", gguf::Value::of<uint16_t>(static_cast<uint16_t>(i)));
    md.set("split.count", gguf::Value::of<uint16_t>(n));
    md.set("split.tensors.count", gguf::Value::of<int32_t>(static_cast<int32_t>(ts.size())));
    gguf::GgufWriter w(md);
    for (size_t k = ts.size() * i / n; k < ts.size() * (i + 1) / n; ++k)
      EXPECT_TRUE(w.add_tensor(ts[k].name, ts[k].type, ts[k].shape(), f.value().tensor_data(ts[k])).ok());
    path p = dir / split_path("model", i + 1, n);
    EXPECT_TRUE(w.write(p.string()).ok());
    if (i == 0) first = p;
  }
  return first;
}

TEST(QuantizeModel, SplitInputGivesTheSameFileAsTheWholeModel) {
  test::TempDir tmp;
  path dir = test::reference_dir() / "quant/synth-q-256";
  path first = write_split(dir / "synth-q-256.f32.gguf", tmp.path());
  EXPECT_EQ(first.filename(), "model-00001-of-00003.gguf");
  // The split keys are removed and the tensors merged in llama.cpp's order.
  expect_same_file(first, dir / "synth-q-256.Q4_K_M.gguf", "Q4_K_M");
}

TEST(QuantizeModel, KeepSplitWritesOneOutputShardPerInputShard) {
  test::TempDir tmp;
  path dir = test::reference_dir() / "quant/synth-q-256";
  path first = write_split(dir / "synth-q-256.f32.gguf", tmp.path());
  QuantizeOptions opt;
  opt.ftype = FileType::Q4_0;
  opt.keep_split = true;
  auto r = quantize_model(first.string(), (tmp.path() / "out.gguf").string(), opt);
  ASSERT_TRUE(r.ok()) << r.message();
  auto whole = gguf::GgufFile::open((dir / "synth-q-256.Q4_0.gguf").string());
  ASSERT_TRUE(whole.ok());
  size_t tensors = 0;
  for (int i = 1; i <= 3; ++i) {
    auto shard = gguf::GgufFile::open((tmp.path() / split_path("out", i, 3)).string());
    ASSERT_TRUE(shard.ok()) << shard.message();
    const gguf::Metadata& md = shard.value().metadata;
    EXPECT_EQ(md.get<uint16_t>("split.no").value(), i - 1);
    EXPECT_EQ(md.get<uint16_t>("split.count").value(), 3);
    EXPECT_EQ(md.get<int32_t>("split.tensors.count").value(), 21);
    EXPECT_EQ(md.size(), i == 1 ? whole.value().metadata.size() + 3 : 3u);
    for (const gguf::TensorInfo& t : shard.value().tensors) {
      const gguf::TensorInfo* w = whole.value().find_tensor(t.name);
      ASSERT_NE(w, nullptr);
      EXPECT_EQ(t.type, w->type) << t.name;
      auto a = shard.value().tensor_data(t), b = whole.value().tensor_data(*w);
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << t.name;
      ++tensors;
    }
  }
  EXPECT_EQ(tensors, 21u);
}

TEST(QuantizeModel, SplitErrorsNameTheShard) {
  test::TempDir tmp;
  path first = write_split(test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf", tmp.path());
  auto second = InputModel::open((tmp.path() / split_path("model", 2, 3)).string());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.message().find("give the first shard"), std::string::npos) << second.message();
  test::fs::remove(tmp.path() / split_path("model", 3, 3));
  auto missing = InputModel::open(first.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("shard 3 of 3"), std::string::npos) << missing.message();
}

}  // namespace
}  // namespace hearth::quant
