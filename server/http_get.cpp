#include "server/http_get.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <strings.h>

namespace hearth::server::registry {

namespace {

constexpr size_t kMaxHead = 64 << 10;
constexpr size_t kReadSize = size_t{1} << 20;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Waits for `events` on fd for up to `ms`; false on timeout or error.
bool wait_for(int fd, short events, std::chrono::milliseconds ms) {
  pollfd p{fd, events, 0};
  int r;
  do r = ::poll(&p, 1, static_cast<int>(ms.count()));
  while (r < 0 && errno == EINTR);
  return r > 0;
}

int connect_to(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    socklen_t len = sizeof err;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 &&
        (errno != EINPROGRESS || !wait_for(fd, POLLOUT, timeout) ||
         ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  return fd;
}

bool send_all(int fd, std::string_view data, std::chrono::milliseconds stall) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, stall)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Reads what is there (waiting up to `stall`): >0 bytes, 0 at the close, -1 stalled, -2 error.
ssize_t read_some(int fd, char* buf, size_t n, std::chrono::milliseconds stall) {
  while (true) {
    const ssize_t r = ::recv(fd, buf, n, 0);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return -2;
    if (!wait_for(fd, POLLIN, stall)) return -1;
  }
}

// "HTTP/1.1 206 Partial Content\r\nName: value\r\n…" → status and headers; false if malformed.
bool parse_head(std::string_view head, int* status, HeaderList* headers) {
  const size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
  *status = std::atoi(std::string(line.substr(9, 3)).c_str());
  if (*status < 100 || *status > 999) return false;
  for (size_t at = eol + 2; at < head.size();) {
    size_t end = head.find("\r\n", at);
    if (end == std::string_view::npos) end = head.size();
    const std::string_view h = head.substr(at, end - at);
    at = end + 2;
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view v = h.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    headers->emplace_back(std::string(h.substr(0, colon)), std::string(v));
  }
  return true;
}

const std::string* find(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return &v;
  return nullptr;
}

}  // namespace

GetError http_get(const std::string& host, int port, const std::string& target, const HeaderList& headers,
                  GetOptions t, const std::function<bool(int, const HeaderList&)>& on_head,
                  const std::function<bool(const char*, size_t)>& body) {
  Fd s{connect_to(host, port, t.connect)};
  if (s.fd < 0) return GetError::Connect;
  int one = 1;
  ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (t.receive_buffer > 0) ::setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &t.receive_buffer, sizeof t.receive_buffer);
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + host + (port == 80 ? "" : ":" + std::to_string(port)) + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "Connection: close\r\n\r\n";
  if (!send_all(s.fd, req, t.stall)) return GetError::Cut;

  auto buf = std::make_unique<char[]>(kReadSize);
  std::string head;
  size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > kMaxHead) return GetError::Malformed;
    const ssize_t n = read_some(s.fd, buf.get(), kReadSize, t.stall);
    if (n == -1) return GetError::Stalled;
    if (n <= 0) return GetError::Cut;
    head.append(buf.get(), static_cast<size_t>(n));
  }
  int status = 0;
  HeaderList got;
  if (!parse_head(std::string_view(head).substr(0, end), &status, &got)) return GetError::Malformed;
  if (const std::string* te = find(got, "Transfer-Encoding"); te && strcasecmp(te->c_str(), "identity") != 0)
    return GetError::Chunked;
  if (!on_head(status, got)) return GetError::Stopped;
  const std::string* cl = find(got, "Content-Length");
  char* stop = nullptr;
  const bool sized = cl != nullptr;
  uint64_t left = sized ? std::strtoull(cl->c_str(), &stop, 10) : 0;
  if (sized && (cl->empty() || *stop != '\0')) return GetError::Malformed;

  // Bytes of the body that came with the head.
  std::string_view first = std::string_view(head).substr(end + 4);
  if (sized && first.size() > left) first = first.substr(0, static_cast<size_t>(left));
  if (!first.empty() && !body(first.data(), first.size())) return GetError::Stopped;
  if (sized) left -= first.size();
  while (!sized || left > 0) {
    const ssize_t n = read_some(s.fd, buf.get(), sized ? std::min<uint64_t>(kReadSize, left) : kReadSize, t.stall);
    if (n == -1) return GetError::Stalled;
    if (n == -2 || (n == 0 && sized)) return GetError::Cut;
    if (n == 0) break;  // the body ends at the close
    if (!body(buf.get(), static_cast<size_t>(n))) return GetError::Stopped;
    if (sized) left -= static_cast<uint64_t>(n);
  }
  return GetError::None;
}

}  // namespace hearth::server::registry
