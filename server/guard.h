// Who may talk to the server from a browser: Ollama's DNS-rebinding Host guard and its
// CORS origin rules. Pure functions of the request's headers and the listening address.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::server {

// Whether the server listens on a loopback address only (then the Host guard applies).
bool is_loopback_listen(std::string_view host);

// Ollama's allowedHostsMiddleware: the host part of a Host header ("name", "name:port",
// "[v6]:port") is allowed when it parses as an IP address that is loopback, private
// (10/8, 172.16/12, 192.168/16, fc00::/7), unspecified or one of this machine's
// interface addresses, or when it is empty, "localhost", this machine's hostname, or a
// name under .localhost, .local or .internal. Anything else is refused (403).
bool allowed_host(std::string_view host_header);

// Whether a request's credential equals the key, in time that depends on neither (both
// are hashed first, then compared with CRYPTO_memcmp): the key cannot be guessed byte by
// byte from response times.
bool same_secret(std::string_view given, std::string_view key);

// '*' matches any run of characters (gin-contrib/cors with AllowWildcard).
bool wildcard_match(std::string_view pattern, std::string_view s);

// Browser origins allowed to call the API: OLLAMA_ORIGINS plus Ollama's defaults
// (http(s)://localhost|127.0.0.1|0.0.0.0[:*], app://, file://, tauri://, vscode-webview://,
// vscode-file://).
class Origins {
 public:
  explicit Origins(const std::vector<std::string>& extra);
  bool allowed(std::string_view origin) const;
  bool any() const { return any_; }  // "*" listed: answer Access-Control-Allow-Origin: *

 private:
  std::vector<std::string> patterns_;
  bool any_ = false;
};

}  // namespace hearth::server
