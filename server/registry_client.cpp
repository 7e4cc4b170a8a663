#include "server/registry_client.h"

#include <httplib.h>
#include <simdjson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <map>
#include <strings.h>

#include "server/http_get.h"
#include "server/registry_auth.h"

namespace hearth::server::registry {

namespace {

constexpr const char* kUserAgent = "hearth/0.9.6 (ollama-compatible)";
constexpr const char* kCaBundle = "/etc/ssl/certs/ca-certificates.crt";

long env_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n >= 0) ? n : fallback;
}

bool is_redirect(int status) { return status == 301 || status == 302 || status == 303 || status == 307 || status == 308; }

// Bearer tokens by realm, service and scope, until they expire (process-wide: every pull
// and push of a repository shares them).
struct TokenCache {
  std::mutex mu;
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> tokens;
  std::optional<std::string> get(const std::string& key) {
    std::lock_guard lock(mu);
    auto it = tokens.find(key);
    if (it == tokens.end() || it->second.second <= std::chrono::steady_clock::now()) return std::nullopt;
    return it->second.first;
  }
  void put(const std::string& key, std::string token, long seconds) {
    std::lock_guard lock(mu);
    tokens[key] = {std::move(token), std::chrono::steady_clock::now() + std::chrono::seconds(seconds)};
  }
};
TokenCache& token_cache() {
  static TokenCache cache;
  return cache;
}

std::string query_escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string status_text(int status) {
  static const std::map<int, const char*> texts = {
      {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
      {405, "Method Not Allowed"}, {408, "Request Timeout"}, {413, "Content Too Large"},
      {416, "Range Not Satisfiable"}, {429, "Too Many Requests"}, {500, "Internal Server Error"},
      {502, "Bad Gateway"}, {503, "Service Unavailable"}, {504, "Gateway Timeout"}};
  auto it = texts.find(status);
  return it == texts.end() ? "unexpected status" : it->second;
}

}  // namespace

std::string Client::transport_error(int e) const {
  switch (static_cast<httplib::Error>(e)) {
    case httplib::Error::Connection: return "cannot connect";
    case httplib::Error::SSLConnection: return "the TLS handshake failed (a plain-HTTP registry needs insecure)";
    case httplib::Error::SSLServerVerification: return "the registry's TLS certificate did not verify";
    case httplib::Error::Read: return "the connection was cut, or no data came for " + std::to_string(opt_.stall.count()) + " ms";
    case httplib::Error::Write: return "sending failed (the connection was cut)";
    case httplib::Error::ConnectionTimeout: return "no connection within " + std::to_string(opt_.connect.count()) + " ms";
    default: return httplib::to_string(static_cast<httplib::Error>(e));
  }
}

Options Options::from_env() {
  Options o;
  o.retries = static_cast<int>(env_number("HEARTH_REGISTRY_RETRIES", o.retries));
  o.backoff = std::chrono::milliseconds(env_number("HEARTH_REGISTRY_BACKOFF_MS", o.backoff.count()));
  o.stall = std::chrono::milliseconds(env_number("HEARTH_REGISTRY_STALL_MS", o.stall.count()));
  o.part_min = static_cast<uint64_t>(env_number("HEARTH_REGISTRY_PART_MIN", static_cast<long>(o.part_min)));
  if (o.part_min == 0) o.part_min = 1;
  o.max_rate = static_cast<uint64_t>(env_number("HEARTH_REGISTRY_MAX_RATE", 0));
  o.connections = static_cast<int>(std::clamp<long>(env_number("HEARTH_REGISTRY_CONNECTIONS", o.connections), 1, 64));
  return o;
}

bool sleep_unless_cancelled(std::chrono::milliseconds wait, const std::atomic<bool>* cancel) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    if (cancelled(cancel)) return false;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(20), wait));
  }
  return !cancelled(cancel);
}

std::optional<Url> split_url(std::string_view s) {
  size_t scheme_end = 0;
  if (s.rfind("http://", 0) == 0) {
    scheme_end = 7;
  } else if (s.rfind("https://", 0) == 0) {
    scheme_end = 8;
  } else {
    return std::nullopt;
  }
  const size_t slash = s.find_first_of("/?", scheme_end);
  Url u;
  u.origin = std::string(s.substr(0, slash));
  if (u.origin.size() == scheme_end) return std::nullopt;
  u.target = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
  if (u.target[0] == '?') u.target = "/" + u.target;
  return u;
}

std::string Reply::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return {};
}

std::string describe(const Reply& r) {
  if (r.status == 0 || !r.error.empty()) return r.error;
  std::string text = r.body;
  simdjson::dom::parser p;
  simdjson::dom::array errors;
  if (!p.parse(r.body).get_object()["errors"].get(errors) && errors.size() > 0) {
    std::string_view m, code;
    if (!errors.at(0)["message"].get(m)) text = m;
    else if (!errors.at(0)["code"].get(code)) text = code;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > 300) text = text.substr(0, 300) + "…";
  return std::to_string(r.status) + ": " + (text.empty() ? status_text(r.status) : text);
}

Client::Client(const ModelName& name, bool insecure, Options opt) : opt_(opt) {
  host_ = name.host;
  origin_ = (insecure || name.scheme == "http" ? "http://" : "https://") + name.host;
  repository_ = name.ns + "/" + name.model;
}

std::string Client::path(std::string_view tail) const { return "/v2/" + repository_ + "/" + std::string(tail); }

std::optional<Reply> Client::send_raw(const Call& c, const std::string& origin, const std::string& target, bool with_auth) {
  // "http://host[:port]" (host may be a bracketed IPv6 literal)
  std::string host = origin.substr(7);
  int port = 80;
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    port = std::atoi(host.c_str() + colon + 1);
    host.resize(colon);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  HeaderList headers{{"User-Agent", kUserAgent}};
  for (const auto& h : c.headers) headers.push_back(h);
  if (with_auth) {
    std::lock_guard lock(mu_);
    if (!auth_.empty()) headers.emplace_back("Authorization", auth_);
  }
  Reply r;
  bool too_large = false, refused = false;
  auto on_head = [&](int status, const HeaderList& h) {
    r.status = status;
    r.headers = h;
    if (c.on_head && status >= 200 && status < 300 && !c.on_head(r)) refused = true;
    return !refused;
  };
  auto body = [&](const char* data, size_t n) {
    if (r.status >= 200 && r.status < 300) return (refused = !c.receive(data, n)) == false;
    if (r.body.size() + n > c.max_body) return (too_large = true) == false;
    r.body.append(data, n);
    return true;
  };
  const GetOptions go{opt_.connect, opt_.stall, opt_.max_rate > 0 ? 64 << 10 : 0};
  const GetError e = http_get(host, port, target, headers, go, on_head, body);
  const std::string where = "GET " + origin + target + ": ";
  switch (e) {
    case GetError::None: return r;
    case GetError::Chunked: return std::nullopt;  // cpp-httplib decodes those
    case GetError::Stopped:
      r.error = too_large ? "the registry's answer to GET " + target + " is larger than " + std::to_string(c.max_body) + " bytes"
                          : "cancelled";
      return r;
    case GetError::Connect: r.error = where + "cannot connect"; break;
    case GetError::Malformed: r.error = where + "the answer is not HTTP/1.x"; break;
    case GetError::Stalled:
    case GetError::Cut:
      r.error = where + "the connection was cut, or no data came for " + std::to_string(opt_.stall.count()) + " ms";
      r.transient = true;
      break;
  }
  r.status = 0;
  return r;
}

Reply Client::send_to(const Call& c, const std::string& origin, const std::string& target, bool with_auth) {
  if (c.method == "GET" && c.receive && origin.rfind("http://", 0) == 0)
    if (auto r = send_raw(c, origin, target, with_auth)) return *r;
  httplib::Client cli(origin);
  cli.set_connection_timeout(opt_.connect);
  cli.set_read_timeout(opt_.stall);
  cli.set_write_timeout(opt_.stall);
  cli.set_follow_location(false);
  cli.set_url_encode(false);
  cli.set_keep_alive(false);
  if (opt_.max_rate > 0) {
    // A rate limit means little while the kernel buffers megabytes ahead of the reader.
    cli.set_socket_options([](int sock) {
      int one = 1, small = 64 << 10;
      ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    });
  }
  if (origin.rfind("https://", 0) == 0) {
    // A private registry's CA (HEARTH_REGISTRY_CA, a PEM file), else the system's bundle.
    const char* ca = std::getenv("HEARTH_REGISTRY_CA");
    if (ca && *ca) cli.set_ca_cert_path(ca);
    else if (std::filesystem::exists(kCaBundle)) cli.set_ca_cert_path(kCaBundle);
  }

  httplib::Request req;
  req.method = c.method;
  req.path = target;
  req.set_header("User-Agent", kUserAgent);
  for (const auto& [k, v] : c.headers) req.set_header(k, v);
  if (with_auth) {
    std::lock_guard lock(mu_);
    if (!auth_.empty()) req.set_header("Authorization", auth_);
  }
  if (!c.content_type.empty()) req.set_header("Content-Type", c.content_type);
  if (c.fd >= 0) {
    req.content_length_ = c.length;
    const int fd = c.fd;
    const uint64_t base = c.offset;
    auto sent = c.sent;
    req.content_provider_ = [fd, base, sent](size_t off, size_t len, httplib::DataSink& sink) {
      char buf[1 << 16];
      const ssize_t n = ::pread(fd, buf, std::min(len, sizeof buf), static_cast<off_t>(base + off));
      if (n <= 0 || !sink.write(buf, static_cast<size_t>(n))) return false;
      if (sent) sent(off + static_cast<size_t>(n));
      return true;
    };
  } else {
    req.body = c.body;
  }

  Reply r;
  bool too_large = false, refused = false;
  req.response_handler = [&](const httplib::Response& res) {
    r.status = res.status;
    for (const auto& [k, v] : res.headers) r.headers.emplace_back(k, v);
    if (c.on_head && r.status >= 200 && r.status < 300 && !c.on_head(r)) {
      refused = true;
      return false;
    }
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (c.receive && r.status >= 200 && r.status < 300) {
      if (!c.receive(data, n)) refused = true;
      return !refused;
    }
    if (r.body.size() + n > c.max_body) {
      too_large = true;
      return false;
    }
    r.body.append(data, n);
    return true;
  };
  auto res = cli.send(req);
  if (too_large) {
    r.error = "the registry's answer to " + c.method + " " + target + " is larger than " + std::to_string(c.max_body) + " bytes";
  } else if (refused) {
    r.error = "cancelled";
  } else if (!res) {
    r.error = c.method + " " + origin + target + ": " + transport_error(static_cast<int>(res.error()));
    const httplib::Error e = res.error();
    r.transient = e == httplib::Error::Read || e == httplib::Error::Write || e == httplib::Error::ConnectionTimeout;
    r.status = 0;
  } else if (r.status == 0) {  // answers without a body skip the response handler
    r.status = res->status;
    for (const auto& [k, v] : res->headers) r.headers.emplace_back(k, v);
  }
  return r;
}

bool Client::answer(const std::string& header, std::string* why) {
  auto ch = parse_challenge(header);
  if (!ch) {
    *why = "the registry asked for credentials without a usable WWW-Authenticate challenge";
    return false;
  }
  const auto creds = credentials_for(host_);
  if (ch->scheme == "basic") {
    if (!creds) {
      *why = "the registry " + host_ + " needs credentials: set HEARTH_REGISTRY_AUTH or log in with docker";
      return false;
    }
    std::lock_guard lock(mu_);
    auth_ = creds->basic();
    return true;
  }
  if (ch->scheme != "bearer" || ch->params["realm"].empty()) {
    *why = "the registry asked for an unsupported authentication scheme \"" + ch->scheme + "\"";
    return false;
  }
  const std::string realm = ch->params["realm"], service = ch->params["service"], scope = ch->params["scope"];
  auto url = split_url(realm);
  if (!url || (url->origin.rfind("http://", 0) == 0 && origin_.rfind("https://", 0) == 0)) {
    *why = "the registry's token realm \"" + realm + "\" is not an acceptable URL";
    return false;
  }
  const std::string key = realm + "|" + service + "|" + scope + "|" + (creds ? creds->user : "");
  if (auto cached = token_cache().get(key)) {
    std::lock_guard lock(mu_);
    auth_ = "Bearer " + *cached;
    return true;
  }
  Call t;
  t.method = "GET";
  t.url = url->target + (url->target.find('?') == std::string::npos ? "?" : "&") + "service=" + query_escape(service);
  if (!scope.empty()) t.url += "&scope=" + query_escape(scope);
  if (creds) t.headers.emplace_back("Authorization", creds->basic());
  t.max_body = 1 << 20;
  Reply r = send_to(t, url->origin, t.url, false);
  if (!r.ok()) {
    *why = "getting a token from " + url->origin + ": " + describe(r);
    return false;
  }
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  std::string_view token;
  int64_t expires = 60;
  if (p.parse(r.body).get(doc) || (doc["token"].get(token) && doc["access_token"].get(token)) || token.empty()) {
    *why = "the token server " + url->origin + " answered without a token";
    return false;
  }
  if (!doc["expires_in"].get(expires) && expires < 10) expires = 10;
  token_cache().put(key, std::string(token), static_cast<long>(expires) - 5);
  std::lock_guard lock(mu_);
  auth_ = "Bearer " + std::string(token);
  return true;
}

Reply Client::send(const Call& c) {
  std::string origin = origin_, target = c.url;
  if (auto u = split_url(c.url)) {
    origin = u->origin;
    target = u->target;
  }
  bool answered = false;
  for (int hop = 0; hop < 6; hop++) {
    const bool with_auth = origin == origin_;
    Reply r = send_to(c, origin, target, with_auth);
    if (r.status == 401 && with_auth && !answered) {
      answered = true;
      std::string why;
      if (answer(r.header("WWW-Authenticate"), &why)) continue;
      r.body = why;
      return r;
    }
    const std::string location = r.header("Location");
    if (!is_redirect(r.status) || location.empty()) return r;
    if (auto u = split_url(location)) {
      origin = u->origin;
      target = u->target;
    } else if (!location.empty() && location[0] == '/') {
      target = location;
    } else {
      r.error = "the registry redirected to an unusable location \"" + location + "\"";
      r.status = 0;
      return r;
    }
  }
  Reply r;
  r.error = c.method + " " + c.url + ": too many redirects";
  return r;
}

}  // namespace hearth::server::registry
