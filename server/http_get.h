// A plain-HTTP/1.1 GET that streams a large body with large reads: the registry client's
// path for blob downloads from http:// registries (and CDNs). cpp-httplib reads a body 4 KiB
// at a time, which costs a 1 GB pull about 250,000 system calls on the thread that also
// writes the file; here one read takes whatever the socket holds, up to 1 MiB.
// HTTPS and chunked answers go through cpp-httplib (registry_client.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace hearth::server::registry {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

enum class GetError {
  None,
  Connect,    // no connection (refused, unresolvable, or not within the connect timeout)
  Stalled,    // no byte for the stall timeout
  Cut,        // the connection closed before the answer was whole
  Malformed,  // not an HTTP/1.x answer we can read
  Chunked,    // a chunked body (the caller asks again another way)
  Stopped,    // a callback said stop
};

struct GetOptions {
  std::chrono::milliseconds connect, stall;
  int receive_buffer = 0;  // SO_RCVBUF when > 0 (a rate limit means little with megabytes buffered)
};

// GET `target` from host:port. `on_head(status, headers)` sees the answer's head (false
// stops); `body` gets the body (Content-Length bytes, or up to the close) in pieces
// (false stops). Returns GetError::None once the whole body came.
GetError http_get(const std::string& host, int port, const std::string& target, const HeaderList& headers,
                  GetOptions t, const std::function<bool(int, const HeaderList&)>& on_head,
                  const std::function<bool(const char*, size_t)>& body);

}  // namespace hearth::server::registry
