// What the client verbs share: a connection to the server named by OLLAMA_HOST /
// HEARTH_HOST (HEARTH_API_KEY sent as a bearer token), errors as the user should read
// them, JSON calls and NDJSON streams.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

#include "gguf/result.h"
#include "server/gotemplate.h"

namespace hearth::cli {

struct Client {
  std::unique_ptr<httplib::Client> http;
  httplib::Headers headers;
  std::string where;
};

Result<Client> connect();
// Prints "Error: msg" on stderr; returns 1.
int fail(const std::string& msg);
// An HTTP failure as the user should read it: the server's {"error"} or the transport's.
std::string describe(const httplib::Result& r, const Client& c);
// GET `path` (or POST `body` to it) and parse the JSON answer; the error says what failed.
Result<server::tmpl::Value> call_json(const std::string& path, const std::string* body = nullptr);
// POSTs `body` and calls on_line for each NDJSON object as it arrives (false stops);
// an {"error"} line or a non-200 status is the error.
Status stream_json(Client& c, const std::string& path, const std::string& body,
                   const std::function<bool(const server::tmpl::Value&)>& on_line);
std::string human_bytes(double b);
std::string jstr(const std::string& s);

}  // namespace hearth::cli
