// Hearth's own HTTP/1.1 server: requests, responses, routes and connections.
//
// Why not cpp-httplib's server (DESIGN.md names it): a probe of the running server found
// what its request reader cannot be configured out of: gzip bodies inflated without a cap,
// chunked or length-less bodies read whole before any handler could refuse them, bodies
// of refused requests parsed as the next request (smuggling), one pool thread held per
// connection for as long as a slow client trickles its headers, Range lists amplifying
// responses, header values percent-decoded before the auth check. Here:
//
// - One poller thread (epoll) owns every connection while it waits for a request head, so
//   idle and slow clients hold no worker; a head must arrive within a deadline.
// - A complete head goes to a bounded pool of workers, which read the body (capped, with
//   a minimum rate), run the handler and write the response; then the connection goes
//   back to the poller.
// - A body the handler did not consume is never parsed as a request: the connection
//   closes after the response.
// - Every limit (http_parse.h Limits) answers with a status and a message naming it.
//
// Thread safety: handlers run concurrently on worker threads; routes and hooks are set
// before run() and read-only afterwards.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gguf/result.h"
#include "server/http_parse.h"

namespace hearth::server::http {

struct Request {
  std::string method, path, query;
  Headers headers;
  std::string body;                  // read whole for ordinary routes; empty for streaming ones
  std::vector<std::string> matches;  // the route pattern's groups; [0] is the whole path
  std::string remote_addr;
  bool has_header(std::string_view name) const { return find_header(headers, name) != nullptr; }
  std::string get_header_value(std::string_view name) const {
    const std::string* v = find_header(headers, name);
    return v ? *v : std::string();
  }
};

// Writes a streamed response's bytes. write() returns false once the client is gone or
// stopped reading; is_writable() is false once the peer has closed its side.
struct Sink {
  std::function<bool(const char*, size_t)> write;
  std::function<void()> done;
  std::function<bool()> is_writable;
};
// Produces a streamed response, calling the sink until it returns (true: complete).
using ContentProvider = std::function<bool(Sink&)>;

struct Response {
  int status = 0;  // 0: 200 once a handler ran
  Headers headers;
  std::string body;
  ContentProvider provider;  // set: the body is streamed (chunked) instead of `body`

  void set_header(std::string name, std::string value);
  std::string get_header_value(std::string_view name) const {
    const std::string* v = find_header(headers, name);
    return v ? *v : std::string();
  }
  void set_content(std::string content, std::string content_type);
  void set_chunked_content_provider(std::string content_type, ContentProvider p);
};

// Streams a request body to `consume` (which may refuse more); true when all of it came.
using BodyReader = std::function<bool(const std::function<bool(const char*, size_t)>& consume)>;

using Handler = std::function<void(const Request&, Response&)>;
using StreamingHandler = std::function<void(const Request&, Response&, const BodyReader&)>;

class Server {
 public:
  explicit Server(Limits limits = {});
  ~Server();

  // Routes: a pattern over the whole decoded path per method: literal text, "{name}" for
  // one non-empty segment, a final "{name...}" for the non-empty rest; the groups land in
  // Request::matches[1..]. First match wins. HEAD is answered by the GET route without the
  // body. Unmatched paths answer 404.
  void Get(const std::string& pattern, Handler h);
  void Post(const std::string& pattern, Handler h);
  void Post(const std::string& pattern, StreamingHandler h);  // the body is not read beforehand
  void Delete(const std::string& pattern, Handler h);
  void Put(const std::string& pattern, Handler h);
  void Patch(const std::string& pattern, Handler h);

  // Runs before routing and before any body byte is read; true: answered (the body is then
  // never read and the connection closes after the response).
  void set_pre_routing_handler(std::function<bool(const Request&, Response&)> h);
  // Fills the body of an error answered without one (404s, the server's own refusals).
  void set_error_handler(std::function<void(const Request&, Response&)> h);
  // Called once per answered request (the status as sent).
  void set_logger(std::function<void(const Request&, const Response&)> h);
  // The body of a refusal made below the routes (malformed requests, limits): by path, so
  // each API family answers in its own error shape. Default: {"error": message}.
  void set_error_body(std::function<void(const std::string& path, int status, const std::string& message, Response&)> f);

  // Listens on host:port (SO_REUSEADDR, never SO_REUSEPORT); port 0 picks a free one.
  Result<int> bind(const std::string& host, int port);
  // Serves until stop(); returns after every connection is closed and every worker joined.
  void run();
  // From any thread: stops accepting, ends idle connections, wakes run().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server::http
