// Crash safety of the model store: a real `hearth serve` process is killed with SIGKILL at
// 20 random moments during create (with quantization), blob upload, copy and delete; after
// each kill the store on disk must be whole (every manifest parses, every blob it names
// exists with its digest, no blob file holds bytes of another digest), a restarted server
// must have cleaned its temporary manifest files, and the interrupted request, repeated,
// must succeed.
#include <gtest/gtest.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "server/store.h"
#include "testdata.h"

namespace hearth::server {
namespace {

namespace fs = std::filesystem;

class StoreCrash : public ::testing::Test {
 protected:
  void start() {
    port_ = test::free_port();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("OLLAMA_HOST", ("127.0.0.1:" + std::to_string(port_)).c_str(), 1);
      ::setenv("OLLAMA_MODELS", dir_.path().c_str(), 1);
      ::unsetenv("HEARTH_API_KEY");
      ::freopen("/dev/null", "w", stderr);
      ::execl(HEARTH_BIN, "hearth", "serve", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; i < 200; ++i) {
      if (auto r = c.Get("/api/version"); r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "hearth serve did not start on port " << port_;
  }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void TearDown() override { kill9(); }

  // What the store on disk must be, whatever moment the server died at.
  void check_whole(int iteration) {
    Store store(dir_.path());
    std::error_code ec;
    size_t manifest_files = 0;
    for (auto it = fs::recursive_directory_iterator(dir_.path() / "manifests", ec); it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file() && it->path().filename().string().front() != '.') ++manifest_files;
    const std::vector<Manifest> ms = store.list();
    EXPECT_EQ(ms.size(), manifest_files) << "iteration " << iteration << ": a manifest does not parse";
    for (const Manifest& m : ms) {
      std::vector<std::string> digests{m.config.digest};
      for (const Layer& l : m.layers) digests.push_back(l.digest);
      for (const std::string& d : digests)
        EXPECT_TRUE(store.has_blob(d)) << "iteration " << iteration << ": " << m.name.shortest() << " names missing " << d;
    }
    for (const auto& e : fs::directory_iterator(dir_.path() / "blobs", ec)) {
      const std::string name = e.path().filename().string();
      if (!Store::valid_digest(name)) continue;  // a temporary upload: never read as a blob
      EXPECT_EQ("sha256-" + sha256_hex(test::read_text(e.path())), name) << "iteration " << iteration;
    }
  }
  size_t temp_manifests() {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_.path() / "manifests", ec); it != fs::recursive_directory_iterator();
         it.increment(ec))
      n += it->is_regular_file() && it->path().filename().string().find(".tmp-") != std::string::npos;
    return n;
  }

  test::TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST_F(StoreCrash, KilledAtRandomMomentsTheStoreStaysWhole) {
  Store store(dir_.path());
  auto model = store.write_blob_bytes(test::read_text(test::testdata_dir() / "models" / "stories260K.gguf"));
  ASSERT_TRUE(model.ok());
  const std::string digest = model.value();
  // A float model whose rows fit q4_K_M, for kills in the middle of a quantization.
  auto big = store.write_blob_bytes(test::read_text(test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf"));
  ASSERT_TRUE(big.ok());
  std::mt19937 rng(20261207);
  std::string body;  // of the last answer
  // One request per kind; names from a small pool so copies and deletes find models.
  auto request = [&](int kind, int i, httplib::Client& c) -> int {
    // (appended, not "p" + to_string: GCC 12 warns falsely about that, bug 105651)
    std::string a = "p", b = "p";
    a += std::to_string(i % 4);
    b += std::to_string((i + 1) % 4);
    auto status = [&](const httplib::Result& r) {
      body = r ? r->body : httplib::to_string(r.error());
      return r ? r->status : -1;
    };
    if (kind == 0) {
      const bool quantize = i % 2;
      const std::string q = quantize ? R"(,"quantize":"q4_K_M")" : "";
      return status(c.Post("/api/create", R"({"model":")" + a + R"(","stream":false,"system":"s)" + std::to_string(i) +
                                              R"(","files":{"m.gguf":")" + (quantize ? big.value() : digest) + "\"}" + q + "}",
                           "application/json"));
    }
    if (kind == 1) {
      const std::string bytes = std::string(256 << 10, static_cast<char>('a' + i % 26)) + std::to_string(i);
      return status(c.Post("/api/blobs/sha256:" + sha256_hex(bytes), bytes, "application/octet-stream"));
    }
    if (kind == 2)
      return status(c.Post("/api/copy", R"({"source":")" + a + R"(","destination":")" + b + "\"}", "application/json"));
    return status(c.Delete("/api/delete", R"({"model":")" + b + "\"}", "application/json"));
  };
  start();
  for (int i = 0; i < 20; ++i) {
    const int kind = static_cast<int>(rng() % 4);
    std::thread t([&] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(30, 0);
      request(kind, i, c);
    });
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    kill9();
    t.join();
    check_whole(i);
    start();
    EXPECT_EQ(temp_manifests(), 0u) << "iteration " << i << ": start-up left temporary manifest files";
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    const int status = request(kind, i, c);
    EXPECT_TRUE(status == 200 || status == 201 || (kind >= 2 && status == 404))
        << "iteration " << i << ": repeating request kind " << kind << " gave " << status << " " << body;
  }
  kill9();
  check_whole(20);
}

}  // namespace
}  // namespace hearth::server
