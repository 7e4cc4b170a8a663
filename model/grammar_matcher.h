// Constrained sampling: which tokens may come next so that the text stays a prefix of
// something a Grammar accepts.
//
// The matcher's state is a set of stacks of grammar positions (a top-down parse with
// every ambiguity kept). Stacks are interned (a frame is (position, parent frame), made
// once), so a state is a short sorted list of pointers, equal states are equal lists,
// and the states met are numbered into a lazily built automaton: state × byte → state,
// one table lookup once seen. A token mask walks the vocabulary's byte trie through that
// automaton, skipping every subtree whose prefix is already impossible, and is cached per
// state (inside a JSON string the state repeats from one token to the next).
//
// Not thread-safe: one matcher per sequence, used by the runner's compute thread only.
// Memory is bounded: past kMaxFrames frames or kMaxStates states the caches are dropped
// and rebuilt from the current state.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "model/grammar.h"
#include "model/vocab.h"

namespace hearth::model {

// The vocabulary's tokens as byte strings in a trie, in depth-first order: node i's
// subtree is [i, end[i]). Control tokens (no text) are not in it. Built once per model.
class TokenTrie {
 public:
  explicit TokenTrie(const Vocab& v);
  // Token t's text is texts[t] (empty: a token with no text, never allowed).
  explicit TokenTrie(std::vector<std::string> texts);
  struct Node {
    uint8_t byte;        // the edge into this node
    uint16_t depth;      // 1 for the children of the root
    uint32_t end;        // one past the last node of this subtree
    uint32_t tok_begin;  // tokens_[tok_begin, tok_end) end here
    uint32_t tok_end;
  };
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<TokenId>& tokens() const { return tokens_; }
  const std::string& bytes(TokenId t) const { return bytes_[static_cast<size_t>(t)]; }
  size_t vocab_size() const { return bytes_.size(); }
  size_t max_depth() const { return max_depth_; }

 private:
  std::vector<Node> nodes_;  // nodes_[0] is the root (depth 0)
  std::vector<TokenId> tokens_;
  std::vector<std::string> bytes_;  // each token's text (empty for control tokens)
  size_t max_depth_ = 0;
};

class GrammarMatcher {
 public:
  static constexpr size_t kMaxFrames = 1'000'000, kMaxStates = 16'384, kMaxStacks = 4'096, kMaxMasks = 256;

  // `eog`: the tokens that end generation (allowed only when the document is complete).
  GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenTrie> trie, std::vector<TokenId> eog);

  // Whether token t may come next (cheap: its bytes through the automaton).
  bool allows(TokenId t);
  // Takes token t (allows(t) must be true).
  void accept(TokenId t);
  // Sets the logits of every token that may not come next to -infinity; returns how many
  // remain.
  size_t mask(float* logits);
  // The text so far is a whole document (an end-of-generation token may come).
  bool complete() const;
  // Nothing but the end may come: generation is over.
  bool finished() const;
  // An error when the grammar's state passed a limit (kMaxStacks stacks in one state).
  const std::string& error() const { return error_; }
  // The positions of the stacks of the current state, for tests (top first).
  size_t stacks() const { return states_[state_].size(); }

 private:
  struct Frame {
    uint32_t pos;
    const Frame* parent;
  };
  using Stacks = std::vector<const Frame*>;  // sorted, unique; nullptr = the empty stack
  struct FrameKey {
    uint32_t pos;
    const Frame* parent;
    bool operator==(const FrameKey&) const = default;
  };
  struct FrameHash {
    size_t operator()(const FrameKey& k) const;
  };
  struct StacksHash {
    size_t operator()(const Stacks& s) const;
  };
  static constexpr int32_t kUnknown = -2, kDead = -1;

  const Frame* frame(uint32_t pos, const Frame* parent);
  // The stacks `f` stands for once every rule reference and finished alternative on top is
  // resolved: each has a byte set on top, or is the empty stack.
  const Stacks& expand(const Frame* f);
  void expand_into(const Frame* f, Stacks& out, int depth);
  int32_t intern(Stacks s);
  int32_t next(int32_t state, uint8_t b);
  int32_t walk(int32_t state, const std::string& bytes);
  void reset_caches();

  std::shared_ptr<const Grammar> g_;
  std::shared_ptr<const TokenTrie> trie_;
  std::vector<TokenId> eog_;
  std::vector<std::unique_ptr<Frame[]>> arena_;
  size_t arena_used_ = 0, frames_ = 0;
  std::unordered_map<FrameKey, const Frame*, FrameHash> frames_by_key_;
  std::unordered_map<const Frame*, Stacks> expanded_;
  std::vector<Stacks> states_;
  std::unordered_map<Stacks, int32_t, StacksHash> state_ids_;
  std::vector<std::unique_ptr<std::array<int32_t, 256>>> next_;  // allocated on first use
  std::unordered_map<int32_t, std::vector<uint64_t>> masks_;  // allowed tokens per state (bits)
  int32_t state_ = 0;
  std::string error_;
};

}  // namespace hearth::model
