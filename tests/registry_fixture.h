// A real OCI registry on loopback for the registry tests: Debian's docker-registry (the
// CNCF distribution registry v2) started with its own config file in a temporary
// directory, filesystem storage, on a free port, without the system service. Also a store
// with a model in it to push.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "server/json_writer.h"
#include "server/store.h"
#include "testdata.h"

namespace hearth::test {

class RegistryProcess {
 public:
  // `auth_yaml`: an "auth:" section (htpasswd or token), or "" for an open registry.
  RegistryProcess(std::filesystem::path dir, std::string auth_yaml = "") : dir_(std::move(dir)), port_(free_port()) {
    std::filesystem::create_directories(dir_ / "data");
    std::ofstream(dir_ / "config.yml") << "version: 0.1\n"
                                          "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                                          "storage:\n  filesystem:\n    rootdirectory: "
                                       << (dir_ / "data").string()
                                       << "\n  delete:\n    enabled: true\n"
                                          "http:\n  addr: 127.0.0.1:"
                                       << port_ << "\n"
                                       << auth_yaml;
  }
  ~RegistryProcess() { stop(); }

  // Starts it and waits until /v2/ answers (any status); false after 15 s.
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string log = (dir_ / "registry.log").string();
      // The registry dies with the test process, and holds none of its output pipes (ctest
      // would wait for them).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      FILE* g = std::freopen("/dev/null", "w", stdout);
      (void)f, (void)g;
      ::execlp("docker-registry", "docker-registry", "serve", (dir_ / "config.yml").c_str(), nullptr);
      ::_exit(127);
    }
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(std::chrono::milliseconds(200));
    for (int i = 0; i < 150; i++) {
      if (auto r = c.Get("/v2/")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // The registry's own file of a blob's bytes (to corrupt it).
  std::filesystem::path blob_data(const std::string& digest) const {
    const std::string hex = digest.substr(7);
    return dir_ / "data/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex / "data";
  }

 private:
  std::filesystem::path dir_;
  int port_;
  pid_t pid_ = -1;
};

inline std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937_64 g(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = g();
    std::memcpy(&s[i], &v, std::min<size_t>(8, n - i));
  }
  return s;
}

// Writes a model into `store` under `name`: a model layer of `model_bytes`, a template, a
// license and a config. Returns the manifest's bytes.
inline std::string put_model(server::Store& store, const server::ModelName& name, const std::string& model_bytes) {
  auto blob = [&](const std::string& bytes) {
    auto d = store.write_blob_bytes(bytes);
    EXPECT_TRUE(d) << d.message();
    return d.value();
  };
  const std::string tmpl = "{{ .Prompt }}", license = "MIT " + name.model, config = R"({"model_format":"gguf"})";
  server::JsonWriter w;
  auto layer = [&](const char* type, const std::string& bytes) {
    w.begin_object().key("mediaType").str(type).key("digest").str(blob(bytes)).key("size").num(static_cast<int64_t>(bytes.size())).end_object();
  };
  w.begin_object().key("schemaVersion").num(int64_t{2}).key("mediaType").str("application/vnd.docker.distribution.manifest.v2+json");
  w.key("config");
  layer("application/vnd.docker.container.image.v1+json", config);
  w.key("layers").begin_array();
  layer("application/vnd.ollama.image.model", model_bytes);
  layer("application/vnd.ollama.image.template", tmpl);
  layer("application/vnd.ollama.image.license", license);
  w.end_array().end_object();
  const std::string raw = w.text() + "\n";
  EXPECT_TRUE(store.write_manifest(name, raw));
  return raw;
}

}  // namespace hearth::test
