#include "server/http_parse.h"

#include <algorithm>
#include <cctype>

namespace hearth::server::http {
namespace {

bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// Field values: visible ASCII, space, tab and any byte >= 0x80; no other control bytes.
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || c >= 0x20 ? c != 0x7f : false;
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value lists `token` (case-insensitive).
bool lists(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Quotes at most 64 bytes of what the client sent, for messages.
std::string shown(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, 64));
  out += s.size() > 64 ? "…'" : "'";
  return out;
}

std::optional<HeadError> parse_request_line(std::string_view line, const Limits& limits, RequestHead& out) {
  if (line.size() > limits.max_request_line)
    return HeadError{414, "request line too long (limit " + std::to_string(limits.max_request_line) + " bytes)"};
  const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) return HeadError{400, "malformed request line " + shown(line)};
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (!is_token(method)) return HeadError{400, "malformed method " + shown(method)};
  if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || !std::isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7])))
    return HeadError{400, "malformed HTTP version " + shown(version)};
  if (version[5] != '1') return HeadError{505, "HTTP version " + std::string(version) + " is not supported"};
  out.minor = version[7] - '0';
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c != 0x7f; }))
    return HeadError{400, "malformed request target " + shown(target)};
  out.method = std::string(method);
  out.target = std::string(target);
  std::string_view origin = target;
  // The absolute form (a proxy's) names the same resource: its path is what counts.
  if (origin.rfind("http://", 0) == 0 || origin.rfind("https://", 0) == 0) {
    const size_t slash = origin.find('/', origin.find("//") + 2);
    origin = slash == std::string_view::npos ? std::string_view("/") : origin.substr(slash);
  }
  if (origin == "*" && method == "OPTIONS") origin = "/";
  if (origin.front() != '/') return HeadError{400, "malformed request target " + shown(target)};
  const size_t qm = origin.find('?');
  if (qm != std::string_view::npos) out.query = std::string(origin.substr(qm + 1));
  if (!percent_decode(origin.substr(0, qm), out.path)) return HeadError{400, "malformed escape in path " + shown(target)};
  return std::nullopt;
}

std::optional<HeadError> parse_field(std::string_view line, RequestHead& out) {
  if (line.front() == ' ' || line.front() == '\t') return HeadError{400, "folded header lines are not accepted"};
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return HeadError{400, "malformed header line " + shown(line)};
  const std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
  if (!is_token(name)) return HeadError{400, "malformed header name " + shown(name)};
  if (!is_field_value(value)) return HeadError{400, "control character in header " + shown(name)};
  out.headers.push_back({std::string(name), std::string(value)});
  return std::nullopt;
}

// What the framing headers mean together.
std::optional<HeadError> framing(RequestHead& out) {
  const std::string* length = nullptr;
  const std::string* host = nullptr;
  for (const Header& h : out.headers) {
    if (iequals(h.name, "Content-Length")) {
      const std::string& v = h.value;
      if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
        return HeadError{400, "invalid Content-Length " + shown(v)};
      if (length && *length != v) return HeadError{400, "conflicting Content-Length headers"};
      length = &v;
    } else if (iequals(h.name, "Host")) {
      if (host) return HeadError{400, "more than one Host header"};
      host = &h.value;
    } else if (iequals(h.name, "Transfer-Encoding")) {
      if (out.chunked || !iequals(h.value, "chunked"))
        return HeadError{501, "Transfer-Encoding " + shown(h.value) + " is not supported (only chunked)"};
      out.chunked = true;
    } else if (iequals(h.name, "Connection")) {
      if (lists(h.value, "close")) out.keep_alive = false;
    } else if (iequals(h.name, "Expect")) {
      if (!iequals(h.value, "100-continue")) return HeadError{417, "Expect " + shown(h.value) + " is not supported"};
      out.expect_continue = true;
    }
  }
  if (out.chunked && length) return HeadError{400, "both Content-Length and Transfer-Encoding were sent"};
  if (out.chunked && out.minor == 0) return HeadError{400, "Transfer-Encoding in an HTTP/1.0 request"};
  if (length) out.content_length = std::stoull(*length);
  if (out.minor == 1 && !host) return HeadError{400, "missing Host header"};
  if (out.minor == 0) {
    const std::string* c = find_header(out.headers, "Connection");
    out.keep_alive = c && lists(*c, "keep-alive");
  }
  if (const std::string* enc = find_header(out.headers, "Content-Encoding");
      enc && out.has_body() && !iequals(*enc, "identity"))
    return HeadError{415, "Content-Encoding " + shown(*enc) + " is not supported: send the body uncompressed"};
  return std::nullopt;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

const std::string* find_header(const Headers& headers, std::string_view name) {
  for (const Header& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

size_t head_end(std::string_view buf) {
  size_t start = 0;
  while (buf.compare(start, 2, "\r\n") == 0) start += 2;
  const size_t end = buf.find("\r\n\r\n", start);
  return end == std::string_view::npos ? std::string_view::npos : end + 4;
}

std::optional<HeadError> parse_head(std::string_view head, const Limits& limits, RequestHead& out) {
  out = RequestHead{};
  if (head.size() > limits.max_head)
    return HeadError{431, "request head too large (limit " + std::to_string(limits.max_head) + " bytes)"};
  while (head.compare(0, 2, "\r\n") == 0) head.remove_prefix(2);
  size_t pos = head.find("\r\n");
  if (pos == std::string_view::npos) return HeadError{400, "incomplete request head"};
  if (auto e = parse_request_line(head.substr(0, pos), limits, out)) return e;
  for (size_t next; (next = head.find("\r\n", pos + 2)) != pos + 2 && next != std::string_view::npos; pos = next) {
    const std::string_view line = head.substr(pos + 2, next - pos - 2);
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos)
      return HeadError{400, "bare CR or LF in a header line"};
    if (out.headers.size() == limits.max_headers)
      return HeadError{431, "too many header fields (limit " + std::to_string(limits.max_headers) + ")"};
    if (auto e = parse_field(line, out)) return e;
  }
  return framing(out);
}

ChunkedDecoder::Step ChunkedDecoder::fail(std::string message, size_t consumed) {
  error_ = std::move(message);
  return {State::error, consumed};
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view in, const std::function<bool(const char*, size_t)>& out) {
  constexpr size_t kMaxLine = 4096, kMaxTrailer = 64 << 10;
  size_t i = 0;
  while (i < in.size() && phase_ != Phase::done) {
    if (phase_ == Phase::data) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
      if (!out(in.data() + i, n)) return fail("body refused", i);
      i += n;
      remaining_ -= n;
      if (remaining_ == 0) phase_ = Phase::data_end;
      continue;
    }
    // The other phases read one line.
    const size_t lf = in.find('\n', i);
    const size_t take = (lf == std::string_view::npos ? in.size() : lf + 1) - i;
    line_.append(in.substr(i, take));
    i += take;
    if (line_.size() > kMaxLine) return fail("chunk line too long", i);
    if (line_.back() != '\n') continue;
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r') return fail("chunk line not ended by CRLF", i);
    const std::string line = line_.substr(0, line_.size() - 2);
    line_.clear();
    if (phase_ == Phase::data_end) {
      if (!line.empty()) return fail("chunk data longer than its size", i);
      phase_ = Phase::size;
    } else if (phase_ == Phase::size) {
      const std::string_view size = std::string_view(line).substr(0, line.find(';'));
      if (size.empty() || size.size() > 15 || size.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        return fail("malformed chunk size " + shown(line), i);
      remaining_ = std::stoull(std::string(size), nullptr, 16);
      phase_ = remaining_ ? Phase::data : Phase::trailer;
    } else {  // trailer: fields until an empty line; read and dropped
      trailer_bytes_ += line.size() + 2;
      if (trailer_bytes_ > kMaxTrailer) return fail("chunked trailer too large", i);
      if (line.empty()) phase_ = Phase::done;
    }
  }
  return {phase_ == Phase::done ? State::done : State::more, i};
}

}  // namespace hearth::server::http
