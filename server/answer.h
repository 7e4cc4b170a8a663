// How a generation's answer is written on the wire. The inference handlers produce pieces
// (text, reasoning, tool calls, log probabilities) and a summary at the end; a writer turns
// them into one API's bytes: Ollama's NDJSON (answer.cpp), OpenAI's server-sent events
// (openai.cpp). One writer per request; called from that request's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/vocab.h"
#include "server/tool_calls.h"

namespace hearth::server {

// One token's log probability with its text, and the likeliest alternatives.
struct TokenLogprobText {
  std::string token;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
};

struct Piece {
  int choice = 0;  // which answer of several (OpenAI's n) this belongs to
  std::string content, thinking;
  std::vector<ToolCall> calls;
  std::vector<TokenLogprobText> logprobs;
  bool empty() const { return content.empty() && thinking.empty() && calls.empty() && logprobs.empty(); }
  void append(Piece&& p);
};

struct Summary {
  int choice = 0;                      // which answer of several ended
  std::string done_reason;             // "stop" or "length"
  int prompt_eval_count = 0;           // prompt tokens evaluated (a reused prefix is not)
  int prompt_tokens = 0, eval_count = 0;  // prompt tokens in all; tokens generated
  int64_t total_ns = 0, load_ns = 0, prompt_ns = 0, eval_ns = 0;
  const std::vector<model::TokenId>* context = nullptr;  // generate's `context`, when wanted
};

class AnswerWriter {
 public:
  virtual ~AnswerWriter() = default;
  virtual const char* content_type(bool stream) const = 0;
  // Streaming: the bytes for one piece ("" when there is nothing to send).
  virtual std::string chunk(const Piece& p) = 0;
  // The end. Streamed: the trailer (`total` empty); not streamed: the whole answer.
  // With several choices (a writer made for OpenAI's n), once per choice as each ends:
  // the writer answers for all of them at the last.
  virtual std::string done(const Piece& total, const Summary& s) = 0;
  // An error after the answer started (streamed), or instead of it (not streamed).
  virtual std::string error(const std::string& message) = 0;
  // Answers to a load or unload request (an empty prompt or message list).
  virtual std::string loaded(const std::string& done_reason) = 0;
};

// Ollama's /api/generate (chat false) and /api/chat (chat true): NDJSON lines, or one object.
std::unique_ptr<AnswerWriter> ollama_writer(std::string model, bool chat, bool stream);

// `n` random lower-case hex digits, for the ids the compatible APIs give answers.
std::string random_hex(size_t n);

// Now as Go marshals a UTC time.Time: RFC 3339 with nanoseconds, trailing zeros trimmed.
std::string utc_now();

}  // namespace hearth::server
