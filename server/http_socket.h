// Non-blocking socket I/O with deadlines for the HTTP server: every wait is bounded, so no
// client can hold a thread longer than the limit that applies to it.
#pragma once

#include <chrono>
#include <string>

#include "gguf/result.h"

namespace hearth::server::http {

using Clock = std::chrono::steady_clock;

// Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or the deadline passes.
bool wait_ready(int fd, short events, Clock::time_point deadline);

// Appends what is available (waiting until `deadline` for the first byte) to `buf`, at
// most `max` bytes. Returns the count; 0 when the peer closed, -1 on error or timeout.
long read_some(int fd, std::string& buf, size_t max, Clock::time_point deadline);

// Writes everything, giving up when no byte could be written for `stall_ms`.
bool write_all(int fd, const char* p, size_t n, int stall_ms);

// Whether the peer still has its side open (no FIN, no error). Does not block.
bool peer_open(int fd);

// A listening socket on host:port (port 0: any), non-blocking; returns fd and port.
struct Listener {
  int fd = -1;
  int port = 0;
};
Result<Listener> listen_on(const std::string& host, int port);

void set_nonblocking(int fd);
// The peer's address as text ("127.0.0.1", "::1").
std::string peer_address(int fd);

}  // namespace hearth::server::http
