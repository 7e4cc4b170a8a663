// HTTP/1.1 message framing for the server, as pure functions over bytes (no sockets), so
// the fuzz target and the tests drive exactly what the server runs.
//
// Strict where leniency has been a smuggling or exhaustion vector: lines end in CRLF;
// no whitespace before a header's colon and no folded lines; one Content-Length value
// made of digits only; Transfer-Encoding only "chunked" and never beside Content-Length;
// no request body coding (no gzip bombs); header values are never percent-decoded. Every
// refusal names what was wrong and carries the status to answer with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::server::http {

struct Header {
  std::string name, value;
};
using Headers = std::vector<Header>;

// The value of the first header called `name` (ASCII case-insensitive), or nullptr.
const std::string* find_header(const Headers& headers, std::string_view name);
bool iequals(std::string_view a, std::string_view b);

// Every size and time the server enforces. The README's limits table lists them with the
// status each one answers.
struct Limits {
  size_t max_request_line = 8 << 10;   // 414 URI Too Long
  size_t max_head = 64 << 10;          // 431 (request line and every header field)
  size_t max_headers = 100;            // 431
  size_t max_body = 64 << 20;          // 413, for bodies read whole (blob uploads stream)
  int head_timeout_ms = 10000;         // 408: a request's head must arrive within this
  int idle_timeout_ms = 30000;         // a keep-alive connection idle this long is closed
  int body_timeout_ms = 20000;         // 408: the body may take this long ...
  size_t body_min_rate = 4096;         // ... plus one second per this many bytes received
  int write_timeout_ms = 60000;        // a client that reads nothing this long is dropped
  size_t max_connections = 4096;       // 503 past this many open connections
  size_t max_connections_per_client = 1024;  // 503 past this many from one address
  size_t workers = 64;                 // requests in progress at once (others wait)
};

struct RequestHead {
  std::string method;
  std::string target;  // as sent
  std::string path;    // percent-decoded, without the query
  std::string query;   // after '?', not decoded
  int minor = 1;       // HTTP/1.<minor>
  Headers headers;
  bool chunked = false;
  uint64_t content_length = 0;  // when not chunked
  bool keep_alive = true;
  bool expect_continue = false;
  bool has_body() const { return chunked || content_length > 0; }
};

struct HeadError {
  int status;
  std::string message;
};

// Where the head that starts `buf` ends (just past its blank line), or npos when it is not
// complete yet. Leading empty lines are part of the head (they are skipped, as RFC 9112
// allows).
size_t head_end(std::string_view buf);

// Parses a complete head (as delimited by head_end). On failure returns the status and
// message to answer with; `out` is then unspecified.
std::optional<HeadError> parse_head(std::string_view head, const Limits& limits, RequestHead& out);

// Decodes a chunked body incrementally. feed() consumes what it can of `in`, passes the
// data bytes to `out` (which may refuse them, e.g. past a size limit) and says whether the
// body (with its trailer section) is complete. Bytes after the end are not consumed: they
// belong to the next request.
class ChunkedDecoder {
 public:
  enum class State { more, done, error };
  struct Step {
    State state;
    size_t consumed;
  };
  Step feed(std::string_view in, const std::function<bool(const char*, size_t)>& out);
  const std::string& error() const { return error_; }

 private:
  enum class Phase { size, data, data_end, trailer, done };
  Step fail(std::string message, size_t consumed);
  Phase phase_ = Phase::size;
  std::string line_;      // the size line or trailer line being assembled
  uint64_t remaining_ = 0;
  size_t trailer_bytes_ = 0;
  std::string error_;
};

// "%2F" → "/"; false on a malformed escape or a decoded NUL.
bool percent_decode(std::string_view in, std::string& out);

}  // namespace hearth::server::http
