// A real server on a free loopback port over a store in a temporary directory, and
// cpp-httplib as the client; shared by the server test files.
#pragma once

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

#include <memory>
#include <thread>

#include "server/api.h"
#include "server/store.h"
#include "testdata.h"

namespace hearth::server {

using test::fs::path;

// Writes a model into `store` the way Ollama's create does: GGUF blob, config blob,
// manifest. Returns the manifest's digest.
inline const std::string kConfig =
    R"({"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"292.80K","file_type":"F32","architecture":"amd64","os":"linux"})";

inline std::string add_model(Store& store, const std::string& name, const path& gguf_file) {
  auto model = store.write_blob_bytes(test::read_text(gguf_file));
  EXPECT_TRUE(model.ok());
  const std::string& config = kConfig;
  auto cfg = store.write_blob_bytes(config);
  EXPECT_TRUE(cfg.ok());
  const std::string manifest =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{"
      "\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" + cfg.value() + "\",\"size\":" +
      std::to_string(config.size()) + "},\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"" +
      model.value() + "\",\"size\":" + std::to_string(test::fs::file_size(gguf_file)) + "}]}\n";
  EXPECT_TRUE(store.write_manifest(ModelName::parse(name), manifest).ok());
  return sha256_hex(manifest);
}

// Sends raw bytes on a fresh connection, half-closes if asked (a client that gives up),
// and returns what the server said.
inline std::string raw_exchange(int port, const std::string& bytes, bool half_close = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!::write(fd, bytes.data(), bytes.size());
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<size_t>(n));
    // Stop at the end of one whole response (the server may keep the connection open).
    const size_t head = out.find("\r\n\r\n"), cl = out.find("Content-Length: ");
    if (head != std::string::npos && cl != std::string::npos && cl < head &&
        out.size() >= head + 4 + std::strtoull(out.c_str() + cl + 16, nullptr, 10))
      break;
  }
  ::close(fd);
  return out;
}

// A client connection driven byte by byte, for what ordinary clients never send.
class RawConn {
 public:
  explicit RawConn(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConn() { ::close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) { return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }
  // Everything the server sends until it closes the connection or `seconds` pass.
  std::string read_until_close(double seconds = 10) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    char buf[65536];
    while (std::chrono::steady_clock::now() < end) {
      timeval tv{0, 100000};
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) {
        closed_ = true;
        break;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        closed_ = true;  // reset
        break;
      }
      if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool connected_ = false;
  bool closed_ = false;
};

class Server : public ::testing::Test {
 public:
  // Options a derived fixture may change before SetUp.
  ServeOptions options_;

 protected:
  void SetUp() override {
    ServeOptions o = options_;
    o.host = "127.0.0.1";
    o.port = 0;
    o.models = dir_.path();
    o.quiet = quiet_;
    o.api_key = api_key_;
    srv_ = std::make_unique<ApiServer>(o);
    auto port = srv_->bind();
    ASSERT_TRUE(port.ok()) << port.message();
    port_ = port.value();
    thread_ = std::thread([this] { srv_->run(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    // Generous: on a loaded 2-core CI machine a model load and a generation can pass
    // cpp-httplib's default 5 s; tests about timing use their own clients.
    client_->set_read_timeout(60, 0);
  }
  void TearDown() override {
    if (srv_) srv_->stop();
    if (thread_.joinable()) thread_.join();
  }
  test::TempDir dir_;
  std::string api_key_;
  bool quiet_ = true;  // false: the access log goes to stderr
  std::unique_ptr<ApiServer> srv_;
  std::thread thread_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace hearth::server
