#include "model/grammar_matcher.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace hearth::model {

namespace {

std::vector<std::string> texts_of(const Vocab& v) {
  std::vector<std::string> texts(v.size());
  for (size_t t = 0; t < v.size(); ++t) texts[t] = v.piece(static_cast<TokenId>(t), false);
  return texts;
}

}  // namespace

TokenTrie::TokenTrie(const Vocab& v) : TokenTrie(texts_of(v)) {}

TokenTrie::TokenTrie(std::vector<std::string> texts) : bytes_(std::move(texts)) {
  std::vector<std::pair<std::string_view, TokenId>> sorted;
  for (size_t t = 0; t < bytes_.size(); ++t)
    // A token longer than the trie's depth field can hold is never allowed (none is, in practice).
    if (!bytes_[t].empty() && bytes_[t].size() < 0xFFFF) sorted.emplace_back(bytes_[t], static_cast<TokenId>(t));
  std::sort(sorted.begin(), sorted.end());  // string_view compares bytes as unsigned
  nodes_.push_back({0, 0, 0, 0, 0});
  std::vector<uint32_t> path{0};  // path[d]: the node at depth d on the current branch
  std::string_view prev;
  for (const auto& [s, tok] : sorted) {
    size_t common = 0;
    while (common < prev.size() && common < s.size() && prev[common] == s[common]) ++common;
    while (path.size() > common + 1) {
      nodes_[path.back()].end = static_cast<uint32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      const auto here = static_cast<uint32_t>(tokens_.size());
      nodes_.push_back({static_cast<uint8_t>(s[d]), static_cast<uint16_t>(d + 1), 0, here, here});
      path.push_back(static_cast<uint32_t>(nodes_.size() - 1));
    }
    Node& n = nodes_[path.back()];
    if (n.tok_begin == n.tok_end) n.tok_begin = static_cast<uint32_t>(tokens_.size());
    tokens_.push_back(tok);
    n.tok_end = static_cast<uint32_t>(tokens_.size());
    max_depth_ = std::max(max_depth_, s.size());
    prev = s;
  }
  while (!path.empty()) {
    nodes_[path.back()].end = static_cast<uint32_t>(nodes_.size());
    path.pop_back();
  }
}

size_t GrammarMatcher::FrameHash::operator()(const FrameKey& k) const {
  return std::hash<uint64_t>()((uint64_t{k.pos} * 0x9E3779B97F4A7C15ull) ^ reinterpret_cast<uintptr_t>(k.parent));
}

size_t GrammarMatcher::StacksHash::operator()(const Stacks& s) const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const Frame* f : s) h = (h ^ reinterpret_cast<uintptr_t>(f)) * 0x100000001b3ull;
  return static_cast<size_t>(h);
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenTrie> trie, std::vector<TokenId> eog)
    : g_(std::move(g)), trie_(std::move(trie)), eog_(std::move(eog)) {
  Stacks start;
  for (uint32_t a : g_->alternatives(g_->root())) {
    const Stacks& e = expand(frame(a, nullptr));
    start.insert(start.end(), e.begin(), e.end());
  }
  std::sort(start.begin(), start.end());
  start.erase(std::unique(start.begin(), start.end()), start.end());
  state_ = intern(std::move(start));
}

const GrammarMatcher::Frame* GrammarMatcher::frame(uint32_t pos, const Frame* parent) {
  auto [it, fresh] = frames_by_key_.try_emplace(FrameKey{pos, parent}, nullptr);
  if (!fresh) return it->second;
  constexpr size_t kBlock = 4096;
  if (arena_.empty() || arena_used_ == kBlock) {
    arena_.emplace_back(new Frame[kBlock]);
    arena_used_ = 0;
  }
  Frame* f = &arena_.back()[arena_used_++];
  *f = {pos, parent};
  ++frames_;
  return it->second = f;
}

void GrammarMatcher::expand_into(const Frame* f, Stacks& out, int depth) {
  // The grammar has no left recursion (GrammarBuilder checks), so this ends; the depth
  // guard only keeps a grammar bug from overflowing the stack.
  if (depth > 100'000 || out.size() > 4 * kMaxStacks) {
    if (error_.empty()) error_ = "the output format's grammar is too ambiguous (more than " + std::to_string(kMaxStacks) + " parses at once)";
    return;
  }
  const auto& el = g_->elements();
  const Grammar::Element e = el[f->pos];
  switch (e.kind) {
    case Grammar::Kind::Bytes:
      out.push_back(f);
      return;
    case Grammar::Kind::End:
      if (!f->parent) out.push_back(nullptr);
      else expand_into(f->parent, out, depth + 1);
      return;
    case Grammar::Kind::Rule: {
      // A reference in tail position returns straight to the parent: right-recursive
      // repetitions keep a constant stack.
      const uint32_t cont = f->pos + 1;
      const Frame* base = el[cont].kind == Grammar::Kind::End ? f->parent : frame(cont, f->parent);
      for (uint32_t a : g_->alternatives(e.arg)) expand_into(frame(a, base), out, depth + 1);
      return;
    }
  }
}

const GrammarMatcher::Stacks& GrammarMatcher::expand(const Frame* f) {
  auto it = expanded_.find(f);
  if (it != expanded_.end()) return it->second;
  Stacks out;
  expand_into(f, out, 0);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > kMaxStacks) {
    if (error_.empty()) error_ = "the output format's grammar is too ambiguous (more than " + std::to_string(kMaxStacks) + " parses at once)";
    out.resize(kMaxStacks);
  }
  return expanded_[f] = std::move(out);
}

int32_t GrammarMatcher::intern(Stacks s) {
  auto it = state_ids_.find(s);
  if (it != state_ids_.end()) return it->second;
  const auto id = static_cast<int32_t>(states_.size());
  state_ids_.emplace(s, id);
  states_.push_back(std::move(s));
  next_.emplace_back();
  return id;
}

int32_t GrammarMatcher::next(int32_t state, uint8_t b) {
  if (next_[state] && (*next_[state])[b] != kUnknown) return (*next_[state])[b];
  Stacks out;
  const auto& el = g_->elements();
  for (const Frame* f : states_[state]) {
    if (!f || !g_->set(el[f->pos].arg).has(b)) continue;
    const Stacks& e = expand(frame(f->pos + 1, f->parent));
    out.insert(out.end(), e.begin(), e.end());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  const int32_t to = out.empty() ? kDead : intern(std::move(out));
  if (!next_[state]) {
    next_[state] = std::make_unique<std::array<int32_t, 256>>();
    next_[state]->fill(kUnknown);
  }
  (*next_[state])[b] = to;
  return to;
}

int32_t GrammarMatcher::walk(int32_t state, const std::string& bytes) {
  for (char c : bytes) {
    state = next(state, static_cast<uint8_t>(c));
    if (state == kDead) return kDead;
  }
  return state;
}

void GrammarMatcher::reset_caches() {
  // The current stacks as position lists (top first), then everything rebuilt from them.
  std::vector<std::vector<uint32_t>> paths;
  for (const Frame* f : states_[state_]) {
    paths.emplace_back();
    for (; f; f = f->parent) paths.back().push_back(f->pos);
  }
  frames_by_key_.clear();
  expanded_.clear();
  state_ids_.clear();
  states_.clear();
  next_.clear();
  masks_.clear();
  arena_.clear();
  arena_used_ = frames_ = 0;
  Stacks now;
  for (const auto& p : paths) {
    const Frame* f = nullptr;
    for (size_t i = p.size(); i-- > 0;) f = frame(p[i], f);
    now.push_back(f);
  }
  std::sort(now.begin(), now.end());
  state_ = intern(std::move(now));
}

bool GrammarMatcher::complete() const { return !states_[state_].empty() && states_[state_].front() == nullptr; }

bool GrammarMatcher::finished() const { return states_[state_].size() == 1 && states_[state_].front() == nullptr; }

bool GrammarMatcher::allows(TokenId t) {
  if (std::find(eog_.begin(), eog_.end(), t) != eog_.end()) return complete();
  if (t < 0 || static_cast<size_t>(t) >= trie_->vocab_size() || trie_->bytes(t).empty()) return false;
  if (frames_ > kMaxFrames || states_.size() > kMaxStates) reset_caches();
  return walk(state_, trie_->bytes(t)) != kDead;
}

void GrammarMatcher::accept(TokenId t) {
  if (std::find(eog_.begin(), eog_.end(), t) != eog_.end()) return;  // the end: nothing to read
  const int32_t to = walk(state_, trie_->bytes(t));
  HEARTH_CHECK(to != kDead && "GrammarMatcher::accept of a token it does not allow");
  state_ = to;
}

size_t GrammarMatcher::mask(float* logits) {
  if (frames_ > kMaxFrames || states_.size() > kMaxStates) reset_caches();
  const size_t V = trie_->vocab_size();
  auto it = masks_.find(state_);
  if (it == masks_.end()) {
    if (masks_.size() >= kMaxMasks) masks_.clear();
    std::vector<uint64_t> bits((V + 63) / 64, 0);
    const auto& nodes = trie_->nodes();
    const auto& toks = trie_->tokens();
    std::vector<int32_t> at(trie_->max_depth() + 1);
    at[0] = state_;
    for (size_t i = 1; i < nodes.size();) {
      const TokenTrie::Node& n = nodes[i];
      const int32_t s = next(at[n.depth - 1], n.byte);
      if (s == kDead) {  // no token with this prefix can come next
        i = n.end;
        continue;
      }
      at[n.depth] = s;
      for (uint32_t k = n.tok_begin; k < n.tok_end; ++k) bits[static_cast<size_t>(toks[k]) >> 6] |= uint64_t{1} << (toks[k] & 63);
      ++i;
    }
    if (complete())
      for (TokenId t : eog_)
        if (t >= 0 && static_cast<size_t>(t) < V) bits[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (t & 63);
    it = masks_.emplace(state_, std::move(bits)).first;
  }
  const std::vector<uint64_t>& bits = it->second;
  size_t allowed = 0;
  for (size_t t = 0; t < V; ++t) {
    if ((bits[t >> 6] >> (t & 63)) & 1) ++allowed;
    else logits[t] = -std::numeric_limits<float>::infinity();
  }
  return allowed;
}

}  // namespace hearth::model
