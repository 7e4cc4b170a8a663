#include "server/gotemplate.h"

#include <simdjson.h>

#include "model/unicode.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <set>

namespace hearth::server::tmpl {

// ---------------------------------------------------------------------------------------
// Values

namespace {
const Value kNil{};
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Nil: return false;
    case Kind::Bool: return b;
    case Kind::Int: return i != 0;
    case Kind::Float: return f != 0;
    case Kind::String: return !s.empty();
    case Kind::List: return list && !list->empty();
    case Kind::Map: return map && !map->empty();
  }
  return false;
}

const Value& Value::field(const std::string& name) const {
  if (kind != Kind::Map || !map) return kNil;
  auto it = map->find(name);
  return it == map->end() ? kNil : it->second;
}

namespace {

// Shortest round-trip digits of d (> 0, finite) and its decimal exponent: d = 0.DIGITS × 10^dp.
void shortest_digits(double d, std::string& digits, int& dp) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // d.ddddde±XX
  const size_t e = s.find('e');
  int exp = std::atoi(s.c_str() + e + 1);
  digits.clear();
  for (size_t k = 0; k < e; ++k)
    if (s[k] != '.') digits += s[k];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  dp = exp + 1;
}

// strconv.FormatFloat(d, 'g' or 'e' or 'f', -1, 64) as Go writes it.
std::string go_float(double d, char verb) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  std::string sign = std::signbit(d) ? "-" : "";
  d = std::fabs(d);
  std::string digits = "0";
  int dp = 1;
  if (d != 0) shortest_digits(d, digits, dp);
  const int exp = dp - 1;
  if (verb == 'g') verb = (exp < -4 || exp >= 6) ? 'e' : 'f';  // shortest %g decides with precision 6
  if (verb == 'e') {
    std::string o = sign + digits.substr(0, 1);
    if (digits.size() > 1) o += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return o + eb;
  }
  std::string o = sign;
  if (dp <= 0) {
    o += "0." + std::string(static_cast<size_t>(-dp), '0') + digits;
  } else if (static_cast<size_t>(dp) >= digits.size()) {
    o += digits + std::string(static_cast<size_t>(dp) - digits.size(), '0');
  } else {
    o += digits.substr(0, static_cast<size_t>(dp)) + "." + digits.substr(static_cast<size_t>(dp));
  }
  return o;
}

// %v of a float64 is the shortest %g.
std::string go_float_v(double d) { return go_float(d, 'g'); }

}  // namespace

namespace {

// The length of the valid UTF-8 sequence at s[i] (as Go's utf8.DecodeRune accepts: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0 when the byte starts none.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
  const unsigned char c = b(0);
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) { return b(k) >= lo && b(k) <= hi; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

}  // namespace

// As Go's encoding/json: invalid UTF-8 bytes become \ufffd, U+2028 and U+2029 are escaped.
std::string json_quote(std::string_view s) {
  std::string o = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = utf8_sequence(s, i);
      if (n == 0) {
        o += "\\ufffd";
      } else if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                 (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xA8) {
        o += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
        i += 2;
      } else {
        o.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      case '<': o += "\\u003c"; break;
      case '>': o += "\\u003e"; break;
      case '&': o += "\\u0026"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + '"';
}

std::string go_quote(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c == '\r') o += "\\r";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
}

namespace {

void json_into(std::string& o, const Value& v) {
  switch (v.kind) {
    case Value::Kind::Nil: o += "null"; break;
    case Value::Kind::Bool: o += v.b ? "true" : "false"; break;
    case Value::Kind::Int: o += std::to_string(v.i); break;
    case Value::Kind::Float: {
      if (!std::isfinite(v.f)) { o += "null"; break; }
      const double a = std::fabs(v.f);
      std::string s = go_float(v.f, (a != 0 && (a < 1e-6 || a >= 1e21)) ? 'e' : 'f');
      // Go writes e-07 as e-7.
      if (auto e = s.find("e-0"); e != std::string::npos) s.erase(e + 2, 1);
      o += s;
      break;
    }
    case Value::Kind::String: o += json_quote(v.s); break;
    case Value::Kind::List: {
      o += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) o += ',';
        json_into(o, (*v.list)[k]);
      }
      o += ']';
      break;
    }
    case Value::Kind::Map: {
      o += '{';
      bool first = true;
      for (const auto& [k, e] : *v.map) {
        if (!first) o += ',';
        first = false;
        o += json_quote(k);
        o += ':';
        json_into(o, e);
      }
      o += '}';
      break;
    }
  }
}

}  // namespace

std::string to_json(const Value& v) {
  if (!v.printed.empty()) return v.printed;
  std::string o;
  json_into(o, v);
  return o;
}

std::string format(const Value& v) {
  if (!v.printed.empty()) return v.printed;
  switch (v.kind) {
    case Value::Kind::Nil: return "<no value>";
    case Value::Kind::Bool: return v.b ? "true" : "false";
    case Value::Kind::Int: return std::to_string(v.i);
    case Value::Kind::Float: return go_float_v(v.f);
    case Value::Kind::String: return v.s;
    case Value::Kind::List: {
      std::string o = "[";
      for (size_t k = 0; k < v.list->size(); ++k) o += (k ? " " : "") + format((*v.list)[k]);
      return o + "]";
    }
    case Value::Kind::Map: {
      std::string o = "map[";
      bool first = true;
      for (const auto& [k, e] : *v.map) {
        o += (first ? "" : " ") + k + ":" + format(e);
        first = false;
      }
      return o + "]";
    }
  }
  return "";
}

namespace {
Value from_dom(simdjson::dom::element e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::ARRAY: {
      List l;
      simdjson::dom::array arr;
      if (!e.get(arr))
        for (auto x : arr) l.push_back(from_dom(x));
      return Value::of_list(std::move(l));
    }
    case T::OBJECT: {
      Map m;
      simdjson::dom::object obj;
      if (!e.get(obj))
        for (auto f : obj) m[std::string(f.key)] = from_dom(f.value);
      return Value::of_map(std::move(m));
    }
    case T::INT64: return Value::integer(e.get_int64().value_unsafe());
    case T::UINT64: return Value::number(static_cast<double>(e.get_uint64().value_unsafe()));
    case T::DOUBLE: return Value::number(e.get_double().value_unsafe());
    case T::STRING: return Value::str(std::string(e.get_string().value_unsafe()));
    case T::BOOL: return Value::boolean(e.get_bool().value_unsafe());
    case T::NULL_VALUE: return Value{};
  }
  return Value{};
}
}  // namespace

Result<Value> from_json(std::string_view text) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  if (auto err = p.parse(text.data(), text.size()).get(e); err) return Error{std::string("invalid JSON: ") + simdjson::error_message(err)};
  return from_dom(e);
}

// ---------------------------------------------------------------------------------------
// Syntax tree

struct Pipe;

// One operand: a term (constant, function name, dot, variable, field chain or a
// parenthesised pipeline) followed by field names applied to it.
struct Arg {
  enum class Kind { Const, Func, Dot, Var, Field, Sub } kind = Kind::Const;
  Value constant;
  std::string name;                 // Func / Var
  std::vector<std::string> fields;  // applied after the term (Field: the whole chain)
  std::shared_ptr<Pipe> sub;
};

struct Cmd {
  std::vector<Arg> args;
};

struct Pipe {
  std::vector<std::string> decl;  // variables declared (:=) or assigned (=)
  bool assign = false;
  std::vector<Cmd> cmds;
  int line = 0;
};

struct Template::Node {
  enum class Kind { Text, Action, If, Range, With, Call, Break, Continue } kind = Kind::Text;
  std::string text;  // Text; Call: the template's name
  Pipe pipe;
  std::vector<Node> list, else_list;
  bool has_pipe = false;  // Call with an argument
  int line = 0;
};

struct Template::Tree {
  std::vector<Node> root;
  std::map<std::string, std::vector<Node>> defs;
  std::set<std::string> fields;  // every field name mentioned anywhere
};

using Node = Template::Node;

namespace {

// ---------------------------------------------------------------------------------------
// Lexer

enum class Tok { Text, Left, Right, Ident, Field, Dot, Var, String, Number, Bool, Nil, LParen, RParen, Pipe, Declare, Assign, Comma, Eof };

struct Token {
  Tok kind;
  std::string text;
  Value value;  // String/Number/Bool constants
  int line;
  bool glued = false;  // Field only: no space before it (a chain on the term before: $x.A, (…).A)
};

struct ParseError {
  int line;
  std::string message;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80; }

// Go's strconv.Unquote for "..." strings and '...' characters.
bool unquote(std::string_view s, std::string& out) {
  out.clear();
  for (size_t k = 1; k + 1 < s.size(); ++k) {
    char c = s[k];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++k + 1 > s.size() - 1) return false;
    c = s[k];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case '"': out += '"'; break;
      case '\'': out += '\''; break;
      case 'x': case 'u': case 'U': {
        const size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (k + n >= s.size()) return false;
        uint32_t cp = 0;
        for (size_t j = 1; j <= n; ++j) {
          const char h = s[k + j];
          if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
          cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        k += n;
        out += c == 'x' ? std::string(1, static_cast<char>(cp)) : model::encode_utf8(cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

std::vector<Token> lex(std::string_view src) {
  std::vector<Token> out;
  int line = 1;
  size_t p = 0;
  bool trim_next = false;
  auto count_lines = [&](std::string_view s) {
    for (char c : s) line += c == '\n';
  };
  while (p < src.size()) {
    size_t open = src.find("{{", p);
    std::string_view text = src.substr(p, open == std::string_view::npos ? std::string_view::npos : open - p);
    const int text_line = line;
    count_lines(text);
    const bool trim_left = open != std::string_view::npos && open + 3 < src.size() && src[open + 2] == '-' &&
                           is_space(src[open + 3]);
    std::string t(text);
    if (trim_next) {
      size_t k = 0;
      while (k < t.size() && is_space(t[k])) ++k;
      t.erase(0, k);
    }
    if (trim_left)
      while (!t.empty() && is_space(t.back())) t.pop_back();
    if (!t.empty()) out.push_back({Tok::Text, t, {}, text_line});
    trim_next = false;
    if (open == std::string_view::npos) break;
    p = open + 2 + (trim_left ? 2 : 0);
    // Comments: {{/* ... */}} with optional trim markers around them.
    size_t q = p;
    while (q < src.size() && is_space(src[q]) && trim_left) ++q;
    if (src.substr(q, 2) == "/*") {
      const size_t end = src.find("*/", q + 2);
      if (end == std::string_view::npos) throw ParseError{line, "unclosed comment"};
      count_lines(src.substr(p, end - p));
      size_t r = end + 2;
      bool trim_right = false;
      if (src.substr(r, 3) == " -}" || (r < src.size() && is_space(src[r]) && src.substr(r + 1, 3) == "-}}")) {
        while (r < src.size() && is_space(src[r])) ++r;
        if (src.substr(r, 3) == "-}}") { trim_right = true; r += 1; }
      }
      if (src.substr(r, 2) != "}}") throw ParseError{line, "comment ends before closing delimiter"};
      p = r + 2;
      trim_next = trim_right;
      continue;
    }
    out.push_back({Tok::Left, "{{", {}, line});
    // Inside an action.
    int paren = 0;
    for (;;) {
      if (p >= src.size()) throw ParseError{line, "unclosed action"};
      const char c = src[p];
      if (is_space(c)) {
        // " -}}" closes with a right trim.
        size_t r = p;
        while (r < src.size() && is_space(src[r])) ++r;
        if (src.substr(r, 3) == "-}}") {
          count_lines(src.substr(p, r - p));
          out.push_back({Tok::Right, "}}", {}, line});
          p = r + 3;
          trim_next = true;
          break;
        }
        count_lines(src.substr(p, r - p));
        p = r;
        continue;
      }
      if (src.substr(p, 2) == "}}") {
        if (paren > 0) throw ParseError{line, "unclosed left paren"};
        out.push_back({Tok::Right, "}}", {}, line});
        p += 2;
        break;
      }
      if (c == '(') { ++paren; out.push_back({Tok::LParen, "(", {}, line}); ++p; continue; }
      if (c == ')') {
        if (--paren < 0) throw ParseError{line, "unexpected right paren"};
        out.push_back({Tok::RParen, ")", {}, line});
        ++p;
        continue;
      }
      if (c == '|') { out.push_back({Tok::Pipe, "|", {}, line}); ++p; continue; }
      if (c == ',') { out.push_back({Tok::Comma, ",", {}, line}); ++p; continue; }
      if (c == ':' && src.substr(p, 2) == ":=") { out.push_back({Tok::Declare, ":=", {}, line}); p += 2; continue; }
      if (c == '=') { out.push_back({Tok::Assign, "=", {}, line}); ++p; continue; }
      if (c == '"' || c == '\'') {
        size_t r = p + 1;
        while (r < src.size() && src[r] != c) {
          if (src[r] == '\\') ++r;
          else if (src[r] == '\n') throw ParseError{line, "unterminated quoted string"};
          ++r;
        }
        if (r >= src.size()) throw ParseError{line, "unterminated quoted string"};
        std::string s;
        if (!unquote(src.substr(p, r - p + 1), s)) throw ParseError{line, "bad string syntax"};
        Token tk{Tok::String, std::string(src.substr(p, r - p + 1)), Value::str(s), line};
        if (c == '\'') {  // a character constant is an integer
          const unsigned char u = s.empty() ? 0 : static_cast<unsigned char>(s[0]);
          tk.kind = Tok::Number;
          tk.value = Value::integer(u);
        }
        out.push_back(tk);
        p = r + 1;
        continue;
      }
      if (c == '`') {
        const size_t r = src.find('`', p + 1);
        if (r == std::string_view::npos) throw ParseError{line, "unterminated raw quoted string"};
        const std::string s(src.substr(p + 1, r - p - 1));
        out.push_back({Tok::String, s, Value::str(s), line});
        count_lines(s);
        p = r + 1;
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c)) || ((c == '-' || c == '+') && p + 1 < src.size() && std::isdigit(static_cast<unsigned char>(src[p + 1])))) {
        size_t r = p + 1;
        while (r < src.size() && (std::isalnum(static_cast<unsigned char>(src[r])) || src[r] == '.' || src[r] == '_' ||
                                  ((src[r] == '-' || src[r] == '+') && (src[r - 1] == 'e' || src[r - 1] == 'E'))))
          ++r;
        std::string num(src.substr(p, r - p));
        std::string clean;
        for (char ch : num)
          if (ch != '_') clean += ch;
        Value v;
        char* end = nullptr;
        const bool is_float = clean.find_first_of(".eE") != std::string::npos && clean.find("0x") == std::string::npos;
        if (is_float) {
          const double d = std::strtod(clean.c_str(), &end);
          v = Value::number(d);
        } else {
          const long long n = std::strtoll(clean.c_str(), &end, 0);
          v = Value::integer(n);
        }
        if (!end || *end) throw ParseError{line, "bad number syntax: \"" + num + "\""};
        out.push_back({Tok::Number, num, v, line});
        p = r;
        continue;
      }
      if (c == '$') {
        size_t r = p + 1;
        while (r < src.size() && is_alnum(src[r])) ++r;
        out.push_back({Tok::Var, std::string(src.substr(p, r - p)), {}, line});
        p = r;
        continue;
      }
      if (c == '.') {
        size_t r = p + 1;
        while (r < src.size() && is_alnum(src[r])) ++r;
        if (r == p + 1) {
          out.push_back({Tok::Dot, ".", {}, line});
        } else {
          const bool glued = !is_space(src[p - 1]);  // p > 0: an action starts with "{{"
          out.push_back({Tok::Field, std::string(src.substr(p + 1, r - p - 1)), {}, line, glued});
        }
        p = r;
        continue;
      }
      if (is_alnum(c)) {
        size_t r = p + 1;
        while (r < src.size() && is_alnum(src[r])) ++r;
        std::string w(src.substr(p, r - p));
        if (w == "true" || w == "false") out.push_back({Tok::Bool, w, Value::boolean(w == "true"), line});
        else if (w == "nil") out.push_back({Tok::Nil, w, {}, line});
        else out.push_back({Tok::Ident, w, {}, line});
        p = r;
        continue;
      }
      throw ParseError{line, std::string("unexpected \"") + c + "\" in command"};
    }
  }
  out.push_back({Tok::Eof, "", {}, line});
  return out;
}

// ---------------------------------------------------------------------------------------
// Parser

const std::set<std::string>& builtin_functions() {
  static const std::set<std::string> f = {"and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge",
                                          "print", "printf", "println", "html", "js", "urlquery", "call", "json",
                                          "currentDate", "yesterdayDate", "toTypeScriptType"};
  return f;
}

// Limits that keep a hostile template from exhausting the stack, the CPU or memory (Go's
// text/template grows its stack instead; ours is a thread's fixed stack). Real model
// templates nest fewer than ten levels and render in a few thousand steps.
constexpr size_t kMaxTemplateBytes = size_t{1} << 20;  // source text
constexpr int kMaxParseNesting = 200;      // {{if}}/{{range}}/{{with}}/{{define}} and ( … ) levels
constexpr int kMaxExecDepth = 1000;        // control structures and {{template}} calls in progress
constexpr uint64_t kMaxExecSteps = 4000000;  // nodes executed and range iterations in one render
constexpr size_t kMaxOutput = size_t{32} << 20;  // bytes one render may produce

class Parser {
 public:
  Parser(std::vector<Token> toks, Template::Tree& tree) : t_(std::move(toks)), tree_(tree) {}

  void parse_root() {
    vars_.push_back({"$"});
    std::string stop;
    tree_.root = parse_list(stop);
    if (!stop.empty()) throw ParseError{line(), "unexpected {{" + stop + "}}"};
  }

 private:
  const Token& peek(size_t k = 0) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(pos_++, t_.size() - 1)]; }
  int line() const { return peek().line; }

  void expect(Tok k, const char* context) {
    const Token& tk = next();
    if (tk.kind != k) throw ParseError{tk.line, "unexpected " + describe(tk) + " in " + context};
  }
  static std::string describe(const Token& tk) {
    switch (tk.kind) {
      case Tok::Eof: return "EOF";
      case Tok::Right: return "\"}}\"";
      case Tok::Text: return "text";
      default: return "\"" + tk.text + "\"";
    }
  }

  // Nodes up to {{end}} or {{else ...}} (returned in `stop`) or EOF (stop empty).
  std::vector<Node> parse_list(std::string& stop) {
    std::vector<Node> list;
    stop.clear();
    for (;;) {
      const Token& tk = peek();
      if (tk.kind == Tok::Eof) return list;
      if (tk.kind == Tok::Text) {
        Node n;
        n.kind = Node::Kind::Text;
        n.text = tk.text;
        n.line = tk.line;
        list.push_back(std::move(n));
        next();
        continue;
      }
      // An action.
      next();  // {{
      const Token& kw = peek();
      if (kw.kind == Tok::Ident) {
        if (kw.text == "end") {
          next();
          expect(Tok::Right, "end");
          stop = "end";
          return list;
        }
        if (kw.text == "else") {
          next();
          stop = "else";  // the caller reads what follows (}} or "if …" / "with …")
          return list;
        }
        if (kw.text == "if" || kw.text == "range" || kw.text == "with") {
          next();
          list.push_back(parse_control(kw.text));
          continue;
        }
        if (kw.text == "define") {
          next();
          parse_define();
          continue;
        }
        if (kw.text == "template" || kw.text == "block") {
          const bool block = kw.text == "block";
          next();
          list.push_back(parse_template(block));
          continue;
        }
        if (kw.text == "break" || kw.text == "continue") {
          Node n;
          n.kind = kw.text == "break" ? Node::Kind::Break : Node::Kind::Continue;
          n.line = kw.line;
          if (range_depth_ == 0) throw ParseError{kw.line, "{{" + kw.text + "}} outside {{range}}"};
          next();
          expect(Tok::Right, kw.text == "break" ? "break" : "continue");
          list.push_back(std::move(n));
          continue;
        }
      }
      Node n;
      n.kind = Node::Kind::Action;
      n.line = kw.line;
      n.pipe = parse_pipe("command", Tok::Right, false);
      list.push_back(std::move(n));
    }
  }

  // Counts one level of nesting for the life of the guard; too deep is a parse error.
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxParseNesting)
        throw ParseError{p.line(), "max expression depth exceeded (" + std::to_string(kMaxParseNesting) + " levels)"};
    }
    ~Nest() { --p.depth_; }
  };

  Node parse_control(const std::string& what) {
    const Nest nest(*this);
    Node n;
    n.kind = what == "if" ? Node::Kind::If : what == "range" ? Node::Kind::Range : Node::Kind::With;
    n.line = line();
    const size_t mark = vars_.size();
    n.pipe = parse_pipe(what.c_str(), Tok::Right, what == "range");
    if (n.kind == Node::Kind::Range) ++range_depth_;
    std::string stop;
    n.list = parse_list(stop);
    if (n.kind == Node::Kind::Range) --range_depth_;
    if (stop.empty()) throw ParseError{line(), "unexpected EOF"};
    if (stop == "else") {
      // {{else if …}} / {{else with …}} chain: the rest becomes a nested node.
      if (peek().kind == Tok::Ident && (peek().text == "if" || peek().text == "with") && n.kind != Node::Kind::Range &&
          (peek().text == "if") == (n.kind == Node::Kind::If)) {
        const std::string kind = next().text;
        vars_.resize(mark);
        n.else_list.push_back(parse_control(kind));  // consumes the shared {{end}}
        return n;
      }
      expect(Tok::Right, "else");
      vars_.resize(mark);
      n.else_list = parse_list(stop);
      if (stop != "end") throw ParseError{line(), stop.empty() ? "unexpected EOF" : "expected end; found {{else}}"};
    }
    vars_.resize(mark);
    return n;
  }

  void parse_define() {
    const Nest nest(*this);
    const Token& name = next();
    if (name.kind != Tok::String) throw ParseError{name.line, "define: expected a quoted template name"};
    expect(Tok::Right, "define clause");
    std::vector<std::string> saved;
    saved.swap(vars_);
    vars_.push_back("$");
    std::string stop;
    auto body = parse_list(stop);
    if (stop != "end") throw ParseError{line(), "unexpected EOF"};
    vars_.swap(saved);
    tree_.defs[name.value.s] = std::move(body);
  }

  Node parse_template(bool block) {
    Node n;
    n.kind = Node::Kind::Call;
    n.line = line();
    const Token& name = next();
    if (name.kind != Tok::String) throw ParseError{name.line, "unexpected " + describe(name) + " in template clause"};
    n.text = name.value.s;
    if (peek().kind != Tok::Right) {
      n.pipe = parse_pipe("template clause", Tok::Right, false);
      n.has_pipe = true;
    } else {
      next();
    }
    if (block) {
      std::vector<std::string> saved;
      saved.swap(vars_);
      vars_.push_back("$");
      std::string stop;
      auto body = parse_list(stop);
      if (stop != "end") throw ParseError{line(), "unexpected EOF"};
      vars_.swap(saved);
      tree_.defs[n.text] = std::move(body);
    }
    return n;
  }

  bool known_var(const std::string& v) const { return std::find(vars_.begin(), vars_.end(), v) != vars_.end(); }

  Pipe parse_pipe(const char* context, Tok end, bool allow_two) {
    Pipe p;
    p.line = line();
    // Declarations: $x := / $x = / $i, $e :=
    if (peek().kind == Tok::Var) {
      if (peek(1).kind == Tok::Declare || peek(1).kind == Tok::Assign) {
        p.assign = peek(1).kind == Tok::Assign;
        p.decl.push_back(next().text);
        next();
      } else if (peek(1).kind == Tok::Comma && allow_two && peek(2).kind == Tok::Var &&
                 (peek(3).kind == Tok::Declare || peek(3).kind == Tok::Assign)) {
        p.decl.push_back(next().text);
        next();
        p.decl.push_back(next().text);
        p.assign = next().kind == Tok::Assign;
      }
      for (const std::string& v : p.decl) {
        if (p.assign && !known_var(v)) throw ParseError{p.line, "undefined variable \"" + v + "\""};
        if (!p.assign) vars_.push_back(v);
      }
    }
    for (;;) {
      if (peek().kind == end) {
        next();
        break;
      }
      if (peek().kind == Tok::Eof) throw ParseError{line(), std::string("unclosed action")};
      p.cmds.push_back(parse_cmd(context, end));
      if (peek().kind == Tok::Pipe) {
        next();
        if (peek().kind == end) throw ParseError{line(), "missing command after |"};
      }
    }
    if (p.cmds.empty()) throw ParseError{p.line, std::string("missing value for ") + context};
    return p;
  }

  Cmd parse_cmd(const char* context, Tok end) {
    Cmd c;
    while (peek().kind != Tok::Pipe && peek().kind != end) {
      const Token& tk = peek();
      if (tk.kind == Tok::Eof || tk.kind == Tok::Right || tk.kind == Tok::RParen)
        throw ParseError{tk.line, "unexpected " + describe(tk) + " in operand"};
      c.args.push_back(parse_operand());
    }
    if (c.args.empty()) throw ParseError{line(), std::string("empty command in ") + context};
    return c;
  }

  Arg parse_operand() {
    const Token tk = next();
    Arg a;
    switch (tk.kind) {
      case Tok::String: case Tok::Number: case Tok::Bool:
        a.kind = Arg::Kind::Const;
        a.constant = tk.value;
        break;
      case Tok::Nil: a.kind = Arg::Kind::Const; break;
      case Tok::Dot: a.kind = Arg::Kind::Dot; break;
      case Tok::Ident:
        if (!builtin_functions().count(tk.text)) throw ParseError{tk.line, "function \"" + tk.text + "\" not defined"};
        a.kind = Arg::Kind::Func;
        a.name = tk.text;
        break;
      case Tok::Var:
        if (!known_var(tk.text)) throw ParseError{tk.line, "undefined variable \"" + tk.text + "\""};
        a.kind = Arg::Kind::Var;
        a.name = tk.text;
        break;
      case Tok::Field:
        a.kind = Arg::Kind::Field;
        a.fields.push_back(tk.text);
        tree_.fields.insert(tk.text);
        break;
      case Tok::LParen: {
        const Nest nest(*this);
        a.kind = Arg::Kind::Sub;
        a.sub = std::make_shared<Pipe>(parse_pipe("parenthesized pipeline", Tok::RParen, false));
        break;
      }
      default: throw ParseError{tk.line, "unexpected " + describe(tk) + " in operand"};
    }
    // A field chain glued to the term: .A.B, $x.A, (…).A
    while (peek().kind == Tok::Field && peek().glued) {
      if (a.kind == Arg::Kind::Const || a.kind == Arg::Kind::Func) break;
      tree_.fields.insert(peek().text);
      a.fields.push_back(next().text);
    }
    return a;
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  Template::Tree& tree_;
  std::vector<std::string> vars_;
  int range_depth_ = 0;
  int depth_ = 0;  // current nesting (Nest)
};

// ---------------------------------------------------------------------------------------
// Execution

struct ExecError {
  int line;
  std::string message;
};

enum class Flow { Normal, Break, Continue };

std::string kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Nil: return "nil";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float64";
    case Value::Kind::String: return "string";
    case Value::Kind::List: return "slice";
    case Value::Kind::Map: return "map";
  }
  return "?";
}

// Go's fmt verbs, the subset templates use: %v %s %d %q %f %g %e %x %X %t %c %%, with
// flags - + 0 space, width and precision.
std::string sprintf_go(const std::string& f, const std::vector<Value>& args) {
  std::string o;
  size_t a = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    if (f[k] != '%') {
      o += f[k];
      continue;
    }
    if (++k >= f.size()) {
      o += "%!(NOVERB)";
      break;
    }
    bool minus = false, plus = false, zero = false, space = false;
    for (; k < f.size(); ++k) {
      if (f[k] == '-') minus = true;
      else if (f[k] == '+') plus = true;
      else if (f[k] == '0') zero = true;
      else if (f[k] == ' ') space = true;
      else break;
    }
    // Go's parsenum: a number past 1e6 is "crazy long" and swallows the rest of the format.
    auto number = [&](int& out) {
      while (k < f.size() && std::isdigit(static_cast<unsigned char>(f[k]))) {
        if (out > 1000000) {
          k = f.size();
          return;
        }
        out = std::max(out, 0) * 10 + (f[k++] - '0');
      }
    };
    int width = -1, prec = -1;
    number(width);
    if (k < f.size() && f[k] == '.') {
      prec = 0;
      ++k;
      number(prec);
    }
    if (k >= f.size()) {
      o += "%!(NOVERB)";
      break;
    }
    const char verb = f[k];
    if (verb == '%') {
      o += '%';
      continue;
    }
    if (a >= args.size()) {
      o += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const Value& v = args[a++];
    std::string s;
    auto bad = [&] { return std::string("%!") + verb + "(" + kind_name(v) + "=" + format(v) + ")"; };
    switch (verb) {
      case 'v': s = format(v); break;
      case 's': s = v.kind == Value::Kind::String || !v.printed.empty() ? format(v) : bad(); break;
      case 'q': s = v.kind == Value::Kind::String ? go_quote(v.s) : bad(); break;
      case 't': s = v.kind == Value::Kind::Bool ? format(v) : bad(); break;
      case 'd': case 'x': case 'X': case 'c': {
        if (v.kind != Value::Kind::Int) {
          if (verb == 'x' && v.kind == Value::Kind::String) {
            for (unsigned char c : v.s) { char b[4]; std::snprintf(b, sizeof b, "%02x", c); s += b; }
            break;
          }
          s = bad();
          break;
        }
        char b[32];
        if (verb == 'c') { s = std::string(1, static_cast<char>(v.i)); break; }
        const unsigned long long mag = v.i < 0 ? 0ULL - static_cast<unsigned long long>(v.i) : static_cast<unsigned long long>(v.i);
        std::snprintf(b, sizeof b, verb == 'd' ? "%llu" : verb == 'x' ? "%llx" : "%llX", mag);
        s = b;
        if (prec >= 0 && static_cast<int>(s.size()) < prec) s = std::string(static_cast<size_t>(prec) - s.size(), '0') + s;
        const std::string sign = v.i < 0 ? "-" : plus ? "+" : space ? " " : "";
        if (zero && !minus && prec < 0 && width > 0 && static_cast<int>(s.size() + sign.size()) < width)
          s = std::string(static_cast<size_t>(width) - s.size() - sign.size(), '0') + s;
        s = sign + s;
        break;
      }
      case 'f': case 'F': case 'e': case 'g': {
        double d;
        if (v.kind == Value::Kind::Float) d = v.f;
        else { s = bad(); break; }
        if (verb == 'g' && prec < 0) {
          s = go_float(d, 'g');
        } else {
          char fmtb[16], b[512];
          std::snprintf(fmtb, sizeof fmtb, "%%.%d%c", prec < 0 ? 6 : prec, verb == 'F' ? 'f' : verb);
          std::snprintf(b, sizeof b, fmtb, d);
          s = b;
        }
        if (plus && d >= 0) s = "+" + s;
        break;
      }
      default: s = std::string("%!") + verb + "(" + kind_name(v) + "=" + format(v) + ")";
    }
    if (verb == 's' && prec >= 0 && static_cast<int>(s.size()) > prec) s.resize(static_cast<size_t>(prec));
    if (width > 0 && static_cast<int>(s.size()) < width) {
      const std::string pad(static_cast<size_t>(width) - s.size(), ' ');
      s = minus ? s + pad : pad + s;
    }
    o += s;
  }
  if (a < args.size()) {
    o += "%!(EXTRA ";
    for (size_t k = a; k < args.size(); ++k) o += (k > a ? ", " : "") + kind_name(args[k]) + "=" + format(args[k]);
    o += ")";
  }
  return o;
}

std::string date_string(int days_back) {
  std::time_t t = std::time(nullptr) - static_cast<std::time_t>(days_back) * 86400;
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%d", &tm);
  return b;
}

// Ollama's toTypeScriptType: a tool parameter's JSON-schema type as a TypeScript type.
std::string typescript_type(const Value& prop) {
  const Value& en = prop.field("enum");
  if (en.kind == Value::Kind::List && !en.list->empty()) {
    std::string o;
    for (size_t k = 0; k < en.list->size(); ++k) o += (k ? " | " : "") + to_json((*en.list)[k]);
    return o;
  }
  auto one = [&](const std::string& t) -> std::string {
    if (t == "string") return "string";
    if (t == "number" || t == "integer") return "number";
    if (t == "boolean") return "boolean";
    if (t == "array") {
      const Value& items = prop.field("items");
      return (items.kind == Value::Kind::Map ? typescript_type(items) : std::string("any")) + "[]";
    }
    if (t == "object") return "Record<string, any>";
    if (t == "null") return "null";
    return "any";
  };
  const Value& type = prop.field("type");
  if (type.kind == Value::Kind::String) return one(type.s);
  if (type.kind == Value::Kind::List) {
    std::string o;
    for (size_t k = 0; k < type.list->size(); ++k)
      if ((*type.list)[k].kind == Value::Kind::String) o += (o.empty() ? "" : " | ") + one((*type.list)[k].s);
    return o.empty() ? "any" : o;
  }
  return "any";
}

class Exec {
 public:
  Exec(const Template::Tree& tree, std::string& out) : tree_(tree), out_(out) {}

  void run(const Value& data) {
    vars_.push_back({"$", data});
    walk_list(tree_.root, data);
  }

 private:
  Flow walk_list(const std::vector<Node>& list, const Value& dot) {
    for (const Node& n : list) {
      const Flow f = walk(n, dot);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  // One execution step: every node and every range iteration counts.
  void step(int line) {
    if (++steps_ > kMaxExecSteps)
      throw ExecError{line, "exceeded maximum template steps (" + std::to_string(kMaxExecSteps) + ")"};
  }
  void emit(const std::string& s, int line) {
    if (out_.size() + s.size() > kMaxOutput)
      throw ExecError{line, "output exceeds " + std::to_string(kMaxOutput >> 20) + " MiB"};
    out_ += s;
  }
  // Counts one level of control structure or template call for the life of the guard.
  struct Deeper {
    Exec& e;
    Deeper(Exec& exec, int line) : e(exec) {
      if (++e.depth_ > kMaxExecDepth)
        throw ExecError{line, "exceeded maximum template depth (" + std::to_string(kMaxExecDepth) + ")"};
    }
    ~Deeper() { --e.depth_; }
  };

  Flow walk(const Node& n, const Value& dot) {
    step(n.line);
    switch (n.kind) {
      case Node::Kind::Text: emit(n.text, n.line); return Flow::Normal;
      case Node::Kind::Action: {
        const Value v = eval_pipe(n.pipe, dot);
        if (n.pipe.decl.empty()) emit(format(v), n.line);
        return Flow::Normal;
      }
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
      case Node::Kind::If: case Node::Kind::With: {
        const Deeper deeper(*this, n.line);
        const size_t mark = vars_.size();
        const Value v = eval_pipe(n.pipe, dot);
        Flow f;
        if (v.truthy()) f = walk_list(n.list, n.kind == Node::Kind::With ? v : dot);
        else f = walk_list(n.else_list, dot);
        vars_.resize(mark);
        return f;
      }
      case Node::Kind::Range: {
        const Deeper deeper(*this, n.line);
        return walk_range(n, dot);
      }
      case Node::Kind::Call: {
        auto it = tree_.defs.find(n.text);
        if (it == tree_.defs.end()) throw ExecError{n.line, "no such template \"" + n.text + "\""};
        const Deeper deeper(*this, n.line);
        const Value arg = n.has_pipe ? eval_pipe(n.pipe, dot) : Value{};
        std::vector<std::pair<std::string, Value>> saved;
        saved.swap(vars_);
        vars_.push_back({"$", arg});
        walk_list(it->second, arg);
        vars_.swap(saved);
        return Flow::Normal;
      }
    }
    return Flow::Normal;
  }

  Flow walk_range(const Node& n, const Value& dot) {
    const size_t mark = vars_.size();
    const std::vector<std::string>& decl = n.pipe.decl;
    const bool assign = n.pipe.assign;
    const Value v = eval_pipe(n.pipe, dot, /*declare=*/false);  // range binds them per element
    auto each = [&](const Value& key, const Value& elem) {
      step(n.line);
      const size_t inner = vars_.size();
      if (decl.size() == 1) set_var(decl[0], elem, assign);
      if (decl.size() == 2) {
        set_var(decl[0], key, assign);
        set_var(decl[1], elem, assign);
      }
      const Flow f = walk_list(n.list, elem);
      vars_.resize(inner);
      return f;
    };
    bool any = false;
    if (v.kind == Value::Kind::List) {
      for (size_t k = 0; k < v.list->size(); ++k) {
        any = true;
        if (each(Value::integer(static_cast<int64_t>(k)), (*v.list)[k]) == Flow::Break) break;
      }
    } else if (v.kind == Value::Kind::Map) {
      for (const auto& [key, elem] : *v.map) {
        any = true;
        if (each(Value::str(key), elem) == Flow::Break) break;
      }
    } else if (v.kind == Value::Kind::Int) {
      for (int64_t k = 0; k < v.i; ++k) {
        any = true;
        if (each(Value::integer(k), Value::integer(k)) == Flow::Break) break;
      }
    } else if (v.kind != Value::Kind::Nil) {
      throw ExecError{n.line, "range can't iterate over " + format(v)};
    }
    vars_.resize(mark);
    if (!any) walk_list(n.else_list, dot);
    vars_.resize(mark);
    return Flow::Normal;
  }

  void set_var(const std::string& name, const Value& v, bool assign) {
    if (assign) {
      for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
        if (it->first == name) {
          it->second = v;
          return;
        }
    }
    vars_.push_back({name, v});
  }

  const Value& lookup(const std::string& name, int line) const {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->first == name) return it->second;
    throw ExecError{line, "undefined variable: " + name};
  }

  Value fields_of(Value v, const std::vector<std::string>& fields, int line) const {
    for (const std::string& f : fields) {
      if (v.kind == Value::Kind::Nil) return Value{};  // nil map: missingkey=zero
      if (v.kind != Value::Kind::Map) throw ExecError{line, "can't evaluate field " + f + " in type " + kind_name(v)};
      Value next = v.field(f);
      v = std::move(next);
    }
    return v;
  }

  Value eval_pipe(const Pipe& p, const Value& dot, bool declare = true) {
    Value v;
    bool have = false;
    for (const Cmd& c : p.cmds) {
      v = eval_cmd(c, dot, have ? &v : nullptr, p.line);
      have = true;
    }
    if (declare)
      for (const std::string& d : p.decl) set_var(d, v, p.assign);
    return v;
  }

  Value eval_arg(const Arg& a, const Value& dot, int line) {
    switch (a.kind) {
      case Arg::Kind::Const: return a.constant;
      case Arg::Kind::Dot: return fields_of(dot, a.fields, line);
      case Arg::Kind::Field: return fields_of(dot, a.fields, line);
      case Arg::Kind::Var: return fields_of(lookup(a.name, line), a.fields, line);
      case Arg::Kind::Sub: return fields_of(eval_pipe(*a.sub, dot), a.fields, line);
      case Arg::Kind::Func: return call(a.name, {}, nullptr, dot, line);
    }
    return Value{};
  }

  Value eval_cmd(const Cmd& c, const Value& dot, const Value* piped, int line) {
    const Arg& first = c.args[0];
    if (first.kind == Arg::Kind::Func) {
      std::vector<const Arg*> rest;
      for (size_t k = 1; k < c.args.size(); ++k) rest.push_back(&c.args[k]);
      return call(first.name, rest, piped, dot, line);
    }
    if (c.args.size() > 1 || piped) throw ExecError{line, "can't give argument to non-function " + describe_arg(first)};
    return eval_arg(first, dot, line);
  }

  static std::string describe_arg(const Arg& a) {
    std::string s = a.kind == Arg::Kind::Var ? a.name : "";
    for (const std::string& f : a.fields) s += "." + f;
    return s.empty() ? "." : s;
  }

  static int compare(const Value& a, const Value& b, int line, bool ordered) {
    using K = Value::Kind;
    auto num = [](const Value& v) { return v.kind == K::Int ? static_cast<double>(v.i) : v.f; };
    if ((a.kind == K::Int || a.kind == K::Float) && (b.kind == K::Int || b.kind == K::Float)) {
      if (a.kind == K::Int && b.kind == K::Int) return a.i < b.i ? -1 : a.i > b.i;
      const double x = num(a), y = num(b);
      return x < y ? -1 : x > y;
    }
    if (a.kind != b.kind) {
      if (!ordered && (a.kind == K::Nil || b.kind == K::Nil)) return 1;
      throw ExecError{line, "error calling " + std::string(ordered ? "lt" : "eq") + ": incompatible types for comparison"};
    }
    switch (a.kind) {
      case K::String: return a.s < b.s ? -1 : a.s > b.s;
      case K::Bool:
        if (ordered) throw ExecError{line, "error calling lt: invalid type for comparison"};
        return a.b != b.b;
      case K::Nil: return 0;
      default:
        throw ExecError{line, std::string("error calling ") + (ordered ? "lt" : "eq") + ": invalid type for comparison"};
    }
  }

  Value call(const std::string& fn, const std::vector<const Arg*>& argn, const Value* piped, const Value& dot, int line) {
    // and/or evaluate their arguments lazily.
    if (fn == "and" || fn == "or") {
      const size_t n = argn.size() + (piped ? 1 : 0);
      if (n < 1) throw ExecError{line, "wrong number of args for " + fn + ": want at least 1 got 0"};
      Value v;
      for (size_t k = 0; k < n; ++k) {
        v = k < argn.size() ? eval_arg(*argn[k], dot, line) : *piped;
        if (v.truthy() != (fn == "and")) return v;
      }
      return v;
    }
    std::vector<Value> a;
    for (const Arg* x : argn) a.push_back(eval_arg(*x, dot, line));
    if (piped) a.push_back(*piped);
    auto want = [&](size_t n) {
      if (a.size() != n)
        throw ExecError{line, "wrong number of args for " + fn + ": want " + std::to_string(n) + " got " + std::to_string(a.size())};
    };
    if (fn == "not") { want(1); return Value::boolean(!a[0].truthy()); }
    if (fn == "len") {
      want(1);
      switch (a[0].kind) {
        case Value::Kind::String: return Value::integer(static_cast<int64_t>(a[0].s.size()));
        case Value::Kind::List: return Value::integer(static_cast<int64_t>(a[0].list->size()));
        case Value::Kind::Map: return Value::integer(static_cast<int64_t>(a[0].map->size()));
        default: throw ExecError{line, "error calling len: len of type " + kind_name(a[0])};
      }
    }
    if (fn == "index") {
      if (a.empty()) throw ExecError{line, "wrong number of args for index: want at least 1 got 0"};
      Value v = a[0];
      for (size_t k = 1; k < a.size(); ++k) {
        if (v.kind == Value::Kind::List) {
          if (a[k].kind != Value::Kind::Int) throw ExecError{line, "error calling index: cannot index slice/array with type " + kind_name(a[k])};
          if (a[k].i < 0 || static_cast<size_t>(a[k].i) >= v.list->size())
            throw ExecError{line, "error calling index: index out of range: " + std::to_string(a[k].i)};
          Value e = (*v.list)[static_cast<size_t>(a[k].i)];
          v = std::move(e);
        } else if (v.kind == Value::Kind::Map) {
          if (a[k].kind != Value::Kind::String) throw ExecError{line, "error calling index: value has type " + kind_name(a[k]) + "; should be string"};
          Value e = v.field(a[k].s);
          v = std::move(e);
        } else if (v.kind == Value::Kind::String) {
          if (a[k].kind != Value::Kind::Int || a[k].i < 0 || static_cast<size_t>(a[k].i) >= v.s.size())
            throw ExecError{line, "error calling index: index out of range"};
          v = Value::integer(static_cast<unsigned char>(v.s[static_cast<size_t>(a[k].i)]));
        } else if (v.kind == Value::Kind::Nil) {
          throw ExecError{line, "error calling index: index of untyped nil"};
        } else {
          throw ExecError{line, "error calling index: can't index item of type " + kind_name(v)};
        }
      }
      return v;
    }
    if (fn == "slice") {
      if (a.empty() || a.size() > 4) throw ExecError{line, "wrong number of args for slice"};
      const Value& x = a[0];
      size_t len;
      if (x.kind == Value::Kind::String) len = x.s.size();
      else if (x.kind == Value::Kind::List) len = x.list->size();
      else throw ExecError{line, "error calling slice: can't slice item of type " + kind_name(x)};
      std::vector<size_t> idx;
      for (size_t k = 1; k < a.size(); ++k) {
        if (a[k].kind != Value::Kind::Int || a[k].i < 0) throw ExecError{line, "error calling slice: invalid index"};
        idx.push_back(static_cast<size_t>(a[k].i));
      }
      const size_t lo = idx.size() > 0 ? idx[0] : 0, hi = idx.size() > 1 ? idx[1] : len;
      if (lo > hi || hi > len) throw ExecError{line, "error calling slice: index out of range: " + std::to_string(hi)};
      if (x.kind == Value::Kind::String) return Value::str(x.s.substr(lo, hi - lo));
      return Value::of_list(List(x.list->begin() + static_cast<ptrdiff_t>(lo), x.list->begin() + static_cast<ptrdiff_t>(hi)));
    }
    if (fn == "eq" || fn == "ne") {
      if (a.size() < 2) throw ExecError{line, "wrong number of args for " + fn + ": want at least 2 got " + std::to_string(a.size())};
      bool eq = false;
      for (size_t k = 1; k < a.size() && !eq; ++k) eq = compare(a[0], a[k], line, false) == 0;
      if (fn == "ne") {
        want(2);
        return Value::boolean(!eq);
      }
      return Value::boolean(eq);
    }
    if (fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
      want(2);
      const int c = compare(a[0], a[1], line, true);
      return Value::boolean(fn == "lt" ? c < 0 : fn == "le" ? c <= 0 : fn == "gt" ? c > 0 : c >= 0);
    }
    if (fn == "print" || fn == "println") {
      std::string o;
      for (size_t k = 0; k < a.size(); ++k) {
        const bool str_pair = a[k].kind == Value::Kind::String || (k > 0 && a[k - 1].kind == Value::Kind::String);
        if (k > 0 && (fn == "println" || !str_pair)) o += ' ';
        o += format(a[k]);
      }
      if (fn == "println") o += '\n';
      return Value::str(o);
    }
    if (fn == "printf") {
      if (a.empty() || a[0].kind != Value::Kind::String) throw ExecError{line, "wrong number of args for printf"};
      return Value::str(sprintf_go(a[0].s, std::vector<Value>(a.begin() + 1, a.end())));
    }
    if (fn == "json") {
      want(1);
      return Value::str(to_json(a[0]));
    }
    if (fn == "currentDate") return Value::str(date_string(0));
    if (fn == "yesterdayDate") return Value::str(date_string(1));
    if (fn == "toTypeScriptType") {
      want(1);
      return Value::str(typescript_type(a[0]));
    }
    if (fn == "html" || fn == "js" || fn == "urlquery") {
      std::string s;
      for (size_t k = 0; k < a.size(); ++k) s += format(a[k]);
      std::string o;
      for (unsigned char c : s) {
        if (fn == "html") {
          if (c == '<') o += "&lt;";
          else if (c == '>') o += "&gt;";
          else if (c == '&') o += "&amp;";
          else if (c == '"') o += "&#34;";
          else if (c == '\'') o += "&#39;";
          else if (c == 0) o += "\xEF\xBF\xBD";
          else o += static_cast<char>(c);
        } else if (fn == "js") {
          if (c == '\\') o += "\\\\";
          else if (c == '\'') o += "\\'";
          else if (c == '"') o += "\\\"";
          else if (c == '<') o += "\\u003C";
          else if (c == '>') o += "\\u003E";
          else if (c == '&') o += "\\u0026";
          else if (c == '=') o += "\\u003D";
          else if (c == '\n') o += "\\n";
          else if (c == '\r') o += "\\r";
          else if (c == '\t') o += "\\t";
          else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04X", c); o += b; }
          else o += static_cast<char>(c);
        } else {
          if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') o += static_cast<char>(c);
          else if (c == ' ') o += '+';
          else { char b[4]; std::snprintf(b, sizeof b, "%%%02X", c); o += b; }
        }
      }
      return Value::str(o);
    }
    throw ExecError{line, "function \"" + fn + "\" cannot be called here"};
  }

  const Template::Tree& tree_;
  std::string& out_;
  std::vector<std::pair<std::string, Value>> vars_;
  int depth_ = 0;        // Deeper levels in progress
  uint64_t steps_ = 0;   // step() calls so far
};

}  // namespace

Result<Template> Template::parse(std::string_view text) {
  // Each byte can become a token of a few hundred bytes: the source is capped first.
  if (text.size() > kMaxTemplateBytes)
    return Error{"template: the template is " + std::to_string(text.size()) + " bytes, over the limit of " +
                 std::to_string(kMaxTemplateBytes >> 20) + " MiB"};
  auto tree = std::make_shared<Tree>();
  try {
    Parser p(lex(text), *tree);
    p.parse_root();
  } catch (const ParseError& e) {
    return Error{"template: :" + std::to_string(e.line) + ": " + e.message};
  }
  Template t;
  t.tree_ = std::move(tree);
  return t;
}

Result<std::string> Template::execute(const Value& data) const {
  std::string out;
  try {
    Exec(*tree_, out).run(data);
  } catch (const ExecError& e) {
    return Error{"template: :" + std::to_string(e.line) + ": executing \"\": " + e.message};
  }
  return out;
}

bool Template::references(std::string_view field) const { return tree_->fields.count(std::string(field)) > 0; }

namespace {

bool pipe_names(const Pipe& p, std::string_view field) {
  for (const Cmd& c : p.cmds)
    for (const Arg& a : c.args) {
      if (a.kind == Arg::Kind::Field && std::find(a.fields.begin(), a.fields.end(), field) != a.fields.end()) return true;
      if (a.kind == Arg::Kind::Sub && a.sub && pipe_names(*a.sub, field)) return true;
    }
  return false;
}

bool is_branch(const Node& n) { return n.kind == Node::Kind::If || n.kind == Node::Kind::Range || n.kind == Node::Kind::With; }

// The first {{if}} naming `field`, searched through the bodies of if/range/with.
const Node* find_if(const std::vector<Node>& nodes, std::string_view field) {
  for (const Node& n : nodes) {
    if (!is_branch(n)) continue;
    if (n.kind == Node::Kind::If && pipe_names(n.pipe, field)) return &n;
    if (const Node* r = find_if(n.list, field)) return r;
    if (const Node* r = find_if(n.else_list, field)) return r;
  }
  return nullptr;
}

// The first text, depth first, stopping at the first action or after the first branch.
const Node* first_text(const std::vector<Node>& nodes) {
  for (const Node& n : nodes) {
    if (n.kind == Node::Kind::Text) return &n;
    if (n.kind == Node::Kind::Action) return nullptr;
    if (is_branch(n)) {
      if (const Node* t = first_text(n.list)) return t;
      return first_text(n.else_list);
    }
  }
  return nullptr;
}

std::string trim_space(std::string s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Visits every use of .Thinking inside a range over .Messages; `list` is the node list the
// use sits in (for a use in a branch's condition, the list holding the branch).
void thinking_uses(const std::vector<Node>& list, bool in_messages, std::pair<std::string, std::string>& tags) {
  auto found = [&] {
    if (!in_messages || list.empty()) return;
    if (list.front().kind == Node::Kind::Text) tags.first = trim_space(list.front().text);
    if (list.back().kind == Node::Kind::Text) tags.second = trim_space(list.back().text);
  };
  for (const Node& n : list) {
    if (n.kind == Node::Kind::Action && pipe_names(n.pipe, "Thinking")) found();
    if (!is_branch(n)) continue;
    if (pipe_names(n.pipe, "Thinking")) found();
    const bool messages = in_messages || (n.kind == Node::Kind::Range && pipe_names(n.pipe, "Messages"));
    thinking_uses(n.list, messages, tags);
    thinking_uses(n.else_list, messages, tags);
  }
}

}  // namespace

std::string Template::tool_call_tag() const {
  const Node* n = find_if(tree_->root, "ToolCalls");
  if (!n) return "";
  const Node* t = first_text(n->list);
  if (!t) return "";
  const std::string text = trim_space(t->text);
  std::string tag;
  for (size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) tag += text[i];  // "\r\n" read as "\n"
  return tag.substr(0, tag.find('{'));
}

std::pair<std::string, std::string> Template::thinking_tags() const {
  std::pair<std::string, std::string> tags;
  thinking_uses(tree_->root, false, tags);
  return tags;
}

}  // namespace hearth::server::tmpl
