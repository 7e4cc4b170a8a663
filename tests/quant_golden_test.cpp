// Every tensor of every file llama-quantize made in ../shared/reference (quant/ and the
// logits models), re-made from the F32 source with our reference quantizers, with the
// importance matrix where the file was made with one: same bytes, tensor by tensor.
// (The per-tensor type choice is the model quantizer's job and is tested there.)
#include <gtest/gtest.h>

#include <cstring>

#include "gguf/gguf.h"
#include "quant/imatrix.h"
#include "quant/quant.h"
#include "testdata.h"

namespace hearth::quant {
namespace {

using test::fs::path;

struct Golden {
  path source;
  path output;
  const Imatrix* imatrix;
};

// Compares every tensor of `g.output` with our quantization of the source tensor.
void expect_identical_tensors(const Golden& g, int& tensors_checked) {
  auto src = gguf::GgufFile::open(g.source.string());
  auto out = gguf::GgufFile::open(g.output.string());
  ASSERT_TRUE(src.ok()) << src.message();
  ASSERT_TRUE(out.ok()) << out.message();
  for (const gguf::TensorInfo& t : out.value().tensors) {
    const gguf::TensorInfo* s = src.value().find_tensor(t.name);
    ASSERT_NE(s, nullptr) << t.name;
    ASSERT_EQ(s->type, GgmlType::F32);
    ASSERT_EQ(s->n_elements, t.n_elements);
    std::vector<float> x(s->n_elements);
    std::memcpy(x.data(), src.value().tensor_data(*s).data(), s->n_bytes);
    const std::vector<float>* w = g.imatrix ? g.imatrix->find(t.name) : nullptr;
    if (w) {
      ASSERT_EQ(w->size(), t.ne[0]) << t.name;
    }
    std::vector<uint8_t> got(t.n_bytes);
    auto n = quantize_rows(t.type, x.data(), got.data(), static_cast<int64_t>(t.n_elements / t.ne[0]),
                           static_cast<int64_t>(t.ne[0]), w ? w->data() : nullptr);
    ASSERT_TRUE(n.ok()) << t.name << ": " << n.message();
    auto want = out.value().tensor_data(t);
    size_t i = 0;
    while (i < want.size() && got[i] == want[i]) ++i;
    EXPECT_EQ(i, want.size()) << g.output.filename() << " " << t.name << " (" << gguf::type_info(t.type).name
                              << (w ? ", imatrix" : "") << "): first differing byte " << i << " of " << want.size();
    ++tensors_checked;
  }
}

TEST(QuantGolden, EveryTensorOfEveryLlamaQuantizeOutput) {
  path qdir = test::reference_dir() / "quant/synth-q-256";
  auto im = load_imatrix((qdir / "synth-q-256.imatrix.dat").string());
  ASSERT_TRUE(im.ok()) << im.message();
  EXPECT_EQ(im.value().values.size(), 14u);
  EXPECT_EQ(im.value().chunk_count, 14);
  ASSERT_EQ(im.value().datasets.size(), 1u);
  EXPECT_EQ(im.value().datasets[0], "tinystories_sample.txt");

  int files = 0, tensors = 0;
  for (const auto& e : test::fs::directory_iterator(qdir)) {
    std::string name = e.path().filename().string();
    if (e.path().extension() != ".gguf" || name == "synth-q-256.f32.gguf") continue;
    bool with_imatrix = name.find(".imatrix.gguf") != std::string::npos;
    expect_identical_tensors({qdir / "synth-q-256.f32.gguf", e.path(), with_imatrix ? &im.value() : nullptr}, tensors);
    ++files;
  }
  path ldir = test::reference_dir() / "logits/models";
  for (const char* t : {"F16", "Q8_0", "Q4_0", "Q4_K_M"}) {
    expect_identical_tensors({ldir / "synth-llama-256.F32.gguf", ldir / (std::string("synth-llama-256.") + t + ".gguf"), nullptr},
                             tensors);
    ++files;
  }
  EXPECT_EQ(files, 25);
  EXPECT_GT(tensors, 400);
}

TEST(Imatrix, RejectsGarbageWithAMessage) {
  test::TempDir tmp;
  path p = tmp.path() / "bad.dat";
  {
    std::ofstream(p, std::ios::binary) << "not an imatrix at all";
  }
  auto m = load_imatrix(p.string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("bad.dat"), std::string::npos) << m.message();
  auto missing = load_imatrix((tmp.path() / "none.dat").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace hearth::quant
