// The HTTP layer's findings from probing the running server, each as a regression test on
// a real server over loopback: capped and never-inflated bodies, no request smuggled in a
// refused request's body, slow and idle clients holding no worker, connection limits, no
// Range amplification, header values compared as sent.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server_fixture.h"

namespace hearth::server {
namespace {

int count_of(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

class HttpLimits : public Server {
 protected:
  void SetUp() override {
    options_.http.max_body = 1 << 20;
    options_.http.head_timeout_ms = 1500;
    options_.http.body_timeout_ms = 1000;
    options_.http.workers = 2;
    options_.http.max_connections_per_client = 40;
    Server::SetUp();
  }
};

TEST_F(HttpLimits, BodiesAreCappedAndNeverInflated) {
  const std::string host = "Host: localhost\r\n";
  // A gzip body is refused before a byte of it is read.
  RawConn gz(port_);
  ASSERT_TRUE(gz.send("POST /api/show HTTP/1.1\r\n" + host + "Content-Encoding: gzip\r\nContent-Length: 510000\r\n\r\n"));
  std::string r = gz.read_until_close();
  EXPECT_EQ(r.rfind("HTTP/1.1 415", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Encoding 'gzip' is not supported"), std::string::npos) << r;
  EXPECT_TRUE(gz.closed());
  // A declared length over the cap: 413 at once, unread.
  RawConn big(port_);
  ASSERT_TRUE(big.send("POST /api/show HTTP/1.1\r\n" + host + "Content-Length: 2000000\r\n\r\n"));
  r = big.read_until_close();
  EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0u) << r;
  EXPECT_NE(r.find("limit 1 MiB"), std::string::npos) << r;
  // A chunked body is read only up to the cap.
  RawConn chunked(port_);
  std::thread sender([&] {
    chunked.send("POST /api/chat HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
    for (int i = 0; i < 64 && chunked.send(chunk); ++i) {
    }
  });
  r = chunked.read_until_close();
  sender.join();
  EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0u) << r.substr(0, 200);
  // ... and within it, a chunked JSON body is an ordinary request.
  auto show = raw_exchange(port_, "POST /api/show HTTP/1.1\r\n" + host +
                                      "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"mod\r\n0b\r\nel\":\"nope\"}\r\n0\r\n\r\n");
  EXPECT_EQ(show.rfind("HTTP/1.1 404", 0), 0u) << show;
  EXPECT_NE(show.find("model 'nope:latest' not found"), std::string::npos) << show;
  // A body sent to a path that does not exist is not read.
  RawConn stray(port_);
  ASSERT_TRUE(stray.send("POST /api/blobs/a/b HTTP/1.1\r\n" + host + "Content-Length: 10000000000\r\n\r\n"));
  r = stray.read_until_close(5);
  EXPECT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << r;
  EXPECT_TRUE(stray.closed());
  // An upload larger than the free disk is refused before a byte is stored.
  RawConn huge(port_);
  ASSERT_TRUE(huge.send("POST /api/blobs/sha256:" + std::string(64, 'a') + " HTTP/1.1\r\n" + host +
                        "Content-Length: 999999999999999999\r\n\r\n"));
  r = huge.read_until_close(5);
  EXPECT_EQ(r.rfind("HTTP/1.1 507", 0), 0u) << r;
  EXPECT_NE(r.find("not enough disk space"), std::string::npos) << r;
  EXPECT_TRUE(huge.closed());
  // A body that trickles in slower than the minimum rate is cut off.
  RawConn slow(port_);
  ASSERT_TRUE(slow.send("POST /api/show HTTP/1.1\r\n" + host + "Content-Length: 100\r\n\r\n{"));
  r = slow.read_until_close(5);
  EXPECT_EQ(r.rfind("HTTP/1.1 408", 0), 0u) << r;
}

// Every way the server answers before reading a body must not let that body be taken for
// the next request: here the body is a complete request deleting the only model.
TEST_F(HttpLimits, RefusedBodiesAreNeverRunAsRequests) {
  Store store(dir_.path());
  add_model(store, "keep", test::testdata_dir() / "models" / "stories260K.gguf");
  const std::string smuggled = "DELETE /api/delete HTTP/1.1\r\nHost: localhost\r\nContent-Length: 16\r\n\r\n{\"model\":\"keep\"}";
  const std::string blob = store.find(ModelName::parse("keep")).value().layers.front().digest;
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"POST /api/copy HTTP/1.1\r\nHost: evil.example\r\n", "403"},                         // Host guard
      {"POST /api/copy HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\n", "403"},  // CORS
      {"POST /api/blobs/" + blob + " HTTP/1.1\r\nHost: localhost\r\n", "200"},               // blob exists
      {"POST /api/blobs/sha256:zz HTTP/1.1\r\nHost: localhost\r\n", "400"},                 // bad digest
      {"POST /api/nowhere HTTP/1.1\r\nHost: localhost\r\n", "404"},
      {"POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Encoding: br\r\n", "415"},
  };
  for (const auto& [head, status] : refused) {
    RawConn c(port_);
    ASSERT_TRUE(c.send(head + "Content-Length: " + std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled));
    const std::string r = c.read_until_close(5);
    EXPECT_EQ(r.rfind("HTTP/1.1 " + status, 0), 0u) << head << r;
    EXPECT_EQ(count_of(r, "HTTP/1.1 "), 1) << head << r;
  }
  auto tags = client_->Get("/api/tags");
  ASSERT_TRUE(tags);
  EXPECT_NE(tags->body.find("\"keep:latest\""), std::string::npos) << tags->body;
}

// Slow clients trickling a header line at a time, and many idle ones, while two workers
// serve: an ordinary client is answered at once, and the slow ones get a 408 at the
// deadline however often they send.
TEST_F(HttpLimits, SlowAndIdleClientsHoldNoWorker) {
  std::vector<std::unique_ptr<RawConn>> slow, idle;
  for (int i = 0; i < 8; ++i) slow.push_back(std::make_unique<RawConn>(port_));
  for (int i = 0; i < 24; ++i) idle.push_back(std::make_unique<RawConn>(port_));
  std::atomic<bool> trickling{true};
  std::thread trickle([&] {
    for (auto& c : slow) c->send("GET /api/tags HTTP/1.1\r\nHost: localhost\r\n");
    for (int step = 0; trickling && step < 40; ++step) {
      for (auto& c : slow) c->send("X-Slow: " + std::to_string(step) + "\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  for (int i = 0; i < 5; ++i) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(1, 0);
    c.set_connection_timeout(1, 0);
    auto r = c.Get("/api/version");
    ASSERT_TRUE(r) << i << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
  }
  for (auto& c : slow) {
    const std::string r = c->read_until_close(6);
    EXPECT_EQ(r.rfind("HTTP/1.1 408", 0), 0u) << r;
    EXPECT_NE(r.find("request head not received within 1 s"), std::string::npos) << r;
  }
  trickling = false;
  trickle.join();
}

TEST_F(HttpLimits, ConnectionsPerClientAreLimited) {
  std::vector<std::unique_ptr<RawConn>> open;
  for (int i = 0; i < 40; ++i) {
    open.push_back(std::make_unique<RawConn>(port_));
    ASSERT_TRUE(open.back()->connected());
  }
  RawConn extra(port_);
  const std::string r = extra.read_until_close(5);
  EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
  EXPECT_NE(r.find("too many connections from 127.0.0.1 (limit 40)"), std::string::npos) << r;
  open.clear();  // their places come back once the server sees them close
  for (int attempt = 0;; ++attempt) {
    auto v = client_->Get("/api/version");
    if (v && v->status == 200) break;
    ASSERT_LT(attempt, 50) << "no connection accepted after others closed";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_F(Server, RangeListsAreIgnored) {
  Store store(dir_.path());
  add_model(store, "keep", test::testdata_dir() / "models" / "stories260K.gguf");
  auto plain = client_->Post("/api/show", R"({"model":"keep"})", "application/json");
  ASSERT_TRUE(plain);
  std::string ranges = "bytes=0-";
  for (int i = 0; i < 2700; ++i) ranges += ",0-";
  auto ranged = client_->Post("/api/show", {{"Range", ranges}}, R"({"model":"keep"})", "application/json");
  ASSERT_TRUE(ranged);
  EXPECT_EQ(ranged->status, 200);
  EXPECT_EQ(ranged->body, plain->body);
}

TEST_F(Server, ProtocolDetails) {
  // Two requests in one packet get two answers, in order.
  RawConn pipelined(port_);
  ASSERT_TRUE(pipelined.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"
                             "GET /nothing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  std::string r = pipelined.read_until_close();
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_NE(r.find("HTTP/1.1 404"), std::string::npos) << r;
  EXPECT_LT(r.find("\"version\""), r.find("HTTP/1.1 404")) << r;
  // HEAD: the length GET would send, no body.
  RawConn head(port_);
  ASSERT_TRUE(head.send("HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  r = head.read_until_close();
  EXPECT_NE(r.find("Content-Length: 17\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "") << r;
  // A blob upload that waits for 100 Continue gets it, then its 201.
  const std::string data = "hello blob";
  const std::string digest = sha256_hex(data);
  RawConn up(port_);
  ASSERT_TRUE(up.send("POST /api/blobs/sha256:" + digest + " HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                      "Content-Length: " + std::to_string(data.size()) + "\r\nConnection: close\r\n\r\n"));
  std::string interim;
  for (int i = 0; i < 50 && interim.find("\r\n\r\n") == std::string::npos; ++i) interim += up.read_until_close(0.1);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(up.send(data));
  r = up.read_until_close();
  EXPECT_EQ(r.rfind("HTTP/1.1 201", 0), 0u) << r;
  // Oversized heads and targets, and malformed ones, are named.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP/1.1 414"},
      {"GET / HTTP/1.1\r\nHost: localhost\r\nX: " + std::string(70000, 'v') + "\r\n\r\n", "HTTP/1.1 431"},
      {"GET / HTTP/1.1\r\nHost: localhost\r\n X: folded\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/3.0\r\nHost: localhost\r\n\r\n", "HTTP/1.1 505"},
      {"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501"},
  };
  for (const auto& [req, want] : bad) {
    RawConn c(port_);
    c.send(req);
    r = c.read_until_close();
    EXPECT_EQ(r.rfind(want, 0), 0u) << req.substr(0, 80) << "\n" << r;
    EXPECT_TRUE(c.closed());
  }
  // A refusal on a /v1 path is in OpenAI's error shape.
  EXPECT_NE(r.find("\"error\":{\"message\":"), std::string::npos) << r;
}

class KeyedHttp : public Server {
 protected:
  void SetUp() override {
    api_key_ = "k3y";
    Server::SetUp();
  }
};

TEST_F(KeyedHttp, HeaderValuesAreComparedAsSent) {
  auto encoded = client_->Get("/api/tags", {{"Authorization", "Bearer%20k3y"}});
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->status, 401);
  auto plain = client_->Get("/api/tags", {{"Authorization", "Bearer k3y"}});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  // The unauthorized request's body is not run either.
  Store store(dir_.path());
  add_model(store, "keep", test::testdata_dir() / "models" / "stories260K.gguf");
  const std::string smuggled =
      "DELETE /api/delete HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer k3y\r\nContent-Length: 16\r\n\r\n{\"model\":\"keep\"}";
  RawConn c(port_);
  ASSERT_TRUE(c.send("POST /api/copy HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(smuggled.size()) +
                     "\r\n\r\n" + smuggled));
  const std::string r = c.read_until_close(5);
  EXPECT_EQ(r.rfind("HTTP/1.1 401", 0), 0u) << r;
  EXPECT_EQ(count_of(r, "HTTP/1.1 "), 1) << r;
  auto tags = client_->Get("/api/tags", {{"Authorization", "Bearer k3y"}});
  ASSERT_TRUE(tags);
  EXPECT_NE(tags->body.find("\"keep:latest\""), std::string::npos) << tags->body;
}

// With HEARTH_API_KEY set, nothing answers without it: every route and method, HEAD,
// OPTIONS without an allowed Origin, unknown paths, and the same paths spelled with "//",
// percent escapes or other case. A preflight from an allowed origin is answered (browsers
// never send credentials in one) and reaches no handler.
TEST_F(KeyedHttp, EveryRouteAndMethodNeedsTheKey) {
  const std::vector<std::string> paths = {
      "/", "/api/version", "/api/tags", "/api/ps", "/api/generate", "/api/chat", "/api/show", "/api/create",
      "/api/copy", "/api/delete", "/api/pull", "/api/push", "/api/embed", "/api/embeddings", "/api/tokenize",
      "/api/detokenize", "/api/status", "/metrics", "/api/blobs/sha256:" + std::string(64, 'a'), "/v1/models",
      "/v1/models/x", "/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/messages/count_tokens",
      "/v1/responses", "/v1/embeddings", "/api/rerank", "/v1/rerank", "/nothing", "//api/tags", "/api/%74ags", "/API/TAGS", "/api/tags/", "/v1//models"};
  int checked = 0;
  for (const std::string& path : paths)
    for (const char* method : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
      for (const char* auth : {"", "Authorization: Bearer wrong\r\n", "Authorization: k3y\r\n", "x-api-key: wrong\r\n",
                               "Authorization: Bearer k3yy\r\n"}) {
        RawConn c(port_);
        ASSERT_TRUE(c.send(std::string(method) + " " + path + " HTTP/1.1\r\nHost: localhost\r\n" + auth +
                           "Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
        const std::string r = c.read_until_close(5);
        EXPECT_EQ(r.rfind("HTTP/1.1 401", 0), 0u) << method << " " << path << " [" << auth << "]\n" << r;
        ++checked;
      }
  EXPECT_EQ(checked, 35 * 7 * 5);
  // x-api-key is the Anthropic clients' header, on their paths only.
  auto anth = client_->Post("/v1/messages/count_tokens", {{"x-api-key", "k3y"}}, "{}", "application/json");
  ASSERT_TRUE(anth);
  EXPECT_NE(anth->status, 401);
  auto other = client_->Get("/api/tags", {{"x-api-key", "k3y"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 401);
  // An allowed origin's preflight: 204 with the CORS headers, nothing else.
  RawConn pre(port_);
  ASSERT_TRUE(pre.send("OPTIONS /api/delete HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:3000\r\n"
                       "Access-Control-Request-Method: DELETE\r\nConnection: close\r\n\r\n"));
  const std::string r = pre.read_until_close(5);
  EXPECT_EQ(r.rfind("HTTP/1.1 204", 0), 0u) << r;
  EXPECT_NE(r.find("Access-Control-Allow-Origin: http://localhost:3000"), std::string::npos) << r;
}

class LoggedKeyedHttp : public Server {
 protected:
  void SetUp() override {
    api_key_ = "sekrit-key-7";
    quiet_ = false;
    Server::SetUp();
  }
};

// The access log names method, path and status; never a credential, right or wrong.
TEST_F(LoggedKeyedHttp, TheKeyNeverReachesTheLog) {
  testing::internal::CaptureStderr();
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"Authorization", "Bearer sekrit-key-7"}, {"Authorization", "Bearer wrong-guess-1"},
           {"x-api-key", "sekrit-key-7"}, {"x-api-key", "wrong-guess-2"}})
    for (const char* path : {"/api/tags", "/v1/models", "/v1/messages/count_tokens"}) {
      auto r = client_->Get(path, {{name, value}});
      ASSERT_TRUE(r);
    }
  srv_->stop();
  thread_.join();
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("GET /api/tags 200"), std::string::npos) << log;  // the log was captured
  EXPECT_NE(log.find("GET /api/tags 401"), std::string::npos) << log;
  for (const char* secret : {"sekrit", "wrong-guess"}) EXPECT_EQ(log.find(secret), std::string::npos) << log;
  srv_ = nullptr;
}

}  // namespace
}  // namespace hearth::server
