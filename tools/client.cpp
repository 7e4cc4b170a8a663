#include "tools/client.h"

#include <cstdio>

#include "server/api.h"

namespace hearth::cli {

using server::tmpl::Value;

std::string jstr(const std::string& s) { return server::tmpl::json_quote(s); }

Result<Client> connect() {
  auto opt = server::serve_options_from_env();
  if (!opt) return opt.error();
  std::string host = opt.value().host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  Client c;
  c.http = std::make_unique<httplib::Client>(host, opt.value().port);
  c.http->set_read_timeout(3600, 0);
  c.http->set_write_timeout(3600, 0);
  c.where = host + ":" + std::to_string(opt.value().port);
  if (!opt.value().api_key.empty()) c.headers.emplace("Authorization", "Bearer " + opt.value().api_key);
  return c;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "Error: %s\n", msg.c_str());
  return 1;
}

std::string describe(const httplib::Result& r, const Client& c) {
  if (!r) return "could not connect to a running Hearth/Ollama server at " + c.where + " (" + httplib::to_string(r.error()) + ")";
  auto v = server::tmpl::from_json(r->body);
  if (v && v.value().field("error").kind == Value::Kind::String) return v.value().field("error").s;
  return "HTTP " + std::to_string(r->status) + (r->body.empty() ? "" : ": " + r->body);
}

Result<Value> call_json(const std::string& path, const std::string* body) {
  auto c = connect();
  if (!c) return c.error();
  auto r = body ? c.value().http->Post(path, c.value().headers, *body, "application/json") : c.value().http->Get(path, c.value().headers);
  if (!r || r->status != 200) return Error{describe(r, c.value())};
  auto v = server::tmpl::from_json(r->body);
  if (!v) return Error{"bad answer from the server: " + v.message()};
  return std::move(v.value());
}

Status stream_json(Client& c, const std::string& path, const std::string& body, const std::function<bool(const Value&)>& on_line) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = c.headers;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  std::string pending, error;
  int status = 0;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      auto v = server::tmpl::from_json(line);
      if (!v) {
        error = "bad answer from the server: " + v.message();
        return false;
      }
      if (v.value().field("error").kind == Value::Kind::String) {
        error = v.value().field("error").s;
        return false;
      }
      if (!on_line(v.value())) return false;
    }
    return true;
  };
  auto r = c.http->send(req);
  if (!error.empty()) return Error{error};
  if (!pending.empty()) {  // an answer that is not a stream: one object (an error, or stream:false)
    auto v = server::tmpl::from_json(pending);
    if (v && v.value().field("error").kind == Value::Kind::String) return Error{v.value().field("error").s};
    if (v && status == 200) on_line(v.value());
  }
  if (!r && r.error() != httplib::Error::Canceled)
    return Error{"could not connect to a running Hearth/Ollama server at " + c.where + " (" + httplib::to_string(r.error()) + ")"};
  if (status != 0 && status != 200 && error.empty()) return Error{"HTTP " + std::to_string(status)};
  return {};
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

}  // namespace hearth::cli
