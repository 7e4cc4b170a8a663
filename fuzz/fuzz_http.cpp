// libFuzzer target: the HTTP framing the server runs on every connection. Any bytes: the
// head either parses (a path without NUL, framing that is one of length or chunked) or is
// refused with a 4xx/5xx and a message; what follows the head, read as a chunked body,
// decodes the same whether it arrives whole or one byte at a time.
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::server::http;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t end = head_end(in);
  if (end != std::string_view::npos) {
    Limits limits;
    limits.max_head = 4096;
    limits.max_headers = 16;
    RequestHead head;
    if (auto e = parse_head(in.substr(0, end), limits, head)) {
      if (e->status < 400 || e->status > 505 || e->message.empty()) __builtin_trap();
    } else {
      if (head.path.empty() || head.path.front() != '/' || head.path.find('\0') != std::string::npos) __builtin_trap();
      if (head.chunked && head.content_length != 0) __builtin_trap();
    }
  }
  const std::string_view body = end == std::string_view::npos ? in : in.substr(end);
  ChunkedDecoder whole, bytewise;
  std::string a, b;
  const auto one = whole.feed(body, [&](const char* p, size_t n) { return a.append(p, n), true; });
  ChunkedDecoder::Step step{ChunkedDecoder::State::more, 0};
  size_t used = 0;
  for (; used < body.size() && step.state == ChunkedDecoder::State::more; used += step.consumed)
    step = bytewise.feed(body.substr(used, 1), [&](const char* p, size_t n) { return b.append(p, n), true; });
  if (one.state != step.state && !(one.state == ChunkedDecoder::State::more && body.empty())) __builtin_trap();
  if (one.state == ChunkedDecoder::State::done && (a != b || one.consumed != used)) __builtin_trap();
  if (one.state == ChunkedDecoder::State::error && whole.error().empty()) __builtin_trap();
  return 0;
}
