// The Ollama API over real HTTP on loopback: a server on a free port, a store in a
// temporary directory laid out as Ollama lays it out, cpp-httplib as the client.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <thread>

#include "server/api.h"
#include "server/store.h"
#include "server_fixture.h"
#include "testdata.h"

namespace hearth::server {
namespace {

TEST_F(Server, RootVersionAndUnknownPaths) {
  auto r = client_->Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Ollama is running");
  auto h = client_->Head("/");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto v = client_->Get("/api/version");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->body, std::string("{\"version\":\"") + kOllamaApiVersion + "\"}");
  EXPECT_EQ(v->get_header_value("Content-Type"), "application/json; charset=utf-8");
  auto nf = client_->Get("/api/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(nf->body, "404 page not found");
  auto wrong = client_->Get("/api/copy");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  auto ps = client_->Get("/api/ps");
  ASSERT_TRUE(ps);
  EXPECT_EQ(ps->body, "{\"models\":[]}");
}

TEST_F(Server, TagsListsTheStoreAsOllamaDoes) {
  Store store(dir_.path());
  const std::string digest = add_model(store, "stories", test::testdata_dir() / "models/stories260K.gguf");
  add_model(store, "hf.co/someone/Tiny-GGUF:Q8_0", test::testdata_dir() / "models/TinyStories-656K-Q8_0.gguf");
  auto r = client_->Get("/api/tags");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  simdjson::dom::parser p;
  simdjson::dom::element doc = p.parse(r->body);
  simdjson::dom::array models = doc["models"];
  ASSERT_EQ(models.size(), 2u);
  bool seen = false;
  for (simdjson::dom::element m : models) {
    if (std::string_view(m["name"]) != "stories:latest") {
      EXPECT_EQ(std::string_view(m["name"]), "hf.co/someone/Tiny-GGUF:Q8_0");
      continue;
    }
    seen = true;
    EXPECT_EQ(std::string_view(m["model"]), "stories:latest");
    EXPECT_EQ(std::string_view(m["digest"]), digest);
    EXPECT_EQ(int64_t(m["size"]), int64_t(test::fs::file_size(test::testdata_dir() / "models/stories260K.gguf") + kConfig.size()));
    EXPECT_EQ(std::string_view(m["details"]["family"]), "llama");
    EXPECT_EQ(std::string_view(m["details"]["quantization_level"]), "F32");
    EXPECT_EQ(int64_t(m["details"]["context_length"]), 2048);
    EXPECT_EQ(int64_t(m["details"]["embedding_length"]), 64);
    EXPECT_EQ(std::string_view(m["capabilities"].at(0)), "completion");
    std::string_view mod = m["modified_at"];
    EXPECT_EQ(mod.size() >= 20 && mod[4] == '-' && mod[10] == 'T', true) << mod;
  }
  EXPECT_TRUE(seen);
  auto o = client_->Get("/v1/models");
  ASSERT_TRUE(o);
  simdjson::dom::element od = p.parse(o->body);
  EXPECT_EQ(std::string_view(od["object"]), "list");
  EXPECT_EQ(od["data"].get_array().size(), 2u);
  auto one = client_->Get("/v1/models/stories");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_NE(one->body.find("\"id\":\"stories\""), std::string::npos) << one->body;  // the id as asked
  auto none = client_->Get("/v1/models/nope");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
}

TEST_F(Server, BlobsAreVerifiedAndNeverLeaveBlobs) {
  const std::string body = "hello, blob";
  const std::string digest = "sha256:" + sha256_hex(body);
  auto head = client_->Head(("/api/blobs/" + digest).c_str());
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 404);
  auto created = client_->Post(("/api/blobs/" + digest).c_str(), body, "application/octet-stream");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201);
  EXPECT_TRUE(test::fs::exists(dir_.path() / "blobs" / ("sha256-" + sha256_hex(body))));
  auto again = client_->Post(("/api/blobs/" + digest).c_str(), body, "application/octet-stream");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  auto head2 = client_->Head(("/api/blobs/" + digest).c_str());
  ASSERT_TRUE(head2);
  EXPECT_EQ(head2->status, 200);
  const std::string wrong = "sha256:" + std::string(64, '0');
  auto mismatch = client_->Post(("/api/blobs/" + wrong).c_str(), std::string("other bytes"), "application/octet-stream");
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->status, 400);
  EXPECT_EQ(mismatch->body, "{\"error\":\"digest mismatch, expected \\\"" + wrong + "\\\", got \\\"sha256:" +
                                sha256_hex("other bytes") + "\\\"\"}");
  // Found by probing: the mismatched bytes were kept under their own digest.
  EXPECT_FALSE(test::fs::exists(dir_.path() / "blobs" / ("sha256-" + sha256_hex("other bytes"))));
  auto bad = client_->Post("/api/blobs/sha256:xyz", body, "application/octet-stream");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->body, "{\"error\":\"invalid digest format\"}");
  auto traversal = client_->Head("/api/blobs/..%2F..%2Fetc%2Fpasswd");  // decoded: no route, or a bad digest
  ASSERT_TRUE(traversal);
  EXPECT_TRUE(traversal->status == 400 || traversal->status == 404) << traversal->status;
  for (const auto& e : test::fs::directory_iterator(dir_.path() / "blobs"))
    EXPECT_EQ(e.path().filename().string().rfind("sha256-upload", 0), std::string::npos) << "temporary upload left behind";
}

TEST_F(Server, CopyAndDeleteKeepSharedBlobs) {
  Store store(dir_.path());
  add_model(store, "stories", test::testdata_dir() / "models/stories260K.gguf");
  auto cp = client_->Post("/api/copy", R"({"Source":"stories","destination":"mine/stories:v1"})", "application/json");
  ASSERT_TRUE(cp);
  EXPECT_EQ(cp->status, 200);
  EXPECT_EQ(cp->body, "");
  EXPECT_TRUE(test::fs::exists(dir_.path() / "manifests/registry.ollama.ai/mine/stories/v1"));
  auto missing = client_->Post("/api/copy", R"({"source":"nope","destination":"x"})", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "{\"error\":\"model \\\"nope\\\" not found\"}");
  auto invalid = client_->Post("/api/copy", R"({"source":"stories","destination":"-bad"})", "application/json");
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->status, 400);
  EXPECT_EQ(invalid->body, "{\"error\":\"destination \\\"-bad\\\" is invalid\"}");

  const size_t blobs = std::distance(test::fs::directory_iterator(dir_.path() / "blobs"), test::fs::directory_iterator());
  auto del = client_->Delete("/api/delete", R"({"model":"mine/stories:v1"})", "application/json");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  EXPECT_FALSE(test::fs::exists(dir_.path() / "manifests/registry.ollama.ai/mine"));  // empty dirs pruned
  EXPECT_EQ(std::distance(test::fs::directory_iterator(dir_.path() / "blobs"), test::fs::directory_iterator()),
            static_cast<std::ptrdiff_t>(blobs));  // still used by stories:latest
  auto del2 = client_->Delete("/api/delete", R"({"name":"STORIES"})", "application/json");  // case-insensitive
  ASSERT_TRUE(del2);
  EXPECT_EQ(del2->status, 200);
  EXPECT_EQ(std::distance(test::fs::directory_iterator(dir_.path() / "blobs"), test::fs::directory_iterator()), 0);
  auto gone = client_->Delete("/api/delete", R"({"model":"stories"})", "application/json");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(gone->body, "{\"error\":\"model 'stories' not found\"}");
}

TEST_F(Server, RequestBodiesAreChecked) {
  auto empty = client_->Delete("/api/delete", "", "application/json");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  EXPECT_EQ(empty->body, "{\"error\":\"missing request body\"}");
  auto bad = client_->Delete("/api/delete", "{not json", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("invalid JSON body"), std::string::npos) << bad->body;
  auto none = client_->Delete("/api/delete", "{}", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 400);
  EXPECT_EQ(none->body, "{\"error\":\"model is required\"}");
}

class KeyedServer : public Server {
 protected:
  void SetUp() override {
    api_key_ = "s3cret";
    Server::SetUp();
  }
};

TEST_F(KeyedServer, BearerTokenRequired) {
  auto no = client_->Get("/api/version");
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 401);
  httplib::Headers h{{"Authorization", "Bearer s3cret"}};
  auto yes = client_->Get("/api/version", h);
  ASSERT_TRUE(yes);
  EXPECT_EQ(yes->status, 200);
}

}  // namespace
}  // namespace hearth::server

namespace hearth::server {
namespace {

TEST_F(Server, ShowDescribesTheModel) {
  Store store(dir_.path());
  add_model(store, "stories", test::testdata_dir() / "models/stories260K.gguf");
  // Add template, system and params layers to the manifest, as Ollama's create writes them.
  auto tmpl = store.write_blob_bytes("{{ .Prompt }}");
  auto sys = store.write_blob_bytes("You are a storyteller.");
  auto params = store.write_blob_bytes(R"({"stop":["<s>","</s>"],"temperature":0.7})");
  ASSERT_TRUE(tmpl.ok() && sys.ok() && params.ok());
  auto m = store.find(ModelName::parse("stories"));
  ASSERT_TRUE(m.ok());
  std::string raw = m.value().raw;
  const std::string extra = ",{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"" + tmpl.value() +
                            "\",\"size\":13},{\"mediaType\":\"application/vnd.ollama.image.system\",\"digest\":\"" + sys.value() +
                            "\",\"size\":22},{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"" +
                            params.value() + "\",\"size\":42}]}";
  raw = raw.substr(0, raw.rfind("]}")) + extra + "\n";
  ASSERT_TRUE(store.write_manifest(ModelName::parse("stories"), raw).ok());

  auto r = client_->Post("/api/show", R"({"model":"stories"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  simdjson::dom::parser p;
  simdjson::dom::element d = p.parse(r->body);
  EXPECT_EQ(std::string_view(d["template"]), "{{ .Prompt }}");
  EXPECT_EQ(std::string_view(d["system"]), "You are a storyteller.");
  const std::string params_text{std::string_view(d["parameters"])};
  EXPECT_NE(params_text.find("stop                           \"<s>\""), std::string::npos) << params_text;
  EXPECT_NE(params_text.find("temperature                    0.7"), std::string::npos) << params_text;
  const std::string mf{std::string_view(d["modelfile"])};
  EXPECT_EQ(mf.rfind("# Modelfile generated by \"ollama show\"", 0), 0u) << mf;
  EXPECT_NE(mf.find("TEMPLATE \"\"\"{{ .Prompt }}\"\"\""), std::string::npos) << mf;
  EXPECT_NE(mf.find("PARAMETER stop \"</s>\""), std::string::npos) << mf;
  EXPECT_EQ(int64_t(d["model_info"]["llama.block_count"]), 5);
  EXPECT_EQ(int64_t(d["model_info"]["general.parameter_count"]), 292800);
  EXPECT_EQ(d["model_info"]["tokenizer.ggml.tokens"].get_array().size(), 0u);  // long arrays elided
  simdjson::dom::array tensors = d["tensors"];
  EXPECT_EQ(tensors.size(), 48u);
  EXPECT_EQ(std::string_view(tensors.at(0)["type"]), "F32");
  EXPECT_EQ(std::string_view(d["details"]["family"]), "llama");
  EXPECT_EQ(std::string_view(d["capabilities"].at(0)), "completion");

  auto verbose = client_->Post("/api/show", R"({"model":"stories","verbose":true})", "application/json");
  ASSERT_TRUE(verbose);
  simdjson::dom::element dv = p.parse(verbose->body);
  EXPECT_EQ(dv["model_info"]["tokenizer.ggml.tokens"].get_array().size(), 512u);
  auto missing = client_->Post("/api/show", R"({"model":"nope"})", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "{\"error\":\"model 'nope:latest' not found\"}");
  auto none = client_->Post("/api/show", R"({})", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->body, "{\"error\":\"model is required\"}");
}

}  // namespace
}  // namespace hearth::server
