// The HTTP side of the registry client under /api/pull and /api/push: requests to one
// repository of an OCI distribution registry (scheme://host, /v2/<namespace>/<model>/…),
// with the registry's auth challenges answered — HTTP Basic from registry_auth.h's
// credentials, bearer tokens fetched from the challenge's realm per scope and cached until
// they expire — and redirects followed (to another origin, a CDN, without credentials).
// Thread safety: send() may be called from several threads at once (ranged parts).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/name.h"

namespace hearth::server::registry {

struct Options {
  int retries = 6;                          // further tries of a failed part or request
  std::chrono::milliseconds backoff{1000};  // before retry n (n >= 1): backoff_for(n)
  std::chrono::milliseconds stall{30000};   // no byte for this long: the request fails
  std::chrono::milliseconds connect{10000};
  uint64_t part_min = uint64_t{16} << 20;  // download parts: clamp(size/64, part_min, 256 MiB)
  uint64_t chunk = uint64_t{64} << 20;      // upload chunk (one PATCH)
  uint64_t max_rate = 0;                    // download bytes/s over all parts; 0: unlimited
  int connections = 16;                     // download parts in flight at once (per blob)
  // The defaults, overridden by HEARTH_REGISTRY_RETRIES, HEARTH_REGISTRY_BACKOFF_MS,
  // HEARTH_REGISTRY_STALL_MS, HEARTH_REGISTRY_PART_MIN (bytes),
  // HEARTH_REGISTRY_MAX_RATE (bytes/s) and HEARTH_REGISTRY_CONNECTIONS when set (tests
  // shorten them).
  static Options from_env();
  // The wait before retry n (n >= 1): backoff * 2^(n-1), doubling at most ten times.
  std::chrono::milliseconds backoff_for(int retry) const { return backoff * (1 << std::clamp(retry - 1, 0, 10)); }
};

// Whether the transfer's cancel flag (may be null: never cancelled) is set.
inline bool cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(); }
// Sleeps `wait`, waking every 20 ms to look at the cancel flag; false when cancelled.
bool sleep_unless_cancelled(std::chrono::milliseconds wait, const std::atomic<bool>* cancel);

// An absolute http(s) URL split into its origin ("http://host:port") and target ("/p?q").
struct Url {
  std::string origin, target;
};
std::optional<Url> split_url(std::string_view absolute);

struct Reply {
  int status = 0;     // 0: no HTTP answer; `error` says why
  std::string error;  // transport failure, or a body past max_body
  bool transient = false;  // a transport failure worth retrying (a cut or stalled connection)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(std::string_view name) const;  // "" if absent (names case-insensitive)
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

struct Call {
  std::string method;  // GET, HEAD, POST, PUT, PATCH
  std::string url;     // a target on the registry ("/v2/…") or an absolute URL
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as it is (with content_type) unless `fd` is set
  std::string content_type;
  int fd = -1;  // set: the body is [offset, offset + length) of this file
  uint64_t offset = 0, length = 0;
  std::function<void(uint64_t)> sent;  // with `fd`: the body bytes sent so far
  // Receives a 2xx answer's body piece by piece (false stops). Without it the body is kept
  // in Reply::body, up to max_body bytes (more: Reply::error says so).
  std::function<bool(const char*, size_t)> receive;
  // Called with a 2xx answer's status and headers before its body (false abandons it).
  std::function<bool(const Reply&)> on_head;
  size_t max_body = size_t{1} << 20;
};

// "<status>: <the registry's first error message or the body>" (Ollama's wording for a
// registry error), or the transport error.
std::string describe(const Reply& r);

class Client {
 public:
  // `name` gives the registry (scheme://host) and repository (namespace/model); `insecure`
  // talks plain HTTP.
  Client(const ModelName& name, bool insecure, Options opt);
  const std::string& origin() const { return origin_; }
  const Options& options() const { return opt_; }
  // "/v2/<namespace>/<model>/" + tail
  std::string path(std::string_view tail) const;
  std::string repository() const { return repository_; }

  // Sends `call`, answering one 401 challenge and following up to 5 redirects.
  Reply send(const Call& call);

 private:
  std::string transport_error(int httplib_error) const;
  // A GET with a streamed body from a plain-HTTP origin, with large reads (http_get.h);
  // nothing when the answer is chunked (then cpp-httplib asks again).
  std::optional<Reply> send_raw(const Call& call, const std::string& origin, const std::string& target, bool with_auth);
  Reply send_to(const Call& call, const std::string& origin, const std::string& target, bool with_auth);
  // Sets auth_ from a 401's challenge; false (with `why`) when it cannot be answered.
  bool answer(const std::string& challenge_header, std::string* why);

  std::string origin_, host_, repository_;
  Options opt_;
  std::mutex mu_;
  std::string auth_;  // the Authorization header value this registry took; guarded by mu_
};

}  // namespace hearth::server::registry
