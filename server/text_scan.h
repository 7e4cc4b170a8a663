// Small scans shared by the streaming output parsers (thinking, tool calls).
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace hearth::server {

// How many whitespace bytes s starts with.
inline size_t skip_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// The length of the longest suffix of s that is a proper prefix of tag: text a stream must
// hold back because the next bytes may complete the tag. tag must not be empty.
inline size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace hearth::server
