// The HTTP framing rules as pure functions: what a request head may look like, what each
// refusal answers, and chunked bodies split at every byte.
#include <gtest/gtest.h>

#include "server/http_parse.h"

namespace hearth::server::http {
namespace {

std::optional<HeadError> parse(const std::string& head, RequestHead& out, const Limits& limits = {}) {
  return parse_head(head, limits, out);
}

int status_of(const std::string& head) {
  RequestHead h;
  auto e = parse(head, h);
  return e ? e->status : 0;
}

TEST(HttpHead, AcceptsOrdinaryRequests) {
  RequestHead h;
  ASSERT_FALSE(parse("\r\nPOST /api/blobs/sha256%3Aab?x=1 HTTP/1.1\r\nHost: localhost\r\ncontent-length: 12\r\n"
                     "Connection: keep-alive, Close\r\nX-Empty:\r\n\r\n",
                     h));
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.path, "/api/blobs/sha256:ab");
  EXPECT_EQ(h.query, "x=1");
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_FALSE(h.keep_alive);
  EXPECT_EQ(*find_header(h.headers, "X-EMPTY"), "");
  ASSERT_FALSE(parse("GET http://localhost:11434/api/tags HTTP/1.0\r\n\r\n", h));
  EXPECT_EQ(h.path, "/api/tags");
  EXPECT_FALSE(h.keep_alive);  // HTTP/1.0 without keep-alive
  ASSERT_FALSE(parse("PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n", h));
  EXPECT_TRUE(h.chunked);
  EXPECT_TRUE(h.expect_continue);
  // Header values are never percent-decoded (the auth check compares what was sent).
  ASSERT_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer%20key\r\n\r\n", h));
  EXPECT_EQ(*find_header(h.headers, "authorization"), "Bearer%20key");
}

TEST(HttpHead, RefusesWhatCouldSmuggleOrExhaust) {
  const std::string host = "Host: a\r\n";
  const std::vector<std::pair<std::string, int>> cases = {
      {"GET /\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"GET / HTTP/2.0\r\n" + host + "\r\n", 505},
      {"GET / HTTP/1.1x\r\n" + host + "\r\n", 400},
      {"G@T / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"GET api HTTP/1.1\r\n" + host + "\r\n", 400},
      {"GET /%zz HTTP/1.1\r\n" + host + "\r\n", 400},
      {"GET /a%00b HTTP/1.1\r\n" + host + "\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n" + host + "X-A : 1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n" + host + "X-A: a\x01z\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n" + host + "X-A: a\nB: c\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n" + host + "NoColon\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 1e3\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: abc\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Encoding: gzip\r\n\r\n", 415},
      {"POST / HTTP/1.1\r\n" + host + "Expect: 200-ok\r\n\r\n", 417},
  };
  for (const auto& [head, status] : cases) EXPECT_EQ(status_of(head), status) << head;
  // Content-Encoding on a request without a body is harmless.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n" + host + "Content-Encoding: gzip\r\n\r\n"), 0);
}

TEST(HttpHead, LimitsAnswerWithTheirStatus) {
  Limits l;
  l.max_headers = 3;
  l.max_request_line = 64;
  l.max_head = 512;
  RequestHead h;
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 3; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  auto e = parse(many + "\r\n", h, l);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 431);
  EXPECT_NE(e->message.find("limit 3"), std::string::npos) << e->message;
  e = parse("GET /" + std::string(64, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", h, l);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 414);
  e = parse("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(600, 'v') + "\r\n\r\n", h, l);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 431);
}

TEST(HttpHead, HeadEnd) {
  EXPECT_EQ(head_end("GET / HTTP/1.1\r\nHost: a\r\n"), std::string::npos);
  EXPECT_EQ(head_end("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), 27u);
  EXPECT_EQ(head_end("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 22u);  // leading empty lines skipped
}

TEST(HttpChunked, DecodesSplitAtEveryByte) {
  const std::string body = "4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (size_t split = 0; split <= body.size(); ++split) {
    ChunkedDecoder d;
    std::string out;
    auto sink = [&](const char* p, size_t n) { return out.append(p, n), true; };
    auto a = d.feed(std::string_view(body).substr(0, split), sink);
    ASSERT_NE(a.state, ChunkedDecoder::State::error) << split << d.error();
    size_t used = a.consumed;
    if (a.state == ChunkedDecoder::State::more) {
      auto b = d.feed(std::string_view(body).substr(split), sink);
      ASSERT_EQ(b.state, ChunkedDecoder::State::done) << split;
      used = split + b.consumed;
    }
    EXPECT_EQ(out, "Wikipedia in \r\n\r\nchunks.") << split;
    EXPECT_EQ(body.substr(used), "NEXT") << split;  // the next request is left alone
  }
}

TEST(HttpChunked, RefusesMalformedAndRefusedBodies) {
  for (const char* bad : {"x\r\n", "4\r\nWikiXX\r\n", "4\nWiki\r\n", "10000000000000000\r\n", "-1\r\n", "\r\n"}) {
    ChunkedDecoder d;
    auto s = d.feed(bad, [](const char*, size_t) { return true; });
    EXPECT_EQ(s.state, ChunkedDecoder::State::error) << bad;
    EXPECT_FALSE(d.error().empty());
  }
  ChunkedDecoder d;
  auto s = d.feed("4\r\nWiki\r\n", [](const char*, size_t) { return false; });
  EXPECT_EQ(s.state, ChunkedDecoder::State::error);
  ChunkedDecoder endless;
  const std::string trailer = "0\r\n" + std::string(70000, 'x');
  EXPECT_EQ(endless.feed(trailer, [](const char*, size_t) { return true; }).state, ChunkedDecoder::State::error);
}

TEST(HttpPath, PercentDecoding) {
  std::string out;
  EXPECT_TRUE(percent_decode("/a%2Fb%20c+d", out));
  EXPECT_EQ(out, "/a/b c+d");
  for (const char* bad : {"%", "%2", "%g0", "%00"}) EXPECT_FALSE(percent_decode(bad, out)) << bad;
}

}  // namespace
}  // namespace hearth::server::http
