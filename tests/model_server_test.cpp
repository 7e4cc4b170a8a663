// The first pieces of the engine and the server: hyperparameters from GGUF, and
// Ollama's model-name grammar.
#include <gtest/gtest.h>

#include "gguf/writer.h"
#include "model/hparams.h"
#include "server/name.h"
#include "testdata.h"

namespace hearth {
namespace {

Result<model::HParams> hparams_of(const test::fs::path& p) {
  auto f = gguf::GgufFile::open(p.string());
  if (!f) return f.error();
  return model::read_hparams(f.value());
}

TEST(HParams, Stories260K) {
  auto h = hparams_of(test::testdata_dir() / "models/stories260K.gguf");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h.value().arch, "llama");
  EXPECT_EQ(h.value().n_vocab, 512u);  // no llama.vocab_size: from the token list
  EXPECT_EQ(h.value().n_embd, 64u);
  EXPECT_EQ(h.value().n_layer, 5u);
  EXPECT_EQ(h.value().n_head, 8u);
  EXPECT_EQ(h.value().n_head_kv, 4u);
  EXPECT_EQ(h.value().n_gqa(), 2u);
  EXPECT_EQ(h.value().head_dim, 8u);
  EXPECT_EQ(h.value().n_ff, 172u);
  EXPECT_FALSE(h.value().tied_embeddings);
  EXPECT_FALSE(h.value().neox_rope);
  EXPECT_FLOAT_EQ(h.value().rms_eps, 1e-5f);
}

TEST(HParams, TiedEmbeddingsAndQwenShapes) {
  auto t = hparams_of(test::testdata_dir() / "models/TinyStories-656K-Q8_0.gguf");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_TRUE(t.value().tied_embeddings);
  EXPECT_EQ(t.value().n_vocab, 2048u);
  auto q3 = hparams_of(test::reference_dir() / "logits/models/synth-qwen3-256.F32.gguf");
  ASSERT_TRUE(q3.ok()) << q3.message();
  EXPECT_EQ(q3.value().arch, "qwen3");
  EXPECT_EQ(q3.value().head_dim, 128u);  // key_length, not n_embd / n_head = 64
  EXPECT_TRUE(q3.value().neox_rope);
  EXPECT_FLOAT_EQ(q3.value().rope_freq_base, 1e6f);
  auto q2 = hparams_of(test::reference_dir() / "logits/models/synth-qwen2-256.F32.gguf");
  ASSERT_TRUE(q2.ok()) << q2.message();
  EXPECT_TRUE(q2.value().tied_embeddings);
  EXPECT_EQ(q2.value().n_vocab, 2049u);
}

TEST(HParams, ErrorsNameTheKey) {
  auto v = hparams_of(test::testdata_dir() / "vocab/ggml-vocab-falcon.gguf");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.message().find("architecture 'falcon' is not supported (supported: llama, qwen2, qwen3, bert, nomic-bert)"),
            std::string::npos)
      << v.message();
  // An encoder's header: its family and LayerNorm epsilon.
  auto bert = hparams_of(test::testdata_dir() / "vocab/ggml-vocab-bert-bge.gguf");
  ASSERT_TRUE(bert.ok()) << bert.message();
  EXPECT_EQ(bert.value().family, model::Family::Encoder);
  EXPECT_FLOAT_EQ(bert.value().norm_eps, 1e-12f);
  EXPECT_EQ(bert.value().n_token_types, 2u);
  gguf::Metadata md;
  ASSERT_TRUE(md.add("general.architecture", gguf::Value::string("llama")).ok());
  ASSERT_TRUE(md.add("llama.context_length", gguf::Value::of<uint32_t>(128)).ok());
  gguf::GgufWriter w(md);
  gguf::VectorSink sink;
  ASSERT_TRUE(w.write_to(sink).ok());
  auto f = gguf::GgufFile::parse(sink.bytes, "partial.gguf");
  ASSERT_TRUE(f.ok());
  auto h = model::read_hparams(f.value());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.message(), "partial.gguf: key 'llama.embedding_length' not found");
}

TEST(ModelName, ParsesWithOllamasDefaults) {
  auto n = server::ModelName::parse("llama3.2");
  EXPECT_TRUE(n.valid());
  EXPECT_EQ(n.full(), "registry.ollama.ai/library/llama3.2:latest");
  EXPECT_EQ(n.shortest(), "llama3.2:latest");
  EXPECT_EQ(n.manifest_path(), "manifests/registry.ollama.ai/library/llama3.2/latest");
  auto u = server::ModelName::parse("user/model:7b");
  EXPECT_EQ(u.full(), "registry.ollama.ai/user/model:7b");
  EXPECT_EQ(u.shortest(), "user/model:7b");
  auto h = server::ModelName::parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  EXPECT_TRUE(h.valid());
  EXPECT_EQ(h.host, "hf.co");
  EXPECT_EQ(h.shortest(), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  auto p = server::ModelName::parse("http://localhost:5000/ns/m:t");
  EXPECT_TRUE(p.valid());
  EXPECT_EQ(p.scheme, "http");
  EXPECT_EQ(p.host, "localhost:5000");
  EXPECT_TRUE(server::ModelName::parse("h/n/m:t").valid());
  EXPECT_TRUE(server::ModelName::parse("host:port/ns/model:tag").valid());
  EXPECT_TRUE(server::ModelName::parse("LLaMA3.2").same_model(server::ModelName::parse("llama3.2:latest")));
}

TEST(ModelName, RejectsWhatOllamaRejects) {
  for (const char* bad : {"", "mm:", "/nn/mm", "-hh/nn/mm:tt", "host/name:space/model:tag", "m@d", "a/b/c/d",
                          "ns.dot/model", ".model", "model:-tag"})
    EXPECT_FALSE(server::ModelName::parse(bad).valid()) << bad;
  EXPECT_FALSE(server::ModelName::parse(std::string(81, 'm')).valid());
  EXPECT_TRUE(server::ModelName::parse(std::string(80, 'm')).valid());
}

}  // namespace
}  // namespace hearth
