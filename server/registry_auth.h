// Registry credentials and auth challenges (the OCI distribution / Docker token flows).
//
// Credentials come from HEARTH_REGISTRY_AUTH — "user:password" for every registry, or
// "host=user:password" entries separated by commas — else from a docker-style config.json
// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json: "auths" → host → "auth" as
// base64 "user:password", or "username"/"password"). They are never logged.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::server::registry {

struct Credentials {
  std::string user, password;
  std::string basic() const;  // "Basic base64(user:password)"
};

// The credentials for a registry host ("host" or "host:port"); nothing when none are set.
std::optional<Credentials> credentials_for(std::string_view host);

// One challenge of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"` or
// `Basic realm="…"`. The scheme is lower-cased; parameter names too.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
std::optional<Challenge> parse_challenge(std::string_view header);

std::string base64_encode(std::string_view bytes);
// Standard padded base64; nothing when malformed.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace hearth::server::registry
