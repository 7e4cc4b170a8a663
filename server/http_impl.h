// The private parts of http::Server shared by its two source files: the connection
// object and the server's state. Not for use outside server/http_*.cpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/http.h"
#include "server/http_socket.h"

namespace hearth::server::http {

struct Route {
  std::string method;
  std::string pattern;  // see pattern_match in http_exchange.cpp
  Handler handler;
  StreamingHandler streaming;
};

// Open connections, in all and by client address.
struct ConnCounts {
  std::mutex mu;
  size_t total = 0;
  std::unordered_map<std::string, size_t> by_peer;
};

// One client connection. The poller owns it while it waits for a request head, one worker
// while it is served. Closing it releases its place in the connection counts.
struct Conn {
  ConnCounts* counts;
  int fd;
  std::string peer;
  std::string buf;          // received and not yet consumed (the start of the next head)
  Clock::time_point since;  // waiting began (idle) or a head's first byte arrived
  bool partial = false;     // buf holds part of a head
  Conn(ConnCounts* n, int f, std::string p) : counts(n), fd(f), peer(std::move(p)), since(Clock::now()) {}
  ~Conn();
};

struct Server::Impl {
  Limits limits;
  std::vector<Route> routes;
  std::function<bool(const Request&, Response&)> pre_routing;
  std::function<void(const Request&, Response&)> error_handler;
  std::function<void(const Request&, const Response&)> logger;
  std::function<void(const std::string&, int, const std::string&, Response&)> error_body;  // set in Server()

  int listen_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};

  ConnCounts counts;

  std::mutex work_mu;  // connections with a complete head, waiting for a worker
  std::condition_variable work_cv;
  std::deque<std::unique_ptr<Conn>> work;
  std::mutex back_mu;  // served connections handed back to the poller
  std::vector<std::unique_ptr<Conn>> back;
  std::mutex active_mu;  // fds being served, shut down by stop()
  std::set<int> active;

  // --- the poller --------------------------------------------------------------------
  void poll_loop();
  void accept_all(int ep, std::unordered_map<int, std::unique_ptr<Conn>>& idle);
  void readable(int ep, std::unordered_map<int, std::unique_ptr<Conn>>& idle, int fd);
  void sweep(std::unordered_map<int, std::unique_ptr<Conn>>& idle);
  void refuse_quickly(int fd, int status, const std::string& message);
  void hand_back(std::unique_ptr<Conn> c);

  // --- the workers -------------------------------------------------------------------
  void worker_loop();
  void serve(std::unique_ptr<Conn> c);
  bool exchange(Conn& c, RequestHead& head);
  const Route* match(const std::string& method, const std::string& path, std::vector<std::string>& groups) const;
  bool stream_body(Conn& c, const RequestHead& head, const std::function<bool(const char*, size_t)>& consume,
                   bool& continued, int& status, std::string& why);
  bool send_response(Conn& c, const RequestHead& head, Response& res, bool& complete);
};

const char* reason(int status);

}  // namespace hearth::server::http
