// Embeddings from the runner against llama.cpp's llama-embedding on the same file and
// inputs (tests/data/embeddings: 20 inputs, mean / cls / last pooling, raw vectors; the
// README there gives the commands and the llama.cpp commit). All 20 requests are
// submitted at once, so they are batched together in the runner's slots.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "runner/runner.h"
#include "server/gotemplate.h"
#include "testdata.h"

namespace hearth::runner {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const test::fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::vector<double>> reference(const std::string& pooling) {
  const auto path = test::fs::path(HEARTH_SOURCE_DIR) / "tests/data/embeddings" / ("stories260K." + pooling + ".json");
  auto v = server::tmpl::from_json(test::read_text(path));
  EXPECT_TRUE(v.ok()) << path;
  std::vector<std::vector<double>> out;
  for (const auto& row : *v.value().list) {
    out.emplace_back();
    for (const auto& x : *row.list) out.back().push_back(x.kind == server::tmpl::Value::Kind::Int ? static_cast<double>(x.i) : x.f);
  }
  return out;
}

double cosine_distance(const std::vector<float>& a, const std::vector<double>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / std::sqrt(na * nb);
}

TEST(Embeddings, PooledHiddenStatesMatchLlamaEmbedding) {
  auto loaded = model::Model::load((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  std::shared_ptr<const model::Model> m(std::move(loaded.value()));
  RunnerOptions o;
  o.n_ctx = 256;
  o.parallel = 4;
  o.threads = 2;
  o.kv = model::KvType::F32;  // as the references (-ctk f32 -ctv f32): no F16 rounding on either side
  Runner runner(m, o);
  const auto inputs = lines_of(test::fs::path(HEARTH_SOURCE_DIR) / "tests/data/embeddings/inputs.txt");
  ASSERT_EQ(inputs.size(), 20u);
  for (auto [name, pooling] : {std::pair{"mean", model::Pooling::Mean}, std::pair{"cls", model::Pooling::Cls},
                               std::pair{"last", model::Pooling::Last}}) {
    const auto want = reference(name);
    ASSERT_EQ(want.size(), inputs.size());
    std::vector<std::shared_ptr<Sequence>> seqs;
    for (const std::string& text : inputs) {
      SeqRequest r;
      r.prompt = m->vocab().tokenize(text, true, true).value();
      r.pooling = pooling;
      auto s = runner.submit(std::move(r));
      ASSERT_TRUE(s.ok()) << s.message();
      seqs.push_back(s.value());
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      Event e;
      ASSERT_TRUE(seqs[i]->next(&e, 20s)) << name << " " << i;
      ASSERT_EQ(e.kind, Event::Kind::Done) << e.error;
      ASSERT_EQ(e.embedding.size(), want[i].size()) << name << " " << i;
      EXPECT_LT(cosine_distance(e.embedding, want[i]), 1e-5) << name << " input " << i << ": " << inputs[i];
      // Element by element too, within float summation noise.
      for (size_t d = 0; d < want[i].size(); ++d)
        EXPECT_NEAR(e.embedding[d], want[i][d], 1e-4 * (1 + std::fabs(want[i][d]))) << name << " input " << i << " dim " << d;
      EXPECT_EQ(e.prompt_eval_count, static_cast<int>(m->vocab().tokenize(inputs[i], true, true).value().size()));
    }
  }
}

}  // namespace
}  // namespace hearth::runner
