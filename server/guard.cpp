#include "server/guard.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "server/store.h"  // sha256_hex

namespace hearth::server {
namespace {

// An address as 16 bytes, IPv4 in its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so that
// the checks below treat a mapped address as the IPv4 address it carries (Go's netip
// unmaps before its Is* tests).
using Addr = std::array<uint8_t, 16>;

Addr mapped_v4(const in_addr& a) {
  Addr out{};
  out[10] = out[11] = 0xff;
  std::memcpy(out.data() + 12, &a, 4);
  return out;
}

bool is_v4(const Addr& a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), prefix, 12) == 0;
}

// Strict parse: dotted-quad IPv4 (no leading zeros, as inet_pton) or IPv6 text with an
// optional %zone; anything else is a name, not an address.
std::optional<Addr> parse_ip(std::string_view text) {
  std::string s(text);
  if (const size_t pct = s.find('%'); pct != std::string::npos && s.find(':') != std::string::npos) s.resize(pct);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return mapped_v4(v4);
  in6_addr v6;
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    Addr out;
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

bool loopback(const Addr& a) {
  if (is_v4(a)) return a[12] == 127;
  static const Addr one = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return a == one;
}

bool private_range(const Addr& a) {
  if (is_v4(a)) return a[12] == 10 || (a[12] == 172 && (a[13] & 0xf0) == 16) || (a[12] == 192 && a[13] == 168);
  return (a[0] & 0xfe) == 0xfc;  // fc00::/7, unique local
}

bool unspecified(const Addr& a) {
  if (is_v4(a)) return a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 0;
  return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; });
}

// One of this machine's interface addresses (Ollama's isLocalIP).
bool interface_address(const Addr& a) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      found = mapped_v4(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr) == a;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      Addr b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      found = b == a;
    }
  }
  freeifaddrs(list);
  return found;
}

// Go's net.SplitHostPort, falling back to the whole header when it does not split.
std::string host_part(std::string_view h) {
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    if (close != std::string_view::npos && (close + 1 == h.size() || h[close + 1] == ':')) return std::string(h.substr(1, close - 1));
    return std::string(h);
  }
  if (std::count(h.begin(), h.end(), ':') == 1) return std::string(h.substr(0, h.find(':')));
  return std::string(h);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool is_loopback_listen(std::string_view host) {
  if (host == "localhost") return true;
  const auto a = parse_ip(host);
  return a && loopback(*a);
}

bool allowed_host(std::string_view header) {
  const std::string h = lower(host_part(header));
  if (const auto a = parse_ip(h)) return loopback(*a) || private_range(*a) || unspecified(*a) || interface_address(*a);
  if (h.empty() || h == "localhost") return true;
  char hostname[256] = {};
  if (gethostname(hostname, sizeof hostname - 1) == 0 && h == lower(hostname)) return true;
  return ends_with(h, ".localhost") || ends_with(h, ".local") || ends_with(h, ".internal");
}

bool wildcard_match(std::string_view pattern, std::string_view s) {
  // Iterative glob with backtracking to the last '*': linear in practice, never exponential.
  size_t p = 0, k = 0, star = std::string_view::npos, mark = 0;
  while (k < s.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = k;
    } else if (p < pattern.size() && pattern[p] == s[k]) {
      ++p;
      ++k;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      k = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Origins::Origins(const std::vector<std::string>& extra) : patterns_(extra) {
  any_ = std::find(extra.begin(), extra.end(), "*") != extra.end();
  for (const char* h : {"localhost", "127.0.0.1", "0.0.0.0"})
    for (const char* scheme : {"http://", "https://"}) {
      patterns_.push_back(std::string(scheme) + h);
      patterns_.push_back(std::string(scheme) + h + ":*");
    }
  for (const char* p : {"app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"}) patterns_.push_back(p);
}

bool Origins::allowed(std::string_view origin) const {
  return std::any_of(patterns_.begin(), patterns_.end(), [&](const std::string& p) { return wildcard_match(p, origin); });
}

bool same_secret(std::string_view given, std::string_view key) {
  const std::string a = sha256_hex(given), b = sha256_hex(key);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hearth::server
