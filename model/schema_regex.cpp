#include "model/schema_regex.h"

#include <bitset>
#include <map>

namespace hearth::model {

namespace {

using Seq = GrammarBuilder::Seq;
using Ascii = std::bitset<128>;

constexpr int64_t kMaxRepeat = 10'000;
constexpr int kMaxNesting = 100;

Ascii printable() {
  Ascii s;
  for (int c = 0x20; c < 0x7F; ++c) s.set(static_cast<size_t>(c));
  return s;
}

Ascii range(int lo, int hi) {
  Ascii s;
  for (int c = lo; c <= hi; ++c) s.set(static_cast<size_t>(c));
  return s;
}

// Recursive descent over the pattern; each parse function returns grammar sequences.
class Parser {
 public:
  Parser(GrammarBuilder& b, std::string_view p) : b_(b), p_(p) {}

  Result<Seq> parse() {
    if (!p_.empty() && p_[0] == '^') ++i_;
    auto s = alternation(0);
    if (!s) return s;
    if (i_ < p_.size()) return fail("unbalanced ')'");
    return s;
  }

 private:
  Error fail(const std::string& what) const {
    return Error{"pattern \"" + std::string(p_) + "\": " + what + " at offset " + std::to_string(i_)};
  }
  bool at_end_anchor() const { return i_ + 1 == p_.size() && p_[i_] == '$'; }

  Result<Seq> alternation(int depth) {
    if (depth > kMaxNesting) return fail("groups nest too deeply");
    std::vector<Seq> alts;
    for (;;) {
      auto c = concatenation(depth);
      if (!c) return c;
      alts.push_back(std::move(c.value()));
      if (i_ < p_.size() && p_[i_] == '|') {
        ++i_;
        continue;
      }
      break;
    }
    if (alts.size() == 1) return std::move(alts[0]);
    return Seq{b_.ref(b_.rule("pattern-alt", std::move(alts)))};
  }

  Result<Seq> concatenation(int depth) {
    Seq out;
    while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      if (at_end_anchor()) {
        ++i_;
        break;
      }
      auto a = atom(depth);
      if (!a) return a;
      auto q = quantified(a.value());
      if (!q) return q;
      out.insert(out.end(), q.value().begin(), q.value().end());
    }
    return out;
  }

  Result<Seq> quantified(const Seq& atom) {
    if (i_ >= p_.size()) return atom;
    int64_t lo = 1, hi = 1;
    const char c = p_[i_];
    if (c == '*') lo = 0, hi = -1;
    else if (c == '+') lo = 1, hi = -1;
    else if (c == '?') lo = 0, hi = 1;
    else if (c == '{') {
      auto r = braces(lo, hi);
      if (!r) return r.error();
      if (!r.value()) return atom;  // a literal '{'? only when it does not read as a count
    } else return atom;
    if (c != '{') ++i_;
    if (i_ < p_.size() && p_[i_] == '?') ++i_;  // lazy: the same strings
    if (i_ < p_.size() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '{')) return fail("a quantifier follows a quantifier");
    return Seq{b_.repeat("pattern-repeat", atom, lo, hi)};
  }

  // {n}, {n,}, {n,m}: true when read (i_ past it).
  Result<bool> braces(int64_t& lo, int64_t& hi) {
    size_t j = i_ + 1;
    auto number = [&](int64_t& v) {
      const size_t start = j;
      v = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9' && v <= kMaxRepeat) v = v * 10 + (p_[j++] - '0');
      return j > start;
    };
    if (!number(lo)) return fail("'{' is not a count");
    hi = lo;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(hi)) hi = -1;
    }
    if (j >= p_.size() || p_[j] != '}') return fail("'{' is not a count");
    if (lo > kMaxRepeat || hi > kMaxRepeat) return fail("a count above " + std::to_string(kMaxRepeat));
    if (hi >= 0 && hi < lo) return fail("{" + std::to_string(lo) + "," + std::to_string(hi) + "} counts down");
    i_ = j + 1;
    return true;
  }

  Result<Seq> atom(int depth) {
    const char c = p_[i_];
    if (c == '(') {
      ++i_;
      if (p_.substr(i_, 2) == "?:") i_ += 2;
      else if (i_ < p_.size() && p_[i_] == '?') return fail("lookarounds and named groups are not supported");
      auto inner = alternation(depth + 1);
      if (!inner) return inner;
      if (i_ >= p_.size() || p_[i_] != ')') return fail("unclosed '('");
      ++i_;
      return inner;
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++i_;
      return chars(printable());
    }
    if (c == '\\') {
      Ascii s;
      auto e = escape(s);
      if (!e) return e.error();
      return chars(s);
    }
    if (c == '*' || c == '+' || c == '?') return fail(std::string("nothing to repeat before '") + c + "'");
    if (c == '^' || c == '$') return fail(std::string("'") + c + "' inside the pattern is not supported");
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {  // a whole UTF-8 character, as its bytes
      const size_t n = u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : u >= 0xC0 ? 2 : 1;
      if (n == 1 || i_ + n > p_.size()) return fail("invalid UTF-8");
      Seq s = b_.literal(p_.substr(i_, n));
      i_ += n;
      return s;
    }
    ++i_;
    if (u < 0x20) return chars(Ascii().set(u));
    return chars(Ascii().set(u));
  }

  // After a backslash: the class it names (a single character for escaped punctuation).
  Status escape(Ascii& out) {
    if (i_ + 1 >= p_.size()) return fail("a pattern ends with '\\'");
    const char e = p_[i_ + 1];
    i_ += 2;
    const Ascii digit = range('0', '9'), word = range('0', '9') | range('A', 'Z') | range('a', 'z') | Ascii().set('_');
    Ascii space;
    for (char s : {' ', '\t', '\n', '\r', '\f', '\v'}) space.set(static_cast<size_t>(s));
    switch (e) {
      case 'd': out = digit; return {};
      case 'w': out = word; return {};
      case 's': out = space; return {};
      case 'D': out = printable() & ~digit; return {};
      case 'W': out = printable() & ~word; return {};
      case 'S': out = printable() & ~space; return {};
      case 'n': out.set('\n'); return {};
      case 't': out.set('\t'); return {};
      case 'r': out.set('\r'); return {};
      case 'f': out.set('\f'); return {};
      case 'v': out.set('\v'); return {};
      default: break;
    }
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
      return fail(std::string("the escape \\") + e + " is not supported");
    if (static_cast<unsigned char>(e) >= 0x80) return fail("an escaped non-ASCII character is not supported");
    out.set(static_cast<size_t>(e));
    return {};
  }

  Result<Seq> char_class() {
    ++i_;  // '['
    bool negate = false;
    if (i_ < p_.size() && p_[i_] == '^') negate = true, ++i_;
    Ascii s;
    bool first = true;
    while (i_ < p_.size() && (p_[i_] != ']' || first)) {
      first = false;
      Ascii one;
      int lo = -1;
      if (p_[i_] == '\\') {
        if (auto e = escape(one); !e) return e.error();
        if (one.count() == 1)
          for (int c = 0; c < 128; ++c)
            if (one.test(static_cast<size_t>(c))) lo = c;
      } else {
        const auto u = static_cast<unsigned char>(p_[i_]);
        if (u >= 0x80) return fail("non-ASCII characters in a class are not supported");
        lo = u;
        one.set(u);
        ++i_;
      }
      // A range lo-hi (a '-' before ']' is a literal).
      if (lo >= 0 && i_ + 1 < p_.size() && p_[i_] == '-' && p_[i_ + 1] != ']') {
        ++i_;
        int hi;
        if (p_[i_] == '\\') {
          Ascii h;
          if (auto e = escape(h); !e) return e.error();
          if (h.count() != 1) return fail("a class range ends in a class");
          hi = 0;
          while (!h.test(static_cast<size_t>(hi))) ++hi;
        } else {
          const auto u = static_cast<unsigned char>(p_[i_++]);
          if (u >= 0x80) return fail("non-ASCII characters in a class are not supported");
          hi = u;
        }
        if (hi < lo) return fail("a class range runs backwards");
        one = range(lo, hi);
      }
      s |= one;
    }
    if (i_ >= p_.size()) return fail("unclosed '['");
    ++i_;
    if (negate) s = printable() & ~s;
    if (s.none()) return fail("a class that matches nothing");
    return chars(s);
  }

  // One character of the set, as it appears inside a JSON string: plain bytes where JSON
  // allows them, escapes for '"', '\\' and control characters.
  Seq chars(const Ascii& s) {
    auto it = classes_.find(s.to_string());
    if (it != classes_.end()) return {b_.ref(it->second)};
    ByteSet plain;
    std::vector<Seq> alts;
    for (int c = 0; c < 128; ++c) {
      if (!s.test(static_cast<size_t>(c))) continue;
      if (c >= 0x20 && c != '"' && c != '\\') {
        plain.add(static_cast<uint8_t>(c));
        continue;
      }
      static const std::map<int, std::string> kShort = {{'"', "\\\""}, {'\\', "\\\\"}, {'\b', "\\b"}, {'\f', "\\f"},
                                                       {'\n', "\\n"},  {'\r', "\\r"},  {'\t', "\\t"}};
      auto k = kShort.find(c);
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      alts.push_back(b_.literal(k != kShort.end() ? k->second : std::string(buf)));
    }
    if (plain.bits != ByteSet{}.bits) alts.insert(alts.begin(), Seq{b_.bytes(plain)});
    const uint32_t r = b_.rule("pattern-char", std::move(alts));
    classes_.emplace(s.to_string(), r);
    return {b_.ref(r)};
  }

  GrammarBuilder& b_;
  std::string_view p_;
  size_t i_ = 0;
  std::map<std::string, uint32_t> classes_;
};

}  // namespace

Result<GrammarBuilder::Seq> pattern_grammar(GrammarBuilder& b, std::string_view pattern) { return Parser(b, pattern).parse(); }

}  // namespace hearth::model
