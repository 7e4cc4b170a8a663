#include "model/grammar.h"

#include <algorithm>
#include <cstdio>

namespace hearth::model {

namespace {

std::string describe_set(const ByteSet& s) {
  std::string out = "[";
  for (unsigned b = 0; b < 256;) {
    if (!s.has(static_cast<uint8_t>(b))) {
      ++b;
      continue;
    }
    unsigned e = b;
    while (e + 1 < 256 && s.has(static_cast<uint8_t>(e + 1))) ++e;
    auto one = [&](unsigned v) {
      char buf[8];
      if (v >= 0x21 && v < 0x7F && v != ']' && v != '\\' && v != '-') out += static_cast<char>(v);
      else {
        std::snprintf(buf, sizeof buf, "\\x%02X", v);
        out += buf;
      }
    };
    one(b);
    if (e > b) {
      out += '-';
      one(e);
    }
    b = e + 1;
  }
  return out + "]";
}

}  // namespace

std::string Grammar::describe() const {
  std::string out;
  for (uint32_t r = 0; r < alts_.size(); ++r) {
    out += names_[r] + " ::=";
    for (size_t a = 0; a < alts_[r].size(); ++a) {
      if (a) out += " |";
      for (uint32_t p = alts_[r][a]; elements_[p].kind != Kind::End; ++p)
        out += " " + (elements_[p].kind == Kind::Rule ? names_[elements_[p].arg] : describe_set(sets_[elements_[p].arg]));
    }
    out += "\n";
  }
  return out;
}

uint32_t GrammarBuilder::declare(std::string name) {
  if (rules_.size() >= kMaxRules && error_.empty())
    error_ = "the schema compiles to more than " + std::to_string(kMaxRules) + " grammar rules";
  rules_.push_back({std::move(name), false, {}});
  return static_cast<uint32_t>(rules_.size() - 1);
}

void GrammarBuilder::define(uint32_t rule, std::vector<Seq> alternatives) {
  HEARTH_CHECK(rule < rules_.size() && !rules_[rule].defined);
  for (const Seq& s : alternatives) elements_ += s.size() + 1;
  if (elements_ > kMaxElements && error_.empty())
    error_ = "the schema compiles to more than " + std::to_string(kMaxElements) + " grammar elements";
  rules_[rule].defined = true;
  rules_[rule].alts = std::move(alternatives);
}

GrammarBuilder::Item GrammarBuilder::bytes(const ByteSet& s) {
  // Few distinct sets exist (characters of literals, a handful of classes): share them.
  for (size_t i = sets_.size(); i-- > 0;)
    if (sets_[i] == s) return {false, static_cast<uint32_t>(i)};
  sets_.push_back(s);
  return {false, static_cast<uint32_t>(sets_.size() - 1)};
}

GrammarBuilder::Seq GrammarBuilder::literal(std::string_view text) {
  Seq s;
  for (char c : text) s.push_back(byte(static_cast<uint8_t>(c)));
  return s;
}

GrammarBuilder::Seq GrammarBuilder::cat(std::initializer_list<Seq> parts) {
  Seq out;
  for (const Seq& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

GrammarBuilder::Item GrammarBuilder::repeat(const std::string& name, const Seq& s, int64_t min, int64_t max) {
  // s{min,max} as min copies of s followed by a chain of nested optionals (so that every
  // count is its own position and the matcher's state stays small), or by s* as the
  // right-recursive rule  star ::= s star | ε  (the matcher does not grow its stack for a
  // reference in tail position).
  const int64_t fixed = std::min<int64_t>(min, 1'000'000);
  if (static_cast<size_t>(fixed) * s.size() > kMaxElements || (max >= 0 && static_cast<size_t>(max) * (s.size() + 2) > kMaxElements)) {
    if (error_.empty()) error_ = "a repetition of " + std::to_string(max >= 0 ? max : min) + " items is too large a grammar";
    return ref(rule(name, {{}}));
  }
  Seq tail;
  if (max < 0) {
    const uint32_t star = declare(name + "-star");
    define(star, {cat({s, {ref(star)}}), {}});
    tail = {ref(star)};
  } else {
    // opt_k ::= s opt_{k-1} | ε, built from the innermost.
    for (int64_t k = 0; k < max - min; ++k) tail = {ref(rule(name + "-opt", {cat({s, tail}), {}}))};
  }
  Seq body;
  for (int64_t i = 0; i < fixed; ++i) body.insert(body.end(), s.begin(), s.end());
  body.insert(body.end(), tail.begin(), tail.end());
  return ref(rule(name, {body}));
}

Status GrammarBuilder::check_left_recursion() const {
  // nullable[r]: r can match the empty string (fixed point).
  std::vector<char> nullable(rules_.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (nullable[r]) continue;
      for (const Seq& s : rules_[r].alts)
        if (std::all_of(s.begin(), s.end(), [&](const Item& i) { return i.is_rule && nullable[i.index]; })) {
          nullable[r] = changed = true;
          break;
        }
    }
  }
  // first[r]: the rules r may enter before reading a byte; a cycle there is left recursion.
  std::vector<std::vector<uint32_t>> first(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r)
    for (const Seq& s : rules_[r].alts)
      for (const Item& i : s) {
        if (!i.is_rule) break;
        first[r].push_back(i.index);
        if (!nullable[i.index]) break;
      }
  // Iterative depth-first search with colours: 0 new, 1 on the path, 2 done.
  std::vector<uint8_t> colour(rules_.size(), 0);
  for (uint32_t start = 0; start < rules_.size(); ++start) {
    if (colour[start]) continue;
    std::vector<std::pair<uint32_t, size_t>> path{{start, 0}};
    colour[start] = 1;
    while (!path.empty()) {
      auto& [r, next] = path.back();
      if (next == first[r].size()) {
        colour[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t to = first[r][next++];
      if (colour[to] == 1) return Error{"the schema refers to itself before any text (left recursion through '" + rules_[to].name + "')"};
      if (colour[to] == 0) {
        colour[to] = 1;
        path.emplace_back(to, 0);
      }
    }
  }
  return {};
}

Result<Grammar> GrammarBuilder::build(uint32_t root) {
  if (!error_.empty()) return Error{error_};
  for (const Rule& r : rules_)
    if (!r.defined) return Error{"grammar rule '" + r.name + "' is declared but never defined"};
  if (Status s = check_left_recursion(); !s) return s.error();
  Grammar g;
  g.sets_ = sets_;
  g.root_ = root;
  g.elements_.reserve(elements_);
  for (uint32_t r = 0; r < rules_.size(); ++r) {
    g.names_.push_back(rules_[r].name);
    g.alts_.emplace_back();
    for (const Seq& s : rules_[r].alts) {
      g.alts_.back().push_back(static_cast<uint32_t>(g.elements_.size()));
      for (const Item& i : s) g.elements_.push_back({i.is_rule ? Grammar::Kind::Rule : Grammar::Kind::Bytes, i.index});
      g.elements_.push_back({Grammar::Kind::End, r});
    }
  }
  return g;
}

}  // namespace hearth::model
