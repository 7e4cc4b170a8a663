// One request and its response on a connection a worker owns: pre-routing, the route, the
// body (capped, with a minimum rate), the handler, and the response (sized or chunked).
#include <cstdio>

#include "server/http_impl.h"

namespace hearth::server::http {
namespace {

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// Matches a route pattern: literal segments, "{name}" for one non-empty segment, and a
// final "{name...}" for the non-empty rest of the path. Groups are appended to `groups`.
bool pattern_match(std::string_view pattern, std::string_view path, std::vector<std::string>& groups) {
  while (!pattern.empty()) {
    const size_t brace = pattern.find('{');
    if (brace == std::string_view::npos) return pattern == path;
    if (path.compare(0, brace, pattern, 0, brace) != 0) return false;
    path.remove_prefix(brace);
    const size_t close = pattern.find('}', brace);
    const bool rest = pattern.compare(close - 3, 3, "...") == 0;
    pattern.remove_prefix(close + 1);
    const size_t end = rest ? path.size() : std::min(path.find('/'), path.size());
    if (end == 0) return false;
    groups.emplace_back(path.substr(0, end));
    path.remove_prefix(end);
  }
  return path.empty();
}

}  // namespace

const Route* Server::Impl::match(const std::string& method, const std::string& path,
                                 std::vector<std::string>& groups) const {
  for (const Route& r : routes) {
    if (r.method != method) continue;
    groups.assign(1, path);
    if (pattern_match(r.pattern, path, groups)) return &r;
  }
  groups.clear();
  return nullptr;
}

// Passes the request body to `consume`, from what is buffered and then the socket. On
// failure, `status`/`why` say what to answer (unless `consume` refused and set them).
bool Server::Impl::stream_body(Conn& c, const RequestHead& head, const std::function<bool(const char*, size_t)>& consume,
                               bool& continued, int& status, std::string& why) {
  if (!head.has_body()) return true;
  if (head.expect_continue && !continued) {
    continued = true;
    static const std::string k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!write_all(c.fd, k100.data(), k100.size(), limits.write_timeout_ms)) return false;
  }
  const auto start = Clock::now();
  uint64_t received = 0;
  auto refill = [&]() -> bool {
    if (!c.buf.empty()) return true;
    const auto deadline = start + std::chrono::milliseconds(limits.body_timeout_ms) +
                          std::chrono::seconds(received / std::max<size_t>(limits.body_min_rate, 1));
    const long n = read_some(c.fd, c.buf, 256 << 10, deadline);
    if (n > 0) {
      received += static_cast<uint64_t>(n);
      return true;
    }
    if (n < 0 && Clock::now() >= deadline) {
      status = 408;
      why = "request body not received in time (" + std::to_string(limits.body_timeout_ms / 1000) +
            " s, then at least " + std::to_string(limits.body_min_rate) + " bytes/s)";
    } else {
      status = 400;
      why = "the connection closed before the request body ended";
    }
    return false;
  };
  if (head.chunked) {
    ChunkedDecoder decoder;
    bool refused = false;
    for (;;) {
      if (!refill()) return false;
      const auto step = decoder.feed(c.buf, [&](const char* p, size_t n) { return consume(p, n) || (refused = true, false); });
      c.buf.erase(0, step.consumed);
      if (step.state == ChunkedDecoder::State::done) return true;
      if (step.state == ChunkedDecoder::State::error) {
        if (!refused) status = 400, why = "malformed chunked body: " + decoder.error();
        return false;
      }
    }
  }
  for (uint64_t left = head.content_length; left > 0;) {
    if (!refill()) return false;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, c.buf.size()));
    const bool taken = consume(c.buf.data(), n);
    c.buf.erase(0, n);
    if (!taken) return false;
    left -= n;
  }
  return true;
}

// Writes the response: sized, or streamed from its provider as chunks (HTTP/1.1) or until
// close (HTTP/1.0). `complete`: the whole body went out.
bool Server::Impl::send_response(Conn& c, const RequestHead& head, Response& res, bool& complete) {
  const bool streamed = res.provider && head.method != "HEAD";
  const bool chunked = streamed && head.minor == 1;
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) + "\r\n";
  for (const Header& h : res.headers)
    if (!iequals(h.name, "Content-Length") && !iequals(h.name, "Transfer-Encoding") && !iequals(h.name, "Connection"))
      out += h.name + ": " + h.value + "\r\n";
  if (chunked) out += "Transfer-Encoding: chunked\r\n";
  if (!streamed && !res.provider) out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
  if (iequals(res.get_header_value("Connection"), "close")) out += "Connection: close\r\n";
  out += "\r\n";
  if (!streamed) {
    if (head.method != "HEAD") out += res.body;
    complete = true;
    return write_all(c.fd, out.data(), out.size(), limits.write_timeout_ms);
  }
  if (!write_all(c.fd, out.data(), out.size(), limits.write_timeout_ms)) return false;
  bool done = false, failed = false;
  Sink sink;
  sink.write = [&](const char* p, size_t n) {
    if (failed || done) return false;
    if (n == 0) return true;  // an empty chunk would end the body
    std::string chunk;
    if (chunked) {
      char size[24];
      std::snprintf(size, sizeof size, "%zx\r\n", n);
      chunk = size;
    }
    chunk.append(p, n);
    if (chunked) chunk += "\r\n";
    failed = !write_all(c.fd, chunk.data(), chunk.size(), limits.write_timeout_ms);
    return !failed;
  };
  sink.done = [&] {
    if (done || failed) return;
    done = true;
    if (chunked) failed = !write_all(c.fd, "0\r\n\r\n", 5, limits.write_timeout_ms);
  };
  sink.is_writable = [&] { return !failed && peer_open(c.fd); };
  bool ok = false;
  try {
    ok = res.provider(sink);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[hearth] %s %s: stream failed: %s\n", head.method.c_str(), head.path.c_str(), e.what());
  }
  if (ok) sink.done();
  complete = ok && done && !failed;
  return !failed;
}

namespace {

template <class F>
void run_handler(const Request& req, Response& res, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[hearth] %s %s: handler failed: %s\n", req.method.c_str(), req.path.c_str(), e.what());
    res = Response{};
    res.status = 500;
  }
}

}  // namespace

// Serves one request whose head has been parsed; true when the connection can carry
// another (the body was consumed, the response went out whole, nobody asked to close).
bool Server::Impl::exchange(Conn& c, RequestHead& head) {
  Request req;
  req.method = head.method;
  req.path = head.path;
  req.query = head.query;
  req.headers = head.headers;
  req.remote_addr = c.peer;
  Response res;
  bool body_read = !head.has_body(), continued = false;
  auto refuse = [&](int status, const std::string& why) {
    res = Response{};
    res.status = status;
    error_body(req.path, status, why, res);
  };
  const Route* route = nullptr;
  if (pre_routing && pre_routing(req, res)) {
    // answered before the body: the connection closes below unless there was none
  } else if (!(route = match(head.method == "HEAD" ? "GET" : head.method, head.path, req.matches))) {
    res.status = 404;
  } else if (route->streaming) {
    int status = 0;
    std::string why;
    BodyReader reader = [&](const std::function<bool(const char*, size_t)>& consume) {
      if (body_read) return true;
      body_read = stream_body(c, head, consume, continued, status, why);
      return body_read;
    };
    run_handler(req, res, [&] { route->streaming(req, res, reader); });
  } else if (head.content_length > limits.max_body) {
    refuse(413, "request body too large (limit " + mib(limits.max_body) + ")");
  } else {
    int status = 0;
    std::string why;
    std::string body;
    auto take = [&](const char* p, size_t n) {
      if (body.size() + n <= limits.max_body) return body.append(p, n), true;
      status = 413, why = "request body too large (limit " + mib(limits.max_body) + ")";
      return false;
    };
    if (!stream_body(c, head, take, continued, status, why)) {
      refuse(status, why);
    } else {
      body_read = true;
      req.body = std::move(body);
      run_handler(req, res, [&] { route->handler(req, res); });
    }
  }
  if (res.status == 0) res.status = 200;
  if (res.status >= 400 && res.body.empty() && !res.provider && error_handler) error_handler(req, res);
  const bool keep = head.keep_alive && body_read && !stopping && !(res.provider && head.minor == 0) &&
                    !iequals(res.get_header_value("Connection"), "close");
  if (!keep) res.set_header("Connection", "close");
  bool complete = false;
  const bool sent = send_response(c, head, res, complete);
  if (logger) logger(req, res);
  return keep && sent && complete;
}

}  // namespace hearth::server::http
