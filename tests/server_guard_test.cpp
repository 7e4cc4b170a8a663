// The DNS-rebinding Host guard and CORS origin matching, as pure functions, and through a
// real server: a page on a rebinding name must not reach the API.
#include <gtest/gtest.h>
#include <unistd.h>

#include "server/guard.h"
#include "server/modelfile.h"
#include "server_fixture.h"

namespace hearth::server {
namespace {

TEST(HostGuard, OnlyAddressesThatParseCountAsAddresses) {
  // Found by probing: names starting with fc/fd were taken for IPv6 unique-local addresses.
  for (const char* h : {"fdevil.com", "fcbarcelona.com", "fd", "fc00.example", "fe80.evil", "fd00::1.evil.com",
                        "attacker.example", "127.0.0.1.evil.com", "10.0.0.1.nip.io", "localhost.evil.com",
                        "evil.com:11434", "169.254.169.254", "1.2.3.4", "8.8.8.8:80", "[2001:db8::1]:80",
                        "0127.0.0.1", "127.1", "[fdevil.com]", "local", ".local"})
    EXPECT_FALSE(allowed_host(h)) << h;
  for (const char* h : {"", "localhost", "LOCALHOST:11434", "127.0.0.1", "127.9.9.9:8080", "10.1.2.3", "172.16.0.1",
                        "172.31.255.255:1", "192.168.1.4", "0.0.0.0", "[::1]:80", "::1", "[fd00::1]:11434", "fc00::",
                        "[fdff:ffff::1]", "[::]:1", "[::ffff:127.0.0.1]:80", "myhost.local", "a.b.internal:1",
                        "x.localhost"})
    EXPECT_TRUE(allowed_host(h)) << h;
  EXPECT_FALSE(allowed_host("172.32.0.1"));
  EXPECT_FALSE(allowed_host("172.15.0.1"));
  char hostname[256] = {};
  ASSERT_EQ(gethostname(hostname, sizeof hostname - 1), 0);
  EXPECT_TRUE(allowed_host(std::string(hostname) + ":11434"));
}

TEST(HostGuard, LoopbackListenAddresses) {
  for (const char* h : {"127.0.0.1", "127.0.0.2", "::1", "localhost"}) EXPECT_TRUE(is_loopback_listen(h)) << h;
  for (const char* h : {"0.0.0.0", "::", "192.168.1.2", "127.evil", "fd00::1"}) EXPECT_FALSE(is_loopback_listen(h)) << h;
}

TEST(Cors, WildcardsAndDefaults) {
  EXPECT_TRUE(wildcard_match("a*c", "abbbc"));
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_FALSE(wildcard_match("a*c", "abbb"));
  EXPECT_TRUE(wildcard_match("*a*b*c*", "xxaxxbxxcxx"));
  // A pattern that is exponential for a naive recursive matcher.
  EXPECT_FALSE(wildcard_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
  const Origins o({"https://app.example.com", "chrome-extension://*"});
  for (const char* ok : {"http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://0.0.0.0",
                         "app://x", "file://", "tauri://localhost", "vscode-webview://abc", "vscode-file://x",
                         "https://app.example.com", "chrome-extension://abc"})
    EXPECT_TRUE(o.allowed(ok)) << ok;
  for (const char* bad : {"http://evil.example", "http://localhost.evil.example", "https://app.example.com.evil",
                          "null", "http://127.0.0.2"})
    EXPECT_FALSE(o.allowed(bad)) << bad;
  EXPECT_FALSE(o.any());
  EXPECT_TRUE(Origins({"*"}).any());
}

// A rebinding page: its requests carry the attacker's Host and Origin. None may reach a
// handler, in particular not one that deletes.
TEST_F(Server, RebindingNamesCannotDeleteModels) {
  Store store(dir_.path());
  add_model(store, "keep", test::testdata_dir() / "models" / "stories260K.gguf");
  for (const char* host : {"fdevil.com", "fcbarcelona.com:11434", "fd00.evil.com"}) {
    auto del = client_->Delete("/api/delete", {{"Host", host}, {"Origin", std::string("http://") + host}},
                               R"({"model":"keep"})", "application/json");
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 403) << host;
    EXPECT_EQ(del->get_header_value("Access-Control-Allow-Origin"), "") << host;
  }
  auto tags = client_->Get("/api/tags");
  ASSERT_TRUE(tags);
  EXPECT_NE(tags->body.find("\"keep:latest\""), std::string::npos);
}

// The smaller findings of the probe, each with its regression test.
TEST_F(Server, ProbeFindingsStayFixed) {
  // A second server on a busy port is refused (cpp-httplib's SO_REUSEPORT let it share).
  ServeOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.models = dir_.path();
  o.quiet = true;
  ApiServer second(o);
  auto bound = second.bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.message().find("in use"), std::string::npos) << bound.message();
  // A Content-Length that is not a plain number is a 400, and the body is not read as the
  // next request.
  for (const char* len : {"1e3", "abc", "-1", "5x", "0x10", "99999999999999999999999"}) {
    auto raw = raw_exchange(port_, "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::string(len) +
                                             "\r\n\r\n{\"model\":\"x\"}");
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << len << ": " << raw;
    EXPECT_NE(raw.find("invalid Content-Length"), std::string::npos) << len << ": " << raw;
  }
  // A name part too long for a file name is an invalid name (it was a 500 naming the
  // store's absolute path).
  Store store(dir_.path());
  add_model(store, "keep", test::testdata_dir() / "models" / "stories260K.gguf");
  const std::string long_host = std::string(300, 'a') + ".com/ns/m:t";
  auto copy = client_->Post("/api/copy", R"({"source":"keep","destination":")" + long_host + "\"}", "application/json");
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->status, 400);
  EXPECT_EQ(copy->body.find(dir_.path().string()), std::string::npos) << copy->body;
  auto create = client_->Post("/api/create", R"({"model":")" + long_host + R"(","from":"keep"})", "application/json");
  ASSERT_TRUE(create);
  EXPECT_EQ(create->status, 400) << create->body;
  EXPECT_EQ(create->body, R"({"error":"invalid model name"})");
  // A system prompt holding """ and a FROM line stays one SYSTEM value in show's Modelfile.
  auto made = client_->Post("/api/create", R"({"model":"inj","from":"keep","system":"hi\"\"\"\nFROM /etc/passwd\n\"\"\"x\""})",
                            "application/json");
  ASSERT_TRUE(made);
  ASSERT_EQ(made->status, 200) << made->body;
  auto shown = client_->Post("/api/show", R"({"model":"inj"})", "application/json");
  ASSERT_TRUE(shown);
  auto v = tmpl::from_json(shown->body);
  ASSERT_TRUE(v.ok());
  auto mf = parse_modelfile(v.value().field("modelfile").s);
  ASSERT_TRUE(mf.ok()) << mf.message() << "\n" << v.value().field("modelfile").s;
  int froms = 0;
  for (const ModelfileCommand& c : mf.value().commands) froms += c.name == "from";
  EXPECT_EQ(froms, 1) << v.value().field("modelfile").s;
}

}  // namespace
}  // namespace hearth::server

namespace hearth::server {
namespace {

// Sixteen clients that keep their connections open (keep-alive, as ollama-js and every
// HTTP library do) must not keep a seventeenth from being answered: with cpp-httplib's
// default pool of 8 threads it waited for a keep-alive timeout (5 s) to free one.
TEST_F(Server, IdleKeepAliveConnectionsDoNotStarveOthers) {
  std::vector<std::unique_ptr<httplib::Client>> idle;
  for (int i = 0; i < 16; ++i) {
    idle.push_back(std::make_unique<httplib::Client>("127.0.0.1", port_));
    idle.back()->set_keep_alive(true);
    auto r = idle.back()->Get("/api/version");
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 200);
  }
  // The next request gets its answer while those sixteen are still open; the 3 s limit is
  // below the server's 5 s keep-alive, so only a free thread can answer it in time.
  httplib::Client next("127.0.0.1", port_);
  next.set_read_timeout(3, 0);
  next.set_connection_timeout(3, 0);
  auto r = next.Get("/api/tags");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace hearth::server
