#include "server/registry_auth.h"

#include <openssl/evp.h>
#include <simdjson.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hearth::server::registry {

namespace {

std::optional<Credentials> split_user(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  return Credentials{std::string(s.substr(0, colon)), std::string(s.substr(colon + 1))};
}

// HEARTH_REGISTRY_AUTH: "user:password", or "host=user:password,host2=user:password".
std::optional<Credentials> from_env(std::string_view host) {
  const char* env = std::getenv("HEARTH_REGISTRY_AUTH");
  if (!env || !*env) return std::nullopt;
  const std::string_view all(env);
  if (all.find('=') == std::string_view::npos) return split_user(all);
  size_t at = 0;
  while (at <= all.size()) {
    size_t end = all.find(',', at);
    if (end == std::string_view::npos) end = all.size();
    const std::string_view entry = all.substr(at, end - at);
    const size_t eq = entry.find('=');
    if (eq != std::string_view::npos && entry.substr(0, eq) == host) return split_user(entry.substr(eq + 1));
    at = end + 1;
  }
  return std::nullopt;
}

std::filesystem::path docker_config_path() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return std::filesystem::path(d) / "config.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".docker" / "config.json";
  return {};
}

// The "auths" entry for `host` in a docker config.json (keys may carry a scheme).
std::optional<Credentials> from_docker_config(std::string_view host) {
  const std::filesystem::path path = docker_config_path();
  if (path.empty()) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  simdjson::dom::parser p;
  simdjson::dom::object auths;
  if (p.parse(ss.str()).get_object()["auths"].get(auths)) return std::nullopt;
  for (auto [key, entry] : auths) {
    std::string_view k = key;
    for (std::string_view scheme : {"https://", "http://"})
      if (k.substr(0, scheme.size()) == scheme) k.remove_prefix(scheme.size());
    if (const size_t slash = k.find('/'); slash != std::string_view::npos) k = k.substr(0, slash);
    if (k != host) continue;
    std::string_view auth, user, password;
    if (!entry["auth"].get(auth) && !auth.empty()) {
      if (auto decoded = base64_decode(auth)) return split_user(*decoded);
      return std::nullopt;
    }
    if (!entry["username"].get(user) && !entry["password"].get(password))
      return Credentials{std::string(user), std::string(password)};
  }
  return std::nullopt;
}

}  // namespace

std::string Credentials::basic() const { return "Basic " + base64_encode(user + ":" + password); }

std::optional<Credentials> credentials_for(std::string_view host) {
  if (auto c = from_env(host)) return c;
  return from_docker_config(host);
}

std::optional<Challenge> parse_challenge(std::string_view h) {
  auto skip_space = [&] {
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t' || h.front() == ',')) h.remove_prefix(1);
  };
  skip_space();
  size_t i = 0;
  while (i < h.size() && h[i] != ' ') i++;
  if (i == 0) return std::nullopt;
  Challenge c;
  for (char ch : h.substr(0, i)) c.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  h.remove_prefix(i);
  while (true) {
    skip_space();
    if (h.empty()) break;
    const size_t eq = h.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    std::string name;
    for (char ch : h.substr(0, eq)) name += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    h.remove_prefix(eq + 1);
    std::string value;
    if (!h.empty() && h.front() == '"') {
      h.remove_prefix(1);
      size_t j = 0;
      for (; j < h.size() && h[j] != '"'; j++) {
        if (h[j] == '\\' && j + 1 < h.size()) j++;
        value += h[j];
      }
      if (j == h.size()) return std::nullopt;  // unterminated quote
      h.remove_prefix(j + 1);
    } else {
      size_t j = 0;
      while (j < h.size() && h[j] != ',') j++;
      value = std::string(h.substr(0, j));
      h.remove_prefix(j);
    }
    c.params[name] = value;
  }
  return c;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && len > 0; i--) len--;  // EVP keeps the pad bytes
  out.resize(len);
  return out;
}

}  // namespace hearth::server::registry
