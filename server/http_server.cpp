// The connection machinery of http::Server: the poller that owns waiting connections, the
// worker pool that serves one request at a time per connection, and the exchange itself
// (body, route, response). See http.h for the design.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "server/gotemplate.h"  // json_quote
#include "server/http_impl.h"

namespace hearth::server::http {

const char* reason(int status) {
  static const std::map<int, const char*> kReasons = {
      {100, "Continue"}, {200, "OK"}, {201, "Created"}, {204, "No Content"}, {400, "Bad Request"},
      {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"}, {405, "Method Not Allowed"},
      {408, "Request Timeout"}, {409, "Conflict"}, {411, "Length Required"}, {413, "Content Too Large"},
      {414, "URI Too Long"}, {415, "Unsupported Media Type"}, {417, "Expectation Failed"},
      {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"}, {499, "Client Closed Request"},
      {500, "Internal Server Error"}, {501, "Not Implemented"}, {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"}, {507, "Insufficient Storage"}};
  auto it = kReasons.find(status);
  return it == kReasons.end() ? "Status" : it->second;
}

void Response::set_header(std::string name, std::string value) {
  for (Header& h : headers)
    if (iequals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  headers.push_back({std::move(name), std::move(value)});
}

void Response::set_content(std::string content, std::string content_type) {
  body = std::move(content);
  set_header("Content-Type", std::move(content_type));
}

void Response::set_chunked_content_provider(std::string content_type, ContentProvider p) {
  provider = std::move(p);
  set_header("Content-Type", std::move(content_type));
}

Conn::~Conn() {
  ::close(fd);
  std::lock_guard lock(counts->mu);
  --counts->total;
  if (--counts->by_peer[peer] == 0) counts->by_peer.erase(peer);
}

// A short answer on a connection that is about to close, without blocking the poller.
void Server::Impl::refuse_quickly(int fd, int status, const std::string& message) {
  Response res;
  error_body("/", status, message, res);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
                    "\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: " +
                    std::to_string(res.body.size()) + "\r\nConnection: close\r\n\r\n" + res.body;
  (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Server::Impl::accept_all(int ep, std::unordered_map<int, std::unique_ptr<Conn>>& idle) {
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors: the backlog waits, and the poller must not spin on it.
      if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return;
    }
    const std::string peer = peer_address(fd);
    {
      std::lock_guard lock(counts.mu);
      std::string why;
      if (counts.total >= limits.max_connections)
        why = "too many open connections (limit " + std::to_string(limits.max_connections) + ")";
      else if (counts.by_peer[peer] >= limits.max_connections_per_client)
        why = "too many connections from " + peer + " (limit " + std::to_string(limits.max_connections_per_client) + ")";
      if (!why.empty()) {
        if (counts.by_peer[peer] == 0) counts.by_peer.erase(peer);
        refuse_quickly(fd, 503, why);
        ::close(fd);
        continue;
      }
      ++counts.total;
      ++counts.by_peer[peer];
    }
    int yes = 1;  // a streamed token goes out at once (Nagle would hold it for the ACK)
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    auto c = std::make_unique<Conn>(&counts, fd, peer);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    idle[fd] = std::move(c);
  }
}

void Server::Impl::readable(int ep, std::unordered_map<int, std::unique_ptr<Conn>>& idle, int fd) {
  auto it = idle.find(fd);
  if (it == idle.end()) return;
  Conn& c = *it->second;
  for (;;) {  // drain what has arrived, never more than one head can be
    const size_t room = limits.max_head + 1 - std::min(c.buf.size(), limits.max_head + 1);
    if (room == 0) break;
    char tmp[16 << 10];
    const ssize_t n = ::recv(fd, tmp, std::min(sizeof tmp, room), 0);
    if (n > 0) {
      c.buf.append(tmp, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // all read for now
    // Closed by the client, or failed: a complete head sent before a half-close is still
    // served (its response may yet be read); anything else ends here.
    if (n == 0 && head_end(c.buf) != std::string::npos) break;
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    idle.erase(it);
    return;
  }
  if (!c.partial && !c.buf.empty()) {
    c.partial = true;
    c.since = Clock::now();
  }
  if (head_end(c.buf) != std::string::npos) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    std::unique_ptr<Conn> owned = std::move(it->second);
    idle.erase(it);
    {
      std::lock_guard lock(work_mu);
      work.push_back(std::move(owned));
    }
    work_cv.notify_one();
    return;
  }
  const size_t line = c.buf.find("\r\n");
  int status = 0;
  std::string why;
  if (c.buf.size() > limits.max_head) {
    status = 431, why = "request head too large (limit " + std::to_string(limits.max_head) + " bytes)";
  } else if ((line == std::string::npos ? c.buf.size() : line) > limits.max_request_line) {
    status = 414, why = "request line too long (limit " + std::to_string(limits.max_request_line) + " bytes)";
  }
  if (status) {
    refuse_quickly(fd, status, why);
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    idle.erase(it);
  }
}

// Closes connections past their deadline: a head that has not arrived in time gets a 408;
// an idle keep-alive connection just closes.
void Server::Impl::sweep(std::unordered_map<int, std::unique_ptr<Conn>>& idle) {
  const auto now = Clock::now();
  for (auto it = idle.begin(); it != idle.end();) {
    Conn& c = *it->second;
    const int limit = c.partial ? limits.head_timeout_ms : limits.idle_timeout_ms;
    if (now - c.since < std::chrono::milliseconds(limit)) {
      ++it;
      continue;
    }
    if (c.partial) refuse_quickly(c.fd, 408, "request head not received within " + std::to_string(limit / 1000) + " s");
    it = idle.erase(it);  // closing the fd removes it from the epoll set
  }
}

void Server::Impl::hand_back(std::unique_ptr<Conn> c) {
  {
    std::lock_guard lock(back_mu);
    back.push_back(std::move(c));
  }
  const uint64_t one = 1;
  (void)!::write(wake_fd, &one, sizeof one);
}

void Server::Impl::poll_loop() {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::unordered_map<int, std::unique_ptr<Conn>> idle;
  for (int fd : {listen_fd, wake_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  epoll_event events[128];
  while (!stopping) {
    const int n = ::epoll_wait(ep, events, 128, 250);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd) {
        accept_all(ep, idle);
      } else if (fd == wake_fd) {
        uint64_t count;
        (void)!::read(wake_fd, &count, sizeof count);
        std::vector<std::unique_ptr<Conn>> returned;
        {
          std::lock_guard lock(back_mu);
          returned.swap(back);
        }
        for (auto& c : returned) {
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.fd = c->fd;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
          const int cfd = c->fd;
          idle[cfd] = std::move(c);
        }
      } else {
        readable(ep, idle, fd);
      }
    }
    sweep(idle);
  }
  idle.clear();
  ::close(ep);
}

// --- workers ------------------------------------------------------------------------

void Server::Impl::worker_loop() {
  for (;;) {
    std::unique_ptr<Conn> c;
    {
      std::unique_lock lock(work_mu);
      work_cv.wait(lock, [&] { return stopping || !work.empty(); });
      if (stopping) return;
      c = std::move(work.front());
      work.pop_front();
    }
    {
      std::lock_guard lock(active_mu);
      active.insert(c->fd);
    }
    const int fd = c->fd;
    serve(std::move(c));
    std::lock_guard lock(active_mu);
    active.erase(fd);
  }
}

// Serves requests on `c` while complete heads are buffered (pipelining), then hands it
// back to the poller, or closes it.
void Server::Impl::serve(std::unique_ptr<Conn> c) {
  for (;;) {
    const size_t end = head_end(c->buf);
    if (end == std::string::npos) break;
    RequestHead head;
    const auto err = parse_head(std::string_view(c->buf).substr(0, end), limits, head);
    c->buf.erase(0, end);
    if (err) {
      Response res;
      res.status = err->status;
      error_body(head.path.empty() ? "/" : head.path, err->status, err->message, res);
      res.set_header("Connection", "close");
      head.keep_alive = false;
      bool complete = false;
      send_response(*c, head, res, complete);
      if (logger) logger(Request{head.method, head.path, head.query, head.headers, {}, {}, c->peer}, res);
      return;
    }
    if (!exchange(*c, head) || stopping) return;
  }
  c->partial = !c->buf.empty();
  c->since = Clock::now();
  hand_back(std::move(c));
}

}  // namespace hearth::server::http

namespace hearth::server::http {

Server::Server(Limits limits) : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->error_body = [](const std::string&, int, const std::string& message, Response& res) {
    res.set_content("{\"error\":" + tmpl::json_quote(message) + "}", "application/json; charset=utf-8");
  };
  impl_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

Server::~Server() {
  if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
  ::close(impl_->wake_fd);
}

void Server::Get(const std::string& p, Handler h) { impl_->routes.push_back({"GET", p, std::move(h), {}}); }
void Server::Post(const std::string& p, Handler h) { impl_->routes.push_back({"POST", p, std::move(h), {}}); }
void Server::Post(const std::string& p, StreamingHandler h) { impl_->routes.push_back({"POST", p, {}, std::move(h)}); }
void Server::Delete(const std::string& p, Handler h) { impl_->routes.push_back({"DELETE", p, std::move(h), {}}); }
void Server::Put(const std::string& p, Handler h) { impl_->routes.push_back({"PUT", p, std::move(h), {}}); }
void Server::Patch(const std::string& p, Handler h) { impl_->routes.push_back({"PATCH", p, std::move(h), {}}); }

void Server::set_pre_routing_handler(std::function<bool(const Request&, Response&)> h) { impl_->pre_routing = std::move(h); }
void Server::set_error_handler(std::function<void(const Request&, Response&)> h) { impl_->error_handler = std::move(h); }
void Server::set_logger(std::function<void(const Request&, const Response&)> h) { impl_->logger = std::move(h); }
void Server::set_error_body(std::function<void(const std::string&, int, const std::string&, Response&)> f) {
  impl_->error_body = std::move(f);
}

Result<int> Server::bind(const std::string& host, int port) {
  auto l = listen_on(host, port);
  if (!l) return l.error();
  impl_->listen_fd = l.value().fd;
  return l.value().port;
}

void Server::run() {
  Impl& s = *impl_;
  if (s.listen_fd < 0) return;
  // Descriptors: as many as the hard limit allows; connections stay below what is left
  // after the models, logs and workers' files.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur > 256)
    s.limits.max_connections = std::min<size_t>(s.limits.max_connections, nofile.rlim_cur - 128);
  std::vector<std::thread> workers;
  for (size_t i = 0; i < std::max<size_t>(s.limits.workers, 1); ++i) workers.emplace_back([&s] { s.worker_loop(); });
  s.poll_loop();
  s.work_cv.notify_all();
  {
    // Requests in progress end at their next read or write.
    std::lock_guard lock(s.active_mu);
    for (int fd : s.active) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers) t.join();
  std::lock_guard lock(s.work_mu);
  s.work.clear();
  s.back.clear();
  ::close(s.listen_fd);
  s.listen_fd = -1;
}

void Server::stop() {
  impl_->stopping = true;
  {
    std::lock_guard lock(impl_->work_mu);  // a worker between its check and its wait sees the flag
  }
  impl_->work_cv.notify_all();
  const uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
}

}  // namespace hearth::server::http
