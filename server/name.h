// Ollama model names: [scheme://][host/][namespace/]model[:tag], as Ollama parses,
// validates, defaults and displays them (types/model/name.go), and where a name's
// manifest lives in the store.
#pragma once

#include <string>
#include <string_view>

namespace hearth::server {

inline constexpr std::string_view kDefaultHost = "registry.ollama.ai";
inline constexpr std::string_view kDefaultNamespace = "library";
inline constexpr std::string_view kDefaultTag = "latest";

struct ModelName {
  std::string scheme;  // "https" unless "http://" was given
  std::string host, ns, model, tag;

  // Parses and fills missing parts with the defaults; check valid() afterwards.
  static ModelName parse(std::string_view s);
  // Every part present and well-formed (see the grammar in ../shared/reference/ollama-api.md §6.1).
  bool valid() const;
  // host/namespace/model:tag
  std::string full() const;
  // Ollama's DisplayShortest: host and namespace dropped when they are the defaults.
  std::string shortest() const;
  // manifests/<host>/<namespace>/<model>/<tag>, relative to the store root.
  std::string manifest_path() const;
  // Part by part, case-insensitively (Ollama's lookups).
  bool same_model(const ModelName& o) const;
};

}  // namespace hearth::server
