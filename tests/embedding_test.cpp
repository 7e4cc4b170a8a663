// Embeddings from the runner against llama.cpp's llama-embedding on the same file and
// inputs (tests/data/embeddings: 20 inputs, mean / cls / last pooling, raw vectors; the
// README there gives the commands and the llama.cpp commit). All 20 requests are
// submitted at once, so they are batched together in the runner's slots.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "runner/runner.h"
#include "server/embed.h"
#include "server/gotemplate.h"
#include "server_fixture.h"
#include "embedding_refs.h"
#include "testdata.h"

namespace hearth::runner {

using test::cosine;

namespace {

using namespace std::chrono_literals;

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
  const auto inputs = test::embedding_inputs();
  ASSERT_EQ(inputs.size(), 20u);
  for (auto [name, pooling] : {std::pair{"mean", model::Pooling::Mean}, std::pair{"cls", model::Pooling::Cls},
                               std::pair{"last", model::Pooling::Last}}) {
    const auto want = test::reference_vectors(std::string("stories260K.") + name + ".json");
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
      EXPECT_LT(1 - cosine(e.embedding, want[i]), 1e-5) << name << " input " << i << ": " << inputs[i];
      // Element by element too, within float summation noise.
      for (size_t d = 0; d < want[i].size(); ++d)
        EXPECT_NEAR(e.embedding[d], want[i][d], 1e-4 * (1 + std::fabs(want[i][d]))) << name << " input " << i << " dim " << d;
      EXPECT_EQ(e.prompt_eval_count, static_cast<int>(m->vocab().tokenize(inputs[i], true, true).value().size()));
    }
  }
}

}  // namespace
}  // namespace hearth::runner

// Through the server: /api/embed, /api/embeddings and /v1/embeddings against the same
// references (the server's cache is F16, so vectors agree by cosine distance).

namespace hearth::server {
namespace {

using tmpl::Value;

class EmbedServing : public Server {
 protected:
  void SetUp() override {
    options_.inference.parallel = 4;
    options_.inference.threads = 2;
    Server::SetUp();
    Store store(dir_.path());
    add_model(store, "stories", test::testdata_dir() / "models/stories260K.gguf");
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }
};

std::vector<double> as_doubles(const Value& list) {
  std::vector<double> out;
  for (const Value& x : *list.list) out.push_back(x.kind == Value::Kind::Int ? static_cast<double>(x.i) : x.f);
  return out;
}

TEST_F(EmbedServing, EmbedEndpointsAgreeWithLlamaEmbedding) {
  const auto inputs = test::embedding_inputs();
  const auto want = test::reference_vectors("stories260K.mean.json");
  auto loaded = model::Model::load((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(loaded.ok());
  const model::Vocab& vocab = loaded.value()->vocab();
  std::string list;
  for (const std::string& in : inputs) list += (list.empty() ? "" : ",") + tmpl::json_quote(in);
  auto r = post("/api/embed", R"({"model":"stories","input":[)" + list + "]}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = tmpl::from_json(r->body);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value().field("model").s, "stories");
  const Value& embeddings = v.value().field("embeddings");
  ASSERT_EQ(embeddings.list->size(), inputs.size());
  int tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<double> got = as_doubles((*embeddings.list)[i]);
    double norm = 0;
    for (double x : got) norm += x * x;
    EXPECT_NEAR(norm, 1.0, 1e-5) << i;  // L2-normalised
    EXPECT_GT(test::cosine(got, want[i]), 1 - 1e-5) << i;
    tokens += static_cast<int>(vocab.tokenize(inputs[i], true, true).value().size());
  }
  EXPECT_EQ(v.value().field("prompt_eval_count").i, tokens);
  EXPECT_GT(v.value().field("total_duration").i, 0);
  // The legacy endpoint: one raw vector.
  r = post("/api/embeddings", R"({"model":"stories","prompt":)" + tmpl::json_quote(inputs[3]) + "}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::vector<double> raw = as_doubles(tmpl::from_json(r->body).value().field("embedding"));
  ASSERT_EQ(raw.size(), want[3].size());
  EXPECT_GT(test::cosine(raw, want[3]), 1 - 1e-5);
  for (size_t d = 0; d < raw.size(); ++d) EXPECT_NEAR(raw[d], want[3][d], 2e-2 * (1 + std::fabs(want[3][d]))) << d;
  // OpenAI's token arrays: the same vector as the text they tokenize from.
  std::string ids;
  const std::vector<model::TokenId> input_ids = vocab.tokenize(inputs[5], true, true).value();
  for (auto t : input_ids) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  for (const std::string& input : {"[" + ids + "]", "[[" + ids + "]]"}) {
    r = post("/v1/embeddings", R"({"model":"stories","input":)" + input + "}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << input << " -> " << r->body;
    const Value answer = tmpl::from_json(r->body).value();
    const auto& data = *answer.field("data").list;
    ASSERT_EQ(data.size(), 1u);
    EXPECT_GT(test::cosine(as_doubles(data[0].field("embedding")), want[5]), 1 - 1e-5);
  }
  r = post("/v1/embeddings", R"({"model":"stories","input":[[1,99999]]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("outside the vocabulary"), std::string::npos) << r->body;
  // dimensions: cut, then normalised again.
  r = post("/api/embed", R"({"model":"stories","input":"Hello","dimensions":8})");
  ASSERT_TRUE(r);
  const std::vector<double> cut = as_doubles((*tmpl::from_json(r->body).value().field("embeddings").list)[0]);
  ASSERT_EQ(cut.size(), 8u);
  double norm = 0;
  for (double x : cut) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
}

TEST_F(EmbedServing, EmbedErrorsAsOllamaAnswersThem) {
  struct Case {
    std::string path, body;
    int status;
    std::string body_has;
  };
  std::string long_input;
  for (int i = 0; i < 300; ++i) long_input += "word ";
  const std::vector<Case> cases = {
      {"/api/embed", R"({"model":"nosuch","input":"x"})", 404, R"({"error":"model \"nosuch\" not found, try pulling it first"})"},
      {"/api/embeddings", R"({"model":"nosuch","prompt":"x"})", 404, "try pulling it first"},
      {"/api/embed", R"({"model":"stories","input":[1,2]})", 400, R"({"error":"invalid input type"})"},
      {"/api/embed", R"({"model":"stories","input":"x","dimensions":65})", 400, "more than the model's embedding length 64"},
      {"/api/embed", R"({"model":"stories","input":")" + long_input + R"(","truncate":false,"options":{"num_ctx":64}})", 400,
       "the input length exceeds the context length"},
      {"/api/embed", R"({"model":"stories","input":")" + long_input + R"(","options":{"num_ctx":64}})", 200, "\"prompt_eval_count\":64"},
      {"/api/embed", R"({"model":"stories","input":""})", 200, "\"embeddings\":[]"},
      {"/api/embed", R"({"model":"stories"})", 200, "\"embeddings\":[]"},
      {"/api/embeddings", R"({"model":"stories","prompt":""})", 200, R"({"embedding":[]})"},
      {"/v1/embeddings", R"({"model":"stories","input":[]})", 400, R"("message":"invalid input")"},
      {"/v1/embeddings", R"({"model":"stories","input":"x","encoding_format":"hex"})", 400, "invalid encoding_format"},
      {"/v1/embeddings", R"({"model":"nosuch","input":"x"})", 404, R"("type":"not_found_error")"},
  };
  for (const Case& c : cases) {
    auto r = post(c.path, c.body);
    ASSERT_TRUE(r) << c.body;
    EXPECT_EQ(r->status, c.status) << c.path << " " << c.body.substr(0, 80) << " -> " << r->body.substr(0, 300);
    EXPECT_NE(r->body.find(c.body_has), std::string::npos) << c.path << " " << c.body.substr(0, 80) << " -> " << r->body.substr(0, 300);
  }
}

TEST(Base64, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> v = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : v) EXPECT_EQ(base64(in), out) << in;
  EXPECT_EQ(base64(std::string("\xff\xfe\x00", 3)), "//4A");
}

}  // namespace
}  // namespace hearth::server
