// Encoders (bert, nomic-bert) against llama.cpp's llama-embedding on the same files: tiny
// models written by `hearth synth` with fixed seeds (F32, F16, Q8_0, Q4_K_M), the 20 inputs of
// tests/data/embeddings, every input in one packed batch; raw pooled vectors within a
// cosine distance of 1e-5 (the references' README gives the commands and the commit).
#include <gtest/gtest.h>

#include <algorithm>

#include "embedding_refs.h"
#include "model/encoder.h"
#include "model/synth.h"
#include "server_fixture.h"
#include "testdata.h"

namespace hearth::model {
namespace {

struct EncoderCase {
  const char* arch;
  quant::FileType type;
  Pooling pooling;
  const char* reference;
  double element_tol = 1e-4;  // largest element difference allowed
};

// A tiny encoder as the references were made from (`hearth synth --shape bert-tiny`).
std::string synth_encoder(const test::TempDir& dir, const char* arch, quant::FileType type, Pooling pooling = Pooling::Mean,
                          uint64_t seed = 1) {
  SynthOptions o;
  o.arch = arch;
  o.shape = synth_shape("bert-tiny").value();
  o.vocab_path = (test::testdata_dir() / "vocab/ggml-vocab-bert-bge.gguf").string();
  o.type = type;
  o.pooling = pooling;
  o.seed = seed;
  o.threads = 2;
  const std::string path = (dir.path() / (std::string(arch) + ".gguf")).string();
  EXPECT_TRUE(write_synth_model(path, o).ok());
  return path;
}

TEST(Encoder, PooledVectorsMatchLlamaEmbedding) {
  const EncoderCase cases[] = {
      {"bert", quant::FileType::ALL_F32, Pooling::Mean, "bert-tiny.f32.mean.json"},
      {"bert", quant::FileType::F16, Pooling::Cls, "bert-tiny.f16.cls.json"},
      {"bert", quant::FileType::Q8_0, Pooling::Mean, "bert-tiny.q8_0.mean.json"},
      // llama-quantize's Q4_K_M mix on this shape: q4_K, q6_K, q5_0 (rows of 128 fall
      // back), q8_0 and f16 tensors in one model. Within 1e-5 by cosine like the others,
      // but single elements differ by up to 3.1e-4 (not yet explained; Q8_0 alone: 4e-7).
      {"bert", quant::FileType::Q4_K_M, Pooling::Mean, "bert-tiny.q4_k_m.mean.json", 5e-4},
      {"nomic-bert", quant::FileType::F16, Pooling::Mean, "nomic-tiny.f16.mean.json"},
  };
  const auto inputs = test::embedding_inputs();
  ASSERT_EQ(inputs.size(), 20u);
  for (const EncoderCase& c : cases) {
    test::TempDir dir;
    auto m = Model::load(synth_encoder(dir, c.arch, c.type));
    ASSERT_TRUE(m.ok()) << m.message();
    ASSERT_EQ(m.value()->hparams().family, Family::Encoder);
    std::vector<std::vector<TokenId>> seqs;
    for (const std::string& text : inputs) seqs.push_back(m.value()->vocab().tokenize(text, true, true).value());
    EXPECT_EQ(seqs[2].front(), 101);  // [CLS] … [SEP], as the GGUF's tokenizer says
    EXPECT_EQ(seqs[2].back(), 102);
    Encoder enc(*m.value(), 2);
    std::vector<std::vector<float>> got;
    ASSERT_TRUE(enc.embed(seqs, c.pooling, got).ok());
    const auto want = test::reference_vectors(c.reference);
    ASSERT_EQ(want.size(), got.size()) << c.reference;
    double worst = 0, worst_cos = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].size(), want[i].size());
      EXPECT_LT(1 - test::cosine(got[i], want[i]), 1e-5) << c.reference << " input " << i << ": " << inputs[i];
      worst_cos = std::max(worst_cos, 1 - test::cosine(got[i], want[i]));
      for (size_t d = 0; d < want[i].size(); ++d) worst = std::max(worst, std::fabs(got[i][d] - want[i][d]));
    }
    // Element by element too: this catches what the cosine forgives (F32 and Q8_0 weights
    // give vectors 3e-6 apart by cosine but 5e-3 apart in an element; ours are within
    // 3e-5 of llama.cpp's with ggml's half-table GELU, 6e-4 without it).
    EXPECT_LT(worst, c.element_tol) << c.reference;
    std::printf("%s: largest element difference %.2g, cosine distance %.2g\n", c.reference, worst, worst_cos);
    // A sequence's vector does not depend on what else is in the batch.
    std::vector<std::vector<float>> alone;
    ASSERT_TRUE(enc.embed(std::span(seqs).subspan(5, 1), c.pooling, alone).ok());
    EXPECT_EQ(alone[0], got[5]) << c.reference;
  }
}

TEST(Encoder, RefusesWhatItCannotEmbed) {
  test::TempDir dir;
  auto m = Model::load(synth_encoder(dir, "bert", quant::FileType::F16));
  ASSERT_TRUE(m.ok()) << m.message();
  Encoder enc(*m.value(), 2);
  std::vector<std::vector<float>> out;
  const std::pair<std::vector<std::vector<TokenId>>, const char*> bad[] = {
      {{{101, 102}, {}}, "input 1 has no tokens"},
      {{{101, 999999}}, "outside the vocabulary"},
      {{std::vector<TokenId>(513, 1000)}, "more than the model's 512"},
  };
  for (const auto& [seqs, message] : bad) {
    Status s = enc.embed(seqs, Pooling::Mean, out);
    ASSERT_FALSE(s.ok()) << message;
    EXPECT_NE(s.message().find(message), std::string::npos) << s.message();
  }
  const std::vector<std::vector<TokenId>> one = {{101, 102}};
  EXPECT_NE(enc.embed(one, Pooling::Rank, out).message().find("classification head"), std::string::npos);
  EXPECT_FALSE(enc.embed(one, Pooling::None, out).ok());
}

}  // namespace
}  // namespace hearth::model

namespace hearth::server {
namespace {

// An encoder served: /api/embed batches the inputs through the runner's encoder path and
// agrees with llama-embedding; generate and chat are Ollama's 400; show lists `embedding`.
class EncoderServing : public Server {
 protected:
  void SetUp() override {
    options_.inference.threads = 2;
    Server::SetUp();
    model::SynthOptions o;
    o.arch = "bert";
    o.shape = model::synth_shape("bert-tiny").value();
    o.vocab_path = (test::testdata_dir() / "vocab/ggml-vocab-bert-bge.gguf").string();
    o.pooling = model::Pooling::Cls;  // the same weights as bert-tiny.f16.cls.json's model
    ASSERT_TRUE(model::write_synth_model((files_.path() / "bert.gguf").string(), o).ok());
    // The reranker of rerank-tiny.f32.rank.json: a classification head, wider weights.
    o.pooling = model::Pooling::Rank;
    o.seed = 7;
    o.sigma = 0.1f;
    o.type = quant::FileType::ALL_F32;
    ASSERT_TRUE(model::write_synth_model((files_.path() / "rerank.gguf").string(), o).ok());
    Store store(dir_.path());
    add_model(store, "bert", files_.path() / "bert.gguf");
    add_model(store, "reranker", files_.path() / "rerank.gguf");
  }
  httplib::Result post(const std::string& path, const std::string& body) { return client_->Post(path.c_str(), body, "application/json"); }
  test::TempDir files_;
};

TEST_F(EncoderServing, EmbedMatchesLlamaEmbeddingAndGenerationIsRefused) {
  const auto inputs = test::embedding_inputs();
  const auto want = test::reference_vectors("bert-tiny.f16.cls.json");
  std::string list;
  for (const std::string& in : inputs) list += (list.empty() ? "" : ",") + tmpl::json_quote(in);
  auto r = post("/api/embed", R"({"model":"bert","input":[)" + list + "]}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = tmpl::from_json(r->body);
  ASSERT_TRUE(v.ok());
  const auto& embeddings = *v.value().field("embeddings").list;
  ASSERT_EQ(embeddings.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    std::vector<double> got;
    for (const auto& x : *embeddings[i].list) got.push_back(x.kind == tmpl::Value::Kind::Int ? static_cast<double>(x.i) : x.f);
    EXPECT_GT(test::cosine(got, want[i]), 1 - 1e-5) << i;
  }
  EXPECT_GT(v.value().field("prompt_eval_count").i, 20 * 3);
  for (auto [path, body, message] : {std::tuple{"/api/generate", R"({"model":"bert","prompt":"hi"})", R"(\"bert\" does not support generate)"},
                                     std::tuple{"/api/chat", R"({"model":"bert","messages":[{"role":"user","content":"hi"}]})",
                                                R"(\"bert\" does not support chat)"}}) {
    auto g = post(path, body);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, 400) << path;
    EXPECT_NE(g->body.find(message), std::string::npos) << g->body;
  }
  auto show = post("/api/show", R"({"model":"bert"})");
  ASSERT_TRUE(show);
  EXPECT_NE(show->body.find(R"("capabilities":["embedding"])"), std::string::npos) << show->body;
}

// The 20 inputs as documents for one query: scores within 1e-4 of llama-embedding's
// (--pooling rank, "query<#seq#>document" pairs), sorted, top_n, documents returned;
// both paths and their error shapes.
TEST_F(EncoderServing, RerankScoresMatchLlamaEmbedding) {
  const auto docs = test::embedding_inputs();
  const auto want = test::reference_vectors("rerank-tiny.f32.rank.json");
  ASSERT_EQ(want.size(), docs.size());
  std::string list;
  for (const std::string& d : docs) list += (list.empty() ? "" : ",") + tmpl::json_quote(d);
  const std::string body = R"({"model":"reranker","query":"Who played with a red ball in the park?","documents":[)" + list + "]";
  auto r = post("/api/rerank", body + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = tmpl::from_json(r->body);
  ASSERT_TRUE(v.ok());
  const auto& results = *v.value().field("results").list;
  ASSERT_EQ(results.size(), docs.size());
  double last = 1e30;
  std::vector<bool> seen(docs.size());
  for (const auto& res : results) {
    const int64_t i = res.field("index").i;
    ASSERT_TRUE(i >= 0 && i < static_cast<int64_t>(docs.size()));
    seen[static_cast<size_t>(i)] = true;
    const double score = res.field("relevance_score").kind == tmpl::Value::Kind::Int ? static_cast<double>(res.field("relevance_score").i)
                                                                                       : res.field("relevance_score").f;
    EXPECT_NEAR(score, want[static_cast<size_t>(i)][0], 1e-4) << docs[static_cast<size_t>(i)];
    EXPECT_LE(score, last);  // sorted, best first
    last = score;
    EXPECT_EQ(res.field("document").kind, tmpl::Value::Kind::Nil);
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 20);
  EXPECT_GT(v.value().field("usage").field("prompt_tokens").i, 20 * 5);
  // top_n and return_documents, on the OpenAI-style path.
  auto top = post("/v1/rerank", body + R"(,"top_n":3,"return_documents":true})");
  ASSERT_TRUE(top);
  ASSERT_EQ(top->status, 200) << top->body;
  auto t = tmpl::from_json(top->body);
  const auto& three = *t.value().field("results").list;
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[0].field("index").i, results[0].field("index").i);
  EXPECT_EQ(three[2].field("document").field("text").s, docs[static_cast<size_t>(three[2].field("index").i)]);
  // Refusals: not a reranker, unknown model, bad fields; /v1 in OpenAI's error shape.
  for (auto [path, req, status, message] : {
           std::tuple{"/api/rerank", R"({"model":"bert","query":"q","documents":["d"]})", 400, "is not a reranking model"},
           std::tuple{"/api/rerank", R"({"model":"nosuch","query":"q","documents":["d"]})", 404, "not found"},
           std::tuple{"/api/rerank", R"({"model":"reranker","query":"q","documents":[]})", 400, "non-empty array"},
           std::tuple{"/api/rerank", R"({"model":"reranker","documents":["d"]})", 400, "query is required"},
           std::tuple{"/v1/rerank", R"({"model":"reranker","query":"q","documents":["d"],"top_n":0})", 400, R"("type":"invalid_request_error")"},
           std::tuple{"/api/embed", R"({"model":"reranker","input":"x"})", 400, "reranking model"}}) {
    auto e = post(path, req);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, status) << path << " " << req << " " << e->body;
    EXPECT_NE(e->body.find(message), std::string::npos) << e->body;
  }
}

}  // namespace
}  // namespace hearth::server
