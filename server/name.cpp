#include "server/name.h"

#include <cctype>

namespace hearth::server {
namespace {

// A part that was promised by a separator but is empty: never valid.
constexpr std::string_view kMissing = "!MISSING!";

struct Cut {
  std::string before, after;
  bool found;
};

// Splits at the last `sep`; empty sides of a found separator become kMissing.
Cut cut_last(std::string_view s, std::string_view sep) {
  const size_t i = s.rfind(sep);
  if (i == std::string_view::npos) return {std::string(s), "", false};
  std::string before(s.substr(0, i)), after(s.substr(i + sep.size()));
  if (before.empty()) before = kMissing;
  if (after.empty()) after = kMissing;
  return {before, after, true};
}

enum class Part { Host, Namespace, Model, Tag };

bool alnum_(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool valid_part(Part kind, std::string_view s) {
  const size_t maxlen = kind == Part::Host ? 350 : 80;
  if (s.empty() || s.size() > maxlen) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 0) {
      if (!alnum_(c)) return false;
      continue;
    }
    if (c == '_' || c == '-') continue;
    if (c == '.') {
      if (kind == Part::Namespace) return false;
      continue;
    }
    if (c == ':') {
      if (kind != Part::Host) return false;
      continue;
    }
    if (!alnum_(c)) return false;
  }
  return true;
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

ModelName ModelName::parse(std::string_view input) {
  ModelName n;
  std::string s(input);
  // ':' cannot appear in a tag's path, so a ':' after the last '/' starts the tag.
  const size_t colon = s.rfind(':'), slash = s.rfind('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    Cut c = cut_last(s, ":");
    s = c.before;
    n.tag = c.after;
  }
  Cut m = cut_last(s, "/");
  if (!m.found) {
    n.model = s;
  } else {
    n.model = m.after;
    Cut ns = cut_last(m.before, "/");
    if (!ns.found) {
      n.ns = m.before;
    } else {
      n.ns = ns.after;
      const size_t sch = ns.before.find("://");
      if (sch == std::string::npos) {
        n.host = ns.before;
      } else {
        n.scheme = ns.before.substr(0, sch);
        n.host = ns.before.substr(sch + 3);
      }
    }
  }
  if (n.scheme.empty()) n.scheme = "https";
  if (n.host.empty()) n.host = kDefaultHost;
  if (n.ns.empty()) n.ns = kDefaultNamespace;
  if (n.tag.empty()) n.tag = kDefaultTag;
  return n;
}

bool ModelName::valid() const {
  // Each part is a directory or file name in the store: at most 255 bytes on Linux file
  // systems (Ollama's grammar allows a host of up to 350, which then fails to be written).
  for (const std::string* p : {&host, &ns, &model, &tag})
    if (p->size() > 255) return false;
  return valid_part(Part::Host, host) && valid_part(Part::Namespace, ns) && valid_part(Part::Model, model) &&
         valid_part(Part::Tag, tag);
}

std::string ModelName::full() const { return host + "/" + ns + "/" + model + ":" + tag; }

std::string ModelName::shortest() const {
  std::string s;
  if (!iequal(host, kDefaultHost)) s = host + "/" + ns + "/";
  else if (!iequal(ns, kDefaultNamespace)) s = ns + "/";
  return s + model + ":" + tag;
}

std::string ModelName::manifest_path() const { return "manifests/" + host + "/" + ns + "/" + model + "/" + tag; }

bool ModelName::same_model(const ModelName& o) const {
  return iequal(host, o.host) && iequal(ns, o.ns) && iequal(model, o.model) && iequal(tag, o.tag);
}

}  // namespace hearth::server
