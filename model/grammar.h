// Context-free grammars over bytes, the form structured output is checked in: a JSON
// schema (model/json_schema.h) compiles to one, and a GrammarMatcher
// (model/grammar_matcher.h) walks it while tokens are sampled.
//
// A grammar is a list of rules; a rule is a list of alternatives; an alternative is a
// sequence of elements, each a set of bytes (one byte of input) or a reference to a rule.
// Everything is bytes, so a multi-byte UTF-8 character is a sequence of byte sets and a
// token may end half-way through one. The flattened form (one array of elements, every
// alternative ended by an End element) is what the matcher reads: a position is an index
// into that array.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/result.h"

namespace hearth::model {

// 256 bits: which byte values an element accepts.
struct ByteSet {
  std::array<uint64_t, 4> bits{};
  bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  ByteSet& add(uint8_t lo, uint8_t hi) {
    for (unsigned b = lo; b <= hi; ++b) bits[b >> 6] |= uint64_t{1} << (b & 63);
    return *this;
  }
  ByteSet& add(uint8_t b) { return add(b, b); }
  bool operator==(const ByteSet&) const = default;
};

class Grammar {
 public:
  enum class Kind : uint8_t { Bytes, Rule, End };
  struct Element {
    Kind kind;
    uint32_t arg;  // Bytes: index into sets(); Rule: the rule's id; End: the rule's id
  };

  const std::vector<Element>& elements() const { return elements_; }
  // Where each alternative of rule r starts (positions).
  const std::vector<uint32_t>& alternatives(uint32_t r) const { return alts_[r]; }
  const ByteSet& set(uint32_t i) const { return sets_[i]; }
  uint32_t root() const { return root_; }
  size_t rules() const { return alts_.size(); }
  const std::string& rule_name(uint32_t r) const { return names_[r]; }
  // The grammar in a GBNF-like text, for errors and tests.
  std::string describe() const;

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;
  std::vector<std::vector<uint32_t>> alts_;
  std::vector<ByteSet> sets_;
  std::vector<std::string> names_;
  uint32_t root_ = 0;
};

// Builds a grammar rule by rule. Rules may refer to rules defined later (declare first,
// define afterwards), so recursive schemas compile. build() checks that every declared
// rule is defined, that no rule can reach itself without reading a byte (left
// recursion, which a top-down matcher cannot walk), and the size limits.
class GrammarBuilder {
 public:
  struct Item {
    bool is_rule = false;
    uint32_t index = 0;  // a rule id, or an index into the builder's sets
  };
  using Seq = std::vector<Item>;

  // Limits on what a schema may compile to (elements over all alternatives, rules).
  static constexpr size_t kMaxElements = 2'000'000, kMaxRules = 200'000;

  uint32_t declare(std::string name);
  // Adds the alternatives of a declared rule (once).
  void define(uint32_t rule, std::vector<Seq> alternatives);
  uint32_t rule(std::string name, std::vector<Seq> alternatives) {
    const uint32_t r = declare(std::move(name));
    define(r, std::move(alternatives));
    return r;
  }

  Item bytes(const ByteSet& s);
  Item byte(uint8_t b) { return bytes(ByteSet{}.add(b)); }
  static Item ref(uint32_t rule) { return {true, rule}; }
  Seq literal(std::string_view text);

  // Sequences glued together.
  static Seq cat(std::initializer_list<Seq> parts);
  // A rule matching `s` between min and max times (max < 0: no limit), as a reference.
  Item repeat(const std::string& name, const Seq& s, int64_t min, int64_t max);
  Item optional(const std::string& name, const Seq& s) { return repeat(name, s, 0, 1); }

  // False when a limit was passed (then build() fails with the reason).
  bool ok() const { return error_.empty(); }
  Result<Grammar> build(uint32_t root);

 private:
  struct Rule {
    std::string name;
    bool defined = false;
    std::vector<Seq> alts;
  };
  std::vector<Rule> rules_;
  std::vector<ByteSet> sets_;
  size_t elements_ = 0;
  std::string error_;
  Status check_left_recursion() const;
};

}  // namespace hearth::model
