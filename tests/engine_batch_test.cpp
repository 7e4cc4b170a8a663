// Many sequences in one forward pass: a batch of rows {token, position, sequence, wants
// logits} from any mix of sequences gives every row the logits that sequence gets alone,
// bit for bit, for every matrix path and every KV cache type.
#include <gtest/gtest.h>

#include <cstring>

#include "model/llama.h"
#include "testdata.h"

namespace hearth::model {
namespace {

using test::fs::path;

std::vector<TokenId> tokens_for(int seed, int n, int64_t V) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<TokenId>((i * 7919 + seed * 104729 + 13) % V));
  return t;
}

// Every position's logits of `toks` evaluated one token at a time in a fresh
// single-sequence context.
std::vector<float> alone(const Model& m, const std::vector<TokenId>& toks, KvType kv) {
  Context c(m, 128, 2, kv);
  std::vector<float> out;
  for (TokenId t : toks) {
    EXPECT_TRUE(c.eval(t).ok());
    out.insert(out.end(), c.logits().begin(), c.logits().end());
  }
  return out;
}

TEST(EngineBatch, EveryRowGetsTheLogitsItsSequenceGetsAlone) {
  const path q = test::reference_dir() / "quant/synth-q-256";
  for (const char* type : {"f32", "Q4_0", "Q8_0", "Q4_K_M", "Q5_K_M", "F16"}) {
    auto m = Model::load((q / ("synth-q-256." + std::string(type) + ".gguf")).string());
    ASSERT_TRUE(m.ok()) << m.message();
    const Model& model = *m.value();
    const int64_t V = model.hparams().n_vocab;
    // Three sequences in slots 3, 1 and 2 (slot 0 stays empty): lengths 45, 30, 9.
    const std::vector<int> slot = {3, 1, 2};
    const std::vector<std::vector<TokenId>> seqs = {tokens_for(1, 45, V), tokens_for(2, 30, V), tokens_for(3, 9, V)};
    for (KvType kv : {KvType::F32, KvType::F16, KvType::Q8_0}) {
      std::vector<std::vector<float>> want;
      for (const auto& s : seqs) want.push_back(alone(model, s, kv));
      Context ctx(model, 128, 2, kv, 4);
      std::vector<size_t> next(seqs.size(), 0);
      std::vector<std::vector<float>> got(seqs.size());
      // Steps as a continuous-batching scheduler makes them: a prompt chunk of one
      // sequence beside single tokens of others, chunks spanning micro-batches.
      const std::vector<std::vector<int>> plan = {{20, 15, 0}, {1, 1, 9}, {1, 1, 0}, {23, 1, 0}, {0, 12, 0}, {0, 0, 0}};
      for (const auto& step : plan) {
        std::vector<BatchRow> rows;
        std::vector<int> owner;
        for (size_t s = 0; s < seqs.size(); ++s)
          for (int k = 0; k < step[s] && next[s] < seqs[s].size(); ++k, ++next[s]) {
            rows.push_back({seqs[s][next[s]], static_cast<int>(next[s]), slot[s], true});
            owner.push_back(static_cast<int>(s));
          }
        std::vector<float> out;
        ASSERT_TRUE(ctx.decode(rows, &out).ok());
        ASSERT_EQ(out.size(), rows.size() * V);
        for (size_t r = 0; r < rows.size(); ++r)
          got[owner[r]].insert(got[owner[r]].end(), out.begin() + r * V, out.begin() + (r + 1) * V);
      }
      for (size_t s = 0; s < seqs.size(); ++s) {
        EXPECT_EQ(ctx.length(slot[s]), static_cast<int>(seqs[s].size()));
        ASSERT_EQ(got[s].size(), want[s].size()) << type << " seq " << s;
        EXPECT_EQ(std::memcmp(got[s].data(), want[s].data(), got[s].size() * sizeof(float)), 0) << type << " seq " << s;
      }
      EXPECT_EQ(ctx.length(0), 0);
    }
  }
}

// Prompt-prefix reuse: a slot truncated to a shared prefix and continued with other
// tokens gives what a fresh context gives for the whole new sequence. Rows without
// `logits` produce none.
TEST(EngineBatch, TruncatedSlotsContinueAsFreshOnes) {
  auto m = Model::load((test::reference_dir() / "quant/synth-q-256/synth-q-256.Q4_K_M.gguf").string());
  ASSERT_TRUE(m.ok()) << m.message();
  const int64_t V = m.value()->hparams().n_vocab;
  std::vector<TokenId> first = tokens_for(5, 40, V), second(first.begin(), first.begin() + 25);
  for (TokenId t : tokens_for(6, 10, V)) second.push_back(t);
  const std::vector<float> want = alone(*m.value(), second, KvType::F16);
  Context ctx(*m.value(), 128, 2, KvType::F16, 2);
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < first.size(); ++i) rows.push_back({first[i], static_cast<int>(i), 1, false});
  std::vector<float> out;
  ASSERT_TRUE(ctx.decode(rows, &out).ok());
  EXPECT_TRUE(out.empty());
  ctx.truncate(1, 25);
  EXPECT_EQ(ctx.length(1), 25);
  rows.clear();
  for (size_t i = 25; i < second.size(); ++i) rows.push_back({second[i], static_cast<int>(i), 1, true});
  ASSERT_TRUE(ctx.decode(rows, &out).ok());
  ASSERT_EQ(out.size(), 10 * static_cast<size_t>(V));
  EXPECT_EQ(std::memcmp(out.data(), want.data() + 25 * V, out.size() * sizeof(float)), 0);
}

// A shift of one slot is the single-sequence shift, and leaves the other slots alone.
TEST(EngineBatch, ShiftingOneSlotLeavesTheOthers) {
  auto m = Model::load((test::reference_dir() / "quant/synth-q-256/synth-q-256.Q8_0.gguf").string());
  ASSERT_TRUE(m.ok()) << m.message();
  const int64_t V = m.value()->hparams().n_vocab;
  const std::vector<TokenId> a = tokens_for(7, 20, V), b = tokens_for(8, 20, V);
  Context single(*m.value(), 64, 2, KvType::F16);
  ASSERT_TRUE(single.eval(a).ok());
  ASSERT_TRUE(single.shift(4, 8).ok());
  Context multi(*m.value(), 64, 2, KvType::F16, 2);
  std::vector<BatchRow> rows;
  for (int i = 0; i < 20; ++i) {
    rows.push_back({a[i], i, 1, false});
    rows.push_back({b[i], i, 0, false});
  }
  std::vector<float> out;
  ASSERT_TRUE(multi.decode(rows, &out).ok());
  const std::vector<float> b_key = multi.key(0, 1, 19);
  ASSERT_TRUE(multi.shift(1, 4, 8).ok());
  EXPECT_EQ(multi.length(1), 12);
  EXPECT_EQ(multi.length(0), 20);
  for (int p = 0; p < 12; ++p) EXPECT_EQ(multi.key(1, 1, p), single.key(1, p)) << p;
  EXPECT_EQ(multi.key(0, 1, 19), b_key);
}

TEST(EngineBatch, BadRowsAreRefusedBeforeAnyIsEvaluated) {
  auto m = Model::load((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(m.ok()) << m.message();
  Context ctx(*m.value(), 8, 1, KvType::F16, 2);
  std::vector<float> out;
  auto bad = [&](std::vector<BatchRow> rows) {
    Status s = ctx.decode(rows, &out);
    return s.ok() ? std::string("ok") : s.message();
  };
  EXPECT_EQ(bad({{1, 0, 2, true}}), "sequence 2 is not one of the cache's 2 slots");
  EXPECT_EQ(bad({{1, 0, 0, true}, {1, 2, 0, true}}), "sequence 0: position 2 given where 1 is next");
  EXPECT_EQ(bad({{1, 0, 1, true}, {-4, 1, 1, true}}), "token id -4 is outside the vocabulary of 512");
  std::vector<BatchRow> nine;
  for (int i = 0; i < 9; ++i) nine.push_back({1, i, 1, false});
  EXPECT_EQ(bad(nine), "the context is full (8 tokens); start a new one or use a larger context");
  EXPECT_EQ(ctx.length(0), 0);
  EXPECT_EQ(ctx.length(1), 0);
  EXPECT_EQ(bad({{1, 0, 1, true}, {2, 0, 0, false}}), "ok");
  EXPECT_EQ(out.size(), 512u);
}

}  // namespace
}  // namespace hearth::model
