// The registry client against a real registry on loopback (registry_fixture.h): push and
// pull round trips byte for byte, resuming a cut download, a corrupted blob, concurrent
// pulls, Basic auth — and against hostile registries (an httplib server written here)
// whose every failure must be a clear error that leaves the store as it was.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <thread>

#include "registry_fixture.h"
#include "server/registry_auth.h"
#include "server/transfer.h"
#include "testdata.h"

namespace hearth::test {
namespace {

namespace fs = std::filesystem;
using server::ModelName;
using server::PullStats;
using server::Store;
namespace registry = server::registry;

registry::Options fast_options() {
  registry::Options o;
  o.retries = 2;
  o.backoff = std::chrono::milliseconds(20);
  o.stall = std::chrono::milliseconds(3000);
  o.connect = std::chrono::milliseconds(1000);
  o.part_min = uint64_t{1} << 20;  // several parts even for small test blobs
  o.chunk = uint64_t{1} << 20;     // several PATCHes per upload
  return o;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Lines {
  std::vector<std::string> all;
  server::TransferProgress fn() {
    return [this](const std::string& l) { all.push_back(l); };
  }
  bool has(const std::string& status) const {
    for (const auto& l : all)
      if (l.find("\"status\":\"" + status + "\"") != std::string::npos) return true;
    return false;
  }
};

size_t count_files(const fs::path& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) n++;
  return n;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hearth-registry-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    ::unsetenv("HEARTH_REGISTRY_AUTH");
    ::unsetenv("HEARTH_REGISTRY_CA");
    ::setenv("DOCKER_CONFIG", (tmp_ / "docker").c_str(), 1);  // no credentials from the user's config
  }
  void TearDown() override {
    ::unsetenv("HEARTH_REGISTRY_AUTH");
    ::unsetenv("HEARTH_REGISTRY_CA");
    ::unsetenv("DOCKER_CONFIG");
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  // A model of `model_bytes` pushed to `reg` as test/<model>; returns its manifest.
  std::string push_new(RegistryProcess& reg, const std::string& model, const std::string& model_bytes) {
    Store a(tmp_ / ("src-" + model));
    const ModelName name = ModelName::parse(reg.host() + "/test/" + model + ":latest");
    const std::string raw = put_model(a, name, model_bytes);
    Lines lines;
    Status st = server::push_model(a, name, true, fast_options(), lines.fn(), nullptr);
    EXPECT_TRUE(st) << st.message();
    return raw;
  }
  // A model of `bytes` random bytes pushed to `reg` as test/<model>: its name, bytes and digest.
  struct Pushed {
    ModelName name;
    std::string bytes, digest;
  };
  Pushed push_random(RegistryProcess& reg, const std::string& model, size_t bytes, int seed) {
    Pushed p{ModelName::parse(reg.host() + "/test/" + model + ":latest"), random_bytes(bytes, seed), ""};
    p.digest = "sha256:" + server::sha256_hex(p.bytes);
    push_new(reg, model, p.bytes);
    return p;
  }
  fs::path tmp_;
};

TEST_F(RegistryTest, PushThenPullIsByteIdentical) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const std::string model = read_file(testdata_dir() / "models/stories260K.gguf");
  ASSERT_GT(model.size(), size_t{1} << 20);
  Store a(tmp_ / "a");
  const ModelName name = ModelName::parse(reg.host() + "/test/tiny:latest");
  const std::string raw = put_model(a, name, model);

  Lines pushed;
  Status st = server::push_model(a, name, true, fast_options(), pushed.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(pushed.all.front(), R"({"status":"retrieving manifest"})");
  EXPECT_TRUE(pushed.has("pushing manifest"));
  EXPECT_EQ(pushed.all.back(), R"({"status":"success"})");
  // Pushing again finds every blob there (HEAD) and still succeeds.
  st = server::push_model(a, name, true, fast_options(), pushed.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();

  Store b(tmp_ / "b");
  Lines pulled;
  PullStats stats;
  st = server::pull_model(b, name, true, fast_options(), pulled.fn(), nullptr, &stats);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(pulled.all.front(), R"({"status":"pulling manifest"})");
  EXPECT_TRUE(pulled.has("verifying sha256 digest"));
  EXPECT_TRUE(pulled.has("writing manifest"));
  EXPECT_EQ(pulled.all.back(), R"({"status":"success"})");
  auto m = b.find(name);
  ASSERT_TRUE(m) << m.message();
  EXPECT_EQ(m.value().raw, raw);  // the manifest as the registry sent it, which is ours
  uint64_t total = 0;
  for (const server::Layer* l : server::transfer_order(m.value())) {
    EXPECT_EQ(b.blob_text(l->digest), a.blob_text(l->digest)) << l->digest;
    total += static_cast<uint64_t>(l->size);
    const std::string head = "\"status\":\"pulling " + l->digest.substr(7, 12) + "\"";
    bool seen_total = false;
    for (const auto& line : pulled.all)
      seen_total = seen_total || (line.find(head) != std::string::npos &&
                                  line.find("\"total\":" + std::to_string(l->size)) != std::string::npos);
    EXPECT_TRUE(seen_total) << "no progress line with the total for " << l->digest;
  }
  EXPECT_EQ(stats.fetched, total);
  EXPECT_EQ(stats.resumed, 0u);
  EXPECT_EQ(count_files(tmp_ / "b/partial"), 0u);

  // A second pull finds everything in the store.
  PullStats again;
  ASSERT_TRUE(server::pull_model(b, name, true, fast_options(), pulled.fn(), nullptr, &again));
  EXPECT_EQ(again.fetched, 0u);
}

// A layer whose `from` names another repository of the same registry is mounted from it,
// not uploaded again.
TEST_F(RegistryTest, PushMountsLayersFromTheirRepository) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const std::string model = random_bytes(size_t{2} << 20, 29);
  const std::string raw_a = push_new(reg, "base", model);
  Store a(tmp_ / "src-base");
  const ModelName derived = ModelName::parse(reg.host() + "/test/derived:latest");
  // The derived model: the same layers, the model layer marked as coming from test/base.
  std::string raw_b = raw_a;
  const std::string digest = "sha256:" + server::sha256_hex(model);
  const size_t at = raw_b.find("\"digest\":\"" + digest + "\"");
  ASSERT_NE(at, std::string::npos);
  raw_b.insert(at, "\"from\":\"" + reg.host() + "/test/base\",");
  ASSERT_TRUE(a.write_manifest(derived, raw_b));
  server::PushStats stats;
  Lines lines;
  Status st = server::push_model(a, derived, true, fast_options(), lines.fn(), nullptr, &stats);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(stats.mounted, 1);
  EXPECT_EQ(stats.uploaded, 3);  // template, license, config: no `from`, not in test/derived
  Store b(tmp_ / "b");
  ASSERT_TRUE(server::pull_model(b, derived, true, fast_options(), lines.fn(), nullptr));
  EXPECT_EQ(b.blob_text(digest), model);
}

TEST_F(RegistryTest, CutDownloadResumesAfterRestart) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const auto [name, model, digest] = push_random(reg, "big", size_t{32} << 20, 7);

  // First pull, slowed down, cut at half of the model by killing the registry.
  Store b(tmp_ / "b");
  registry::Options slow = fast_options();
  slow.max_rate = uint64_t{16} << 20;
  slow.part_min = uint64_t{16} << 20;  // two parts
  bool cut = false;
  Status st = server::pull_model(
      b, name, true, slow,
      [&](const std::string& line) {
        simdjson::dom::parser p;
        simdjson::dom::element e;
        std::string_view d;
        int64_t done = 0;
        if (p.parse(line).get(e) || e["digest"].get(d) || d != digest || e["completed"].get(done)) return;
        if (!cut && done >= static_cast<int64_t>(model.size() / 2)) {
          reg.stop();
          cut = true;
        }
      },
      nullptr);
  ASSERT_TRUE(cut);
  ASSERT_FALSE(st);
  EXPECT_FALSE(b.find(name));  // no manifest
  EXPECT_FALSE(b.has_blob(digest));
  EXPECT_TRUE(fs::exists(tmp_ / "b/partial" / ("sha256-" + digest.substr(7))));

  // The registry comes back; a new pull (as after a server restart: the state is read from
  // disk) fetches only what is missing.
  ASSERT_TRUE(reg.start());
  PullStats stats;
  Lines lines;
  st = server::pull_model(b, name, true, fast_options(), lines.fn(), nullptr, &stats);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(b.blob_text(digest), model);
  EXPECT_GE(stats.resumed, model.size() * 4 / 10) << "resumed " << stats.resumed;
  EXPECT_LE(stats.fetched, model.size() * 6 / 10) << "fetched " << stats.fetched;
  EXPECT_GE(stats.resumed + stats.fetched, model.size());
  EXPECT_LE(stats.resumed + stats.fetched, model.size() + 1024);  // the small blobs, if the cut came first
  EXPECT_EQ(count_files(tmp_ / "b/partial"), 0u);
}

// The client going away (Ctrl-C on `hearth pull`) cancels the pull: nothing published, the
// partial download kept, and the next pull takes it from there.
TEST_F(RegistryTest, CancelKeepsThePartialForTheNextPull) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const auto [name, model, digest] = push_random(reg, "cancel", size_t{8} << 20, 19);
  Store b(tmp_ / "b");
  registry::Options slow = fast_options();
  slow.max_rate = uint64_t{8} << 20;
  std::atomic<bool> gone{false};
  Status st = server::pull_model(
      b, name, true, slow,
      [&](const std::string& line) {
        if (line.find("\"digest\":\"" + digest + "\"") != std::string::npos && line.find("\"completed\"") != std::string::npos)
          gone = true;  // after the first bytes
      },
      &gone);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "cancelled");
  EXPECT_FALSE(b.find(name));
  EXPECT_FALSE(b.has_blob(digest));
  EXPECT_TRUE(fs::exists(tmp_ / "b/partial" / ("sha256-" + digest.substr(7))));
  // (The cancelled download records its progress as it stops; the next pull waits for that.)
  PullStats stats;
  st = server::pull_model(b, name, true, fast_options(), [](const std::string&) {}, nullptr, &stats);
  ASSERT_TRUE(st) << st.message();
  EXPECT_GT(stats.resumed, 0u);
  EXPECT_EQ(b.blob_text(digest), model);
}

TEST_F(RegistryTest, CorruptedBlobInTheRegistryIsRejected) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const auto [name, model, digest] = push_random(reg, "bad", size_t{3} << 20, 11);
  {
    std::fstream f(reg.blob_data(digest), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f) << reg.blob_data(digest);
    f.seekp(static_cast<std::streamoff>(model.size() / 2));
    f.put(static_cast<char>(model[model.size() / 2] ^ 0x5a));
  }
  Store b(tmp_ / "b");
  Lines lines;
  Status st = server::pull_model(b, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message().rfind("digest mismatch, file must be downloaded again: want " + digest + ", got sha256:", 0), 0u)
      << st.message();
  EXPECT_FALSE(b.find(name));
  EXPECT_FALSE(b.has_blob(digest));
  EXPECT_FALSE(fs::exists(tmp_ / "b/partial" / ("sha256-" + digest.substr(7))));
}

// A layer that fails ends the pull at once with its error, while a larger layer is still
// coming (the large one's partial data stays for the next pull).
TEST_F(RegistryTest, AFailedLayerEndsThePullAtOnce) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const auto [name, model, digest] = push_random(reg, "halfgone", size_t{16} << 20, 23);
  Store a(tmp_ / "src-halfgone");
  auto m = a.find(name);
  ASSERT_TRUE(m) << m.message();
  const std::string config = m.value().config.digest;
  ASSERT_TRUE(fs::remove(reg.blob_data(config))) << reg.blob_data(config);
  Store b(tmp_ / "b");
  registry::Options slow = fast_options();
  slow.max_rate = uint64_t{4} << 20;  // the model layer alone takes 4 s
  const auto t0 = std::chrono::steady_clock::now();
  Status st = server::pull_model(b, name, true, slow, [](const std::string&) {}, nullptr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find(config.substr(7, 12)), std::string::npos) << st.message();
  EXPECT_LT(seconds, 3.0) << st.message();
  EXPECT_FALSE(b.find(name));
  EXPECT_FALSE(b.has_blob(digest));
}

TEST_F(RegistryTest, ConcurrentPullsOfOneModelShareTheStore) {
  RegistryProcess reg(tmp_ / "reg");
  ASSERT_TRUE(reg.start());
  const auto [name, model, digest] = push_random(reg, "twice", size_t{6} << 20, 13);
  Store b(tmp_ / "b");
  registry::Options slow = fast_options();
  slow.max_rate = uint64_t{16} << 20;
  Status s1, s2;
  std::thread t1([&] { s1 = server::pull_model(b, name, true, slow, [](const std::string&) {}, nullptr); });
  std::thread t2([&] { s2 = server::pull_model(b, name, true, slow, [](const std::string&) {}, nullptr); });
  t1.join();
  t2.join();
  ASSERT_TRUE(s1) << s1.message();
  ASSERT_TRUE(s2) << s2.message();
  EXPECT_EQ(b.blob_text("sha256:" + server::sha256_hex(model)), model);
  EXPECT_EQ(b.list().size(), 1u);
  EXPECT_EQ(count_files(tmp_ / "b/partial"), 0u);
}

TEST_F(RegistryTest, BasicAuthFromTheEnvironmentAndDockerConfig) {
  const fs::path pw = tmp_ / "htpasswd";
  ASSERT_EQ(std::system(("htpasswd -Bbn hearth s3cret > " + pw.string()).c_str()), 0);
  RegistryProcess reg(tmp_ / "reg", "auth:\n  htpasswd:\n    realm: hearth-test\n    path: " + pw.string() + "\n");
  ASSERT_TRUE(reg.start());
  Store a(tmp_ / "a");
  const ModelName name = ModelName::parse(reg.host() + "/test/locked:latest");
  put_model(a, name, random_bytes(100000, 3));
  Lines lines;

  Status st = server::push_model(a, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("needs credentials"), std::string::npos) << st.message();

  ::setenv("HEARTH_REGISTRY_AUTH", (reg.host() + "=hearth:wrong").c_str(), 1);
  st = server::push_model(a, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("401"), std::string::npos) << st.message();

  // The right password from a docker config.json.
  ::unsetenv("HEARTH_REGISTRY_AUTH");
  fs::create_directories(tmp_ / "docker");
  std::ofstream(tmp_ / "docker/config.json")
      << R"({"auths":{")" << reg.host() << R"(":{"auth":")" << registry::base64_encode("hearth:s3cret") << "\"}}}";
  st = server::push_model(a, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();

  // And from HEARTH_REGISTRY_AUTH for the pull.
  fs::remove(tmp_ / "docker/config.json");
  ::setenv("HEARTH_REGISTRY_AUTH", "hearth:s3cret", 1);
  Store b(tmp_ / "b");
  st = server::pull_model(b, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(b.find(name).value().raw, a.find(name).value().raw);
}

// A registry that misbehaves in one way per repository (/v2/h/<case>/…), written here
// with httplib's server: each case must fail with a clear error and leave the store as it
// was.
class HostileRegistry {
 public:
  HostileRegistry() : port_(free_port()) {
    good_ = random_bytes(200000, 5);
    config_ = R"({"model_format":"gguf"})";
    srv_.Get(R"(/v2/h/([a-z]+)/manifests/latest)", [this](const httplib::Request& req, httplib::Response& res) {
      manifest(req.matches[1], res);
    });
    srv_.Get(R"(/v2/h/([a-z]+)/blobs/(sha256:[0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
      blob(req.matches[1], req.matches[2], req.has_header("Authorization"), res);
    });
    // The CDN a redirect points at: another origin, which must never see the credentials.
    cdn_.Get(R"(/cdn/(sha256:[0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
      cdn_requests_++;
      if (req.has_header("Authorization")) cdn_saw_auth_ = true;
      res.set_content(good_, "application/octet-stream");
    });
    thread_ = std::thread([this] { srv_.listen("127.0.0.1", port_); });
    cdn_thread_ = std::thread([this] { cdn_.listen("127.0.0.1", cdn_port_); });
    for (int i = 0; i < 200 && !(srv_.is_running() && cdn_.is_running()); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~HostileRegistry() {
    srv_.stop();
    cdn_.stop();
    thread_.join();
    cdn_thread_.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int cdn_requests() const { return cdn_requests_; }
  bool cdn_saw_auth() const { return cdn_saw_auth_; }

 private:
  static std::string layer(const std::string& type, const std::string& digest, int64_t size) {
    server::JsonWriter w;
    w.begin_object().key("mediaType").str(type).key("digest").str(digest).key("size").num(size).end_object();
    return w.text();
  }
  std::string manifest_with(const std::string& model_layer) const {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":)" +
           layer("application/vnd.docker.container.image.v1+json", "sha256:" + server::sha256_hex(config_),
                 static_cast<int64_t>(config_.size())) +
           R"(,"layers":[)" + model_layer + "]}";
  }
  void manifest(const std::string& c, httplib::Response& res) const {
    const std::string model = "application/vnd.ollama.image.model";
    const std::string good = "sha256:" + server::sha256_hex(good_);
    const int64_t size = static_cast<int64_t>(good_.size());
    std::string body;
    if (c == "mute") {  // never answers the manifest request in time
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      return res.set_content("{}", "application/json");
    }
    if (c == "nothere") {
      res.status = 404;
      return res.set_content(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})", "application/json");
    }
    if (c == "notjson") body = "<html>this is not a manifest</html>";
    else if (c == "huge") body = std::string(size_t{5} << 20, ' ') + "{}";
    else if (c == "traverse") body = manifest_with(layer(model, "sha256:../../../../etc/passwd", 10));
    else if (c == "negative") body = manifest_with(layer(model, good, -5));
    else if (c == "wrongsize") body = manifest_with(layer(model, good, size * 2));
    else if (c == "wrongdigest") body = manifest_with(layer(model, "sha256:" + std::string(64, 'a'), size));
    else if (c == "gone") body = manifest_with(layer(model, "sha256:" + std::string(64, 'b'), size));
    else body = manifest_with(layer(model, good, size));  // cut, silent, gone
    res.set_content(body, "application/vnd.docker.distribution.manifest.v2+json");
  }
  void blob(const std::string& c, const std::string& digest, bool with_auth, httplib::Response& res) const {
    if (digest == "sha256:" + server::sha256_hex(config_)) return res.set_content(config_, "application/octet-stream");
    if (c == "redirect") {  // a registry behind Basic auth that sends blobs to a CDN
      if (!with_auth) {
        res.status = 401;
        res.set_header("WWW-Authenticate", R"(Basic realm="hostile")");
        return;
      }
      res.status = 307;
      res.set_header("Location", "http://127.0.0.1:" + std::to_string(cdn_port_) + "/cdn/" + digest);
      return;
    }
    if (c == "chunked") {  // not hostile: a body without a length, in chunks
      const std::string bytes = good_;
      res.set_chunked_content_provider("application/octet-stream", [bytes](size_t off, httplib::DataSink& sink) {
        if (off < bytes.size()) sink.write(bytes.data() + off, std::min<size_t>(65536, bytes.size() - off));
        else sink.done();
        return true;
      });
      return;
    }
    if (c == "gone") {
      res.status = 404;
      return res.set_content(R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})", "application/json");
    }
    if (c == "silent") {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      return res.set_content(good_, "application/octet-stream");
    }
    if (c == "cut") {  // promises the whole blob, sends half, hangs up
      const std::string half = good_.substr(0, good_.size() / 2);
      res.set_content_provider(good_.size(), "application/octet-stream", [half](size_t off, size_t, httplib::DataSink& sink) {
        if (off < half.size()) sink.write(half.data() + off, half.size() - off);
        return off < half.size();
      });
      return;
    }
    res.set_content(good_, "application/octet-stream");  // wrongsize, wrongdigest (httplib honours Range)
  }

  int port_, cdn_port_ = free_port();
  std::string good_, config_;
  httplib::Server srv_, cdn_;
  std::thread thread_, cdn_thread_;
  std::atomic<int> cdn_requests_{0};
  std::atomic<bool> cdn_saw_auth_{false};
};

TEST_F(RegistryTest, HostileRegistriesFailCleanly) {
  HostileRegistry reg;
  registry::Options o = fast_options();
  o.stall = std::chrono::milliseconds(300);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"notjson", "pull model manifest: manifest is not JSON"},
      {"huge", "larger than 4194304 bytes"},
      {"traverse", "pull model manifest: invalid digest \"sha256:../../../../etc/passwd\""},
      {"negative", "has an invalid size -5"},
      {"wrongsize", "the registry has fewer bytes of sha256:"},
      {"wrongdigest", "digest mismatch, file must be downloaded again: want sha256:aaaa"},
      {"cut", "the connection was cut"},
      {"silent", "no data came for 300 ms"},
      {"mute", "pull model manifest: GET http://127.0.0.1:"},
      {"gone", "404: blob unknown to registry"},
      {"nothere", "pull model manifest: file does not exist"},
  };
  Store b(tmp_ / "b");
  for (const auto& [c, want] : cases) {
    SCOPED_TRACE(c);
    const ModelName name = ModelName::parse(reg.host() + "/h/" + c + ":latest");
    Lines lines;
    Status st = server::pull_model(b, name, true, o, lines.fn(), nullptr);
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
    EXPECT_TRUE(b.list().empty());
    // Nothing unverified under blobs/ (the config blob, verified, may be there).
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tmp_ / "b/blobs", ec))
      EXPECT_EQ(e.path().filename().string(), "sha256-" + server::sha256_hex(R"({"model_format":"gguf"})"));
  }
}

// A token server for the registry's bearer flow (the Docker token spec): checks Basic
// credentials and answers a JWT signed (RS256) with a key whose self-signed certificate the
// registry trusts (x5c header), granting the actions the scope asks for.
class TokenServer {
 public:
  explicit TokenServer(const fs::path& dir) : port_(free_port()) {
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=hearth-token -keyout " +
                            (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " 2>/dev/null";
    ok_ = std::system(cmd.c_str()) == 0;
    cert_path_ = dir / "cert.pem";
    if (ok_) load(dir);
    srv_.Get("/token", [this](const httplib::Request& req, httplib::Response& res) { token(req, res); });
    thread_ = std::thread([this] { srv_.listen("127.0.0.1", port_); });
    for (int i = 0; i < 200 && !srv_.is_running(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~TokenServer() {
    srv_.stop();
    thread_.join();
    EVP_PKEY_free(key_);
  }
  bool ok() const { return ok_; }
  std::string auth_yaml() const {
    return "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(port_) +
           "/token\n    service: hearth-registry\n    issuer: hearth-test-issuer\n    rootcertbundle: " +
           cert_path_.string() + "\n";
  }
  std::vector<std::string> scopes() {
    std::lock_guard lock(mu_);
    return scopes_;
  }

 private:
  static std::string b64url(std::string_view bytes) {
    std::string s = registry::base64_encode(bytes);
    for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!s.empty() && s.back() == '=') s.pop_back();
    return s;
  }
  void load(const fs::path& dir) {
    FILE* k = std::fopen((dir / "key.pem").c_str(), "r");
    key_ = PEM_read_PrivateKey(k, nullptr, nullptr, nullptr);
    std::fclose(k);
    FILE* c = std::fopen(cert_path_.c_str(), "r");
    X509* x = PEM_read_X509(c, nullptr, nullptr, nullptr);
    std::fclose(c);
    unsigned char* der = nullptr;
    const int n = i2d_X509(x, &der);
    cert_der_b64_ = registry::base64_encode(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
    OPENSSL_free(der);
    X509_free(x);
    ok_ = key_ != nullptr && n > 0;
  }
  std::string sign(const std::string& input) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_);
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    return sig;
  }
  void token(const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Basic " + registry::base64_encode("hearth:s3cret")) {
      res.status = 401;
      return res.set_content(R"({"details":"bad credentials"})", "application/json");
    }
    const std::string scope = req.get_param_value("scope");  // repository:NAME:ACTIONS
    {
      std::lock_guard lock(mu_);
      scopes_.push_back(scope);
    }
    server::JsonWriter access;
    access.begin_array();
    if (const size_t a = scope.find(':'), b = scope.rfind(':'); a != std::string::npos && b > a) {
      access.begin_object().key("type").str(scope.substr(0, a)).key("name").str(scope.substr(a + 1, b - a - 1)).key("actions").begin_array();
      for (size_t at = b + 1; at <= scope.size();) {
        size_t end = scope.find(',', at);
        if (end == std::string::npos) end = scope.size();
        access.str(scope.substr(at, end - at));
        at = end + 1;
      }
      access.end_array().end_object();
    }
    access.end_array();
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    server::JsonWriter header, claims;
    header.begin_object().key("typ").str("JWT").key("alg").str("RS256").key("x5c").begin_array().str(cert_der_b64_).end_array().end_object();
    claims.begin_object().key("iss").str("hearth-test-issuer").key("sub").str("hearth").key("aud").str(req.get_param_value("service"))
        .key("exp").num(now + 300).key("nbf").num(now - 10).key("iat").num(now).key("jti").str(std::to_string(now) + scope)
        .key("access").raw(access.text()).end_object();
    const std::string input = b64url(header.text()) + "." + b64url(claims.text());
    server::JsonWriter out;
    out.begin_object().key("token").str(input + "." + b64url(sign(input))).key("expires_in").num(int64_t{300}).end_object();
    res.set_content(out.text(), "application/json");
  }

  int port_;
  bool ok_ = false;
  fs::path cert_path_;
  EVP_PKEY* key_ = nullptr;
  std::string cert_der_b64_;
  httplib::Server srv_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> scopes_;
};

TEST_F(RegistryTest, BearerTokensFromTheRealmPerScope) {
  TokenServer tokens(tmp_);
  ASSERT_TRUE(tokens.ok());
  RegistryProcess reg(tmp_ / "reg", tokens.auth_yaml());
  ASSERT_TRUE(reg.start());
  Store a(tmp_ / "a");
  const ModelName name = ModelName::parse(reg.host() + "/test/tok:latest");
  put_model(a, name, random_bytes(300000, 17));
  Lines lines;

  // Without credentials the token server refuses, and the error says where it failed.
  Status st = server::push_model(a, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("getting a token from http://127.0.0.1:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("401"), std::string::npos) << st.message();

  ::setenv("HEARTH_REGISTRY_AUTH", "hearth:s3cret", 1);
  st = server::push_model(a, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  Store b(tmp_ / "b");
  st = server::pull_model(b, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(b.find(name).value().raw, a.find(name).value().raw);
  // Tokens were asked for the registry's scopes and cached: not one per request.
  const std::vector<std::string> scopes = tokens.scopes();
  // (The registry lists the actions of a push scope in either order.)
  EXPECT_TRUE(std::find(scopes.begin(), scopes.end(), "repository:test/tok:pull,push") != scopes.end() ||
              std::find(scopes.begin(), scopes.end(), "repository:test/tok:push,pull") != scopes.end());
  EXPECT_NE(std::find(scopes.begin(), scopes.end(), "repository:test/tok:pull"), scopes.end());
  EXPECT_LE(scopes.size(), 4u) << "tokens are cached per scope";
}

TEST_F(RegistryTest, RedirectToACdnDropsTheCredentials) {
  HostileRegistry reg;
  ::setenv("HEARTH_REGISTRY_AUTH", "hearth:s3cret", 1);
  Store b(tmp_ / "b");
  const ModelName name = ModelName::parse(reg.host() + "/h/redirect:latest");
  registry::Options o = fast_options();
  o.part_min = 65536;  // several ranged parts, each redirected
  Lines lines;
  Status st = server::pull_model(b, name, true, o, lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  auto m = b.find(name);
  ASSERT_TRUE(m);
  EXPECT_EQ(b.blob_text(m.value().layers[0].digest).size(), 200000u);
  EXPECT_GE(reg.cdn_requests(), 3);
  EXPECT_FALSE(reg.cdn_saw_auth());
}

TEST_F(RegistryTest, ChunkedBlobsAreRead) {
  HostileRegistry reg;
  Store b(tmp_ / "b");
  const ModelName name = ModelName::parse(reg.host() + "/h/chunked:latest");
  Lines lines;
  Status st = server::pull_model(b, name, true, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(b.blob_text(b.find(name).value().layers[0].digest).size(), 200000u);
}

// HTTPS to a private registry whose certificate only its own CA vouches for.
TEST_F(RegistryTest, HttpsWithThePrivateRegistrysCa) {
  const fs::path crt = tmp_ / "tls.crt", key = tmp_ / "tls.key";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
                          "subjectAltName=IP:127.0.0.1 -keyout " + key.string() + " -out " + crt.string() + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  RegistryProcess reg(tmp_ / "reg", "  tls:\n    certificate: " + crt.string() + "\n    key: " + key.string() + "\n");
  ASSERT_TRUE(reg.start());
  Store a(tmp_ / "a");
  const ModelName name = ModelName::parse(reg.host() + "/test/tls:latest");
  put_model(a, name, random_bytes(size_t{3} << 20, 31));
  Lines lines;
  Status st = server::push_model(a, name, false, fast_options(), lines.fn(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("the registry's TLS certificate did not verify"), std::string::npos) << st.message();

  ::setenv("HEARTH_REGISTRY_CA", crt.c_str(), 1);  // (TearDown unsets it)
  st = server::push_model(a, name, false, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  Store b(tmp_ / "b");
  st = server::pull_model(b, name, false, fast_options(), lines.fn(), nullptr);
  ASSERT_TRUE(st) << st.message();
  const auto pulled = b.find(name);
  ASSERT_TRUE(pulled);
  EXPECT_EQ(pulled.value().raw, a.find(name).value().raw);
  for (const server::Layer* l : server::transfer_order(pulled.value())) EXPECT_EQ(b.blob_text(l->digest), a.blob_text(l->digest));
}

// Start-up pruning removes downloads untouched for a week, unless a process holds them.
TEST_F(RegistryTest, StalePartialDownloadsArePruned) {
  Store s(tmp_ / "s");
  fs::create_directories(tmp_ / "s/partial");
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(24 * 8);
  auto make = [&](const std::string& name, bool old) {
    const fs::path data = tmp_ / "s/partial" / name, state = data.string() + ".json";
    std::ofstream(data) << "bytes";
    std::ofstream(state) << "{}";
    if (old) {
      fs::last_write_time(data, old_time);
      fs::last_write_time(state, old_time);
    }
    return data;
  };
  const fs::path stale = make("sha256-" + std::string(64, '1'), true);
  const fs::path fresh = make("sha256-" + std::string(64, '2'), false);
  const fs::path busy = make("sha256-" + std::string(64, '3'), true);
  const int fd = ::open(busy.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as a downloading process holds it
  EXPECT_EQ(s.prune_partials(Store::kPartialMaxAge), 1u);
  ::close(fd);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(stale.string() + ".json"));
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_TRUE(fs::exists(busy));
  EXPECT_TRUE(fs::exists(busy.string() + ".json"));
}

TEST(RegistryAuth, ParsesChallengesAndBase64) {
  auto c = registry::parse_challenge(R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["service"], "registry.example");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull,push");
  auto b = registry::parse_challenge(R"(Basic realm="x")");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->scheme, "basic");
  EXPECT_FALSE(registry::parse_challenge(R"(Bearer realm="unterminated)"));
  EXPECT_EQ(registry::base64_encode("hearth:s3cret"), "aGVhcnRoOnMzY3JldA==");
  EXPECT_EQ(registry::base64_decode("aGVhcnRoOnMzY3JldA==").value(), "hearth:s3cret");
  EXPECT_EQ(registry::base64_decode("YQ==").value(), "a");
  EXPECT_FALSE(registry::base64_decode("abc"));
}

}  // namespace
}  // namespace hearth::test
