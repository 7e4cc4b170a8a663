#include "model/json_schema.h"

#include <simdjson.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "model/schema_regex.h"

namespace hearth::model {

namespace {

using simdjson::dom::element;
using Seq = GrammarBuilder::Seq;
using Item = GrammarBuilder::Item;

// Integers are written with at most this many digits (below 2^53: exact in every client).
constexpr int kMaxDigits = 15;
constexpr int64_t kMaxMagnitude = 999'999'999'999'999;

const std::set<std::string_view> kAnnotations = {"title",   "description", "examples", "default",   "$schema",   "$id",
                                                 "$comment", "deprecated",  "readOnly", "writeOnly", "$defs", "definitions"};
const std::set<std::string_view> kConstraints = {
    "type",      "properties", "required",  "additionalProperties", "items",   "prefixItems",      "minItems",
    "maxItems",  "enum",       "const",     "anyOf",                "oneOf",   "allOf",            "$ref",
    "minLength", "maxLength",  "pattern",   "format",               "minimum", "maximum",          "exclusiveMinimum",
    "exclusiveMaximum", "maxProperties"};

// A property name or string as it appears in JSON.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else out += c;
  }
  return out + "\"";
}

std::string pointer_token(std::string_view k) {
  std::string out;
  for (char c : k) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

std::string where(const std::string& path) { return path.empty() ? "the schema's root" : path; }

// One schema object's keywords, looked up by name.
struct Keys {
  std::map<std::string_view, element> map;
  bool has(std::string_view k) const { return map.count(k) != 0; }
  std::optional<element> get(std::string_view k) const {
    auto it = map.find(k);
    return it == map.end() ? std::nullopt : std::optional<element>(it->second);
  }
};

class Compiler {
 public:
  Compiler(element root, const ThinkingRoom& room) : root_(root), room_(room) {}

  Result<Grammar> compile() {
    const uint32_t root = b_.declare("root");
    auto v = value(root_, "", 0);
    if (!v) return v.error();
    b_.define(root, {GrammarBuilder::cat({thinking(), v.value()})});
    return b_.build(root);
  }

  Grammar json_object() {
    const uint32_t root = b_.rule("root", {GrammarBuilder::cat({thinking(), any_object(0)})});
    return std::move(b_.build(root).value());
  }

 private:
  // --- Shared pieces ---------------------------------------------------------------

  // The reasoning before the document (ThinkingRoom): any bytes up to and including the
  // first `close`, as the rules of the close tag's KMP automaton (rule i: i bytes of the
  // tag matched), then blanks.
  Seq thinking() {
    const std::string& tag = room_.close;
    if (tag.empty()) return {};
    const size_t n = tag.size();
    std::vector<size_t> fail(n, 0);  // the longest proper border of tag[0..i]
    for (size_t i = 1, k = 0; i < n; ++i) {
      while (k > 0 && tag[i] != tag[k]) k = fail[k - 1];
      if (tag[i] == tag[k]) ++k;
      fail[i] = k;
    }
    auto step = [&](size_t state, uint8_t b) {
      while (state > 0 && static_cast<uint8_t>(tag[state]) != b) state = fail[state - 1];
      return static_cast<uint8_t>(tag[state]) == b ? state + 1 : 0;
    };
    std::vector<uint32_t> rules(n);
    for (size_t i = 0; i < n; ++i) rules[i] = b_.declare("thinking-" + std::to_string(i));
    for (size_t i = 0; i < n; ++i) {
      std::vector<ByteSet> to(n + 1);
      for (unsigned b = 0; b < 256; ++b) to[step(i, static_cast<uint8_t>(b))].add(static_cast<uint8_t>(b));
      std::vector<Seq> alts;
      for (size_t j = 0; j <= n; ++j) {
        if (to[j] == ByteSet{}) continue;
        Seq alt = {b_.bytes(to[j])};
        if (j < n) alt.push_back(b_.ref(rules[j]));
        alts.push_back(std::move(alt));
      }
      b_.define(rules[i], std::move(alts));
    }
    ByteSet blank;
    blank.add(' ').add('\t').add('\n').add('\r');
    const Seq body = GrammarBuilder::cat({{b_.ref(rules[0])}, {b_.repeat("thinking-blanks", {b_.bytes(blank)}, 0, 4)}});
    if (room_.inside) return body;
    return {b_.optional("thinking", GrammarBuilder::cat({b_.literal(room_.open), body}))};
  }

  Seq ws() {
    if (!ws_) {
      ByteSet blank;
      blank.add(' ').add('\t');
      const Item indent = b_.repeat("ws-indent", {b_.bytes(blank)}, 0, 20);
      ws_ = b_.rule("ws", {{}, b_.literal(" "), GrammarBuilder::cat({b_.literal("\n"), {indent}})});
    }
    return {b_.ref(*ws_)};
  }
  Seq sep() { return GrammarBuilder::cat({ws(), b_.literal(","), ws()}); }
  Seq colon() { return GrammarBuilder::cat({ws(), b_.literal(":"), ws()}); }

  // One character of a JSON string: printable ASCII but '"' and '\\', a whole UTF-8
  // character, or an escape (\u of a non-surrogate only).
  Item str_char() {
    if (char_) return b_.ref(*char_);
    auto set = [&](std::initializer_list<std::pair<int, int>> ranges) {
      ByteSet s;
      for (auto [lo, hi] : ranges) s.add(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi));
      return b_.bytes(s);
    };
    const Item cont = set({{0x80, 0xBF}}), hex = set({{'0', '9'}, {'a', 'f'}, {'A', 'F'}});
    std::vector<Seq> alts = {
        {set({{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7E}})},
        {set({{0xC2, 0xDF}}), cont},
        {set({{0xE0, 0xE0}}), set({{0xA0, 0xBF}}), cont},
        {set({{0xE1, 0xEC}, {0xEE, 0xEF}}), cont, cont},
        {set({{0xED, 0xED}}), set({{0x80, 0x9F}}), cont},
        {set({{0xF0, 0xF0}}), set({{0x90, 0xBF}}), cont, cont},
        {set({{0xF1, 0xF3}}), cont, cont, cont},
        {set({{0xF4, 0xF4}}), set({{0x80, 0x8F}}), cont, cont},
        {b_.byte('\\'), set({{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}})},
        {b_.byte('\\'), b_.byte('u'), set({{'0', '9'}, {'a', 'c'}, {'A', 'C'}, {'e', 'f'}, {'E', 'F'}}), hex, hex, hex},
        {b_.byte('\\'), b_.byte('u'), set({{'d', 'd'}, {'D', 'D'}}), set({{'0', '7'}}), hex, hex},
    };
    char_ = b_.rule("char", std::move(alts));
    return b_.ref(*char_);
  }

  Seq any_string() {
    if (!string_) string_ = b_.rule("string", {GrammarBuilder::cat({b_.literal("\""), {b_.repeat("chars", {str_char()}, 0, -1)}, b_.literal("\"")})});
    return {b_.ref(*string_)};
  }

  Seq any_number() {
    if (!number_) {
      const Item frac = b_.repeat("frac-digits", {digits('0', '9')}, 1, kMaxDigits);
      number_ = b_.rule("number", {GrammarBuilder::cat({{b_.optional("minus", b_.literal("-"))}, {int_digits()}, {b_.optional("frac", GrammarBuilder::cat({b_.literal("."), {frac}}))}})});
    }
    return {b_.ref(*number_)};
  }

  Item digits(char lo, char hi) { return b_.bytes(ByteSet{}.add(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi))); }

  // 0 or 1-15 digits without a leading zero.
  Item int_digits() {
    if (!int_digits_)
      int_digits_ = b_.rule("int-digits", {b_.literal("0"), {digits('1', '9'), b_.repeat("digits", {digits('0', '9')}, 0, kMaxDigits - 1)}});
    return b_.ref(*int_digits_);
  }

  Seq any_value(int depth) {
    depth = std::min(depth, kMaxValueDepth);
    if (!values_[depth]) {
      const uint32_t r = b_.declare("value-" + std::to_string(depth));
      values_[depth] = r;
      std::vector<Seq> alts = {any_string(), any_number(), b_.literal("true"), b_.literal("false"), b_.literal("null")};
      if (depth < kMaxValueDepth) {
        alts.push_back(any_object(depth));
        const Seq inner = any_value(depth + 1);
        const Item more = b_.repeat("array-more", GrammarBuilder::cat({sep(), inner}), 0, -1);
        alts.push_back(GrammarBuilder::cat({b_.literal("["), ws(), b_.literal("]")}));
        alts.push_back(GrammarBuilder::cat({b_.literal("["), ws(), inner, {more}, ws(), b_.literal("]")}));
      }
      b_.define(r, std::move(alts));
    }
    return {b_.ref(*values_[depth])};
  }

  Seq any_object(int depth) { return map_of(any_value(depth + 1)); }

  // An object of any keys whose values are `value`, at most `max` of them (< 0: any number).
  Seq map_of(const Seq& value, int64_t max = -1) {
    const Seq member = GrammarBuilder::cat({any_string(), colon(), value});
    if (max == 0) return GrammarBuilder::cat({b_.literal("{"), ws(), b_.literal("}")});
    const Item more = b_.repeat("members", GrammarBuilder::cat({sep(), member}), 0, max < 0 ? -1 : max - 1);
    return {b_.ref(b_.rule("map", {GrammarBuilder::cat({b_.literal("{"), ws(), b_.literal("}")}),
                                   GrammarBuilder::cat({b_.literal("{"), ws(), member, {more}, ws(), b_.literal("}")})}))};
  }

  // --- Schemas ---------------------------------------------------------------------

  Result<Keys> keys_of(element s, const std::string& path) {
    Keys k;
    simdjson::dom::object obj;
    if (s.get_object().get(obj)) return Error{"the schema at " + where(path) + " must be an object or a boolean"};
    for (auto [key, val] : obj) {
      if (!kAnnotations.count(key) && !kConstraints.count(key) && key.substr(0, 2) != "x-")
        return Error{"unsupported JSON schema keyword \"" + std::string(key) + "\" at " + where(path)};
      k.map.emplace(key, val);
    }
    return k;
  }

  Result<Seq> value(element s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) return Error{"the schema nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels at " + where(path)};
    bool flag;
    if (!s.get_bool().get(flag)) {
      if (flag) return any_value(1);
      return Error{"the schema at " + where(path) + " is false: no value is valid"};
    }
    auto k = keys_of(s, path);
    if (!k) return k.error();
    const Keys& keys = k.value();
    auto only = [&](std::string_view kw, std::initializer_list<std::string_view> also) -> Status {
      for (const auto& [key, v] : keys.map)
        if (kConstraints.count(key) && key != kw && std::find(also.begin(), also.end(), key) == also.end())
          return Error{"\"" + std::string(key) + "\" beside \"" + std::string(kw) + "\" is not supported at " + where(path)};
      return {};
    };
    if (auto r = keys.get("$ref")) {
      if (Status st = only("$ref", {}); !st) return st.error();
      return reference(*r, path, depth);
    }
    if (keys.has("const") || keys.has("enum")) return constants(keys, path);
    for (std::string_view kw : {"anyOf", "oneOf"})
      if (auto alts = keys.get(kw)) {
        if (Status st = only(kw, {}); !st) return st.error();
        return any_of(*alts, path + "/" + std::string(kw), depth);
      }
    if (auto all = keys.get("allOf")) {
      if (Status st = only("allOf", {"type"}); !st) return st.error();
      return all_of(*all, path + "/allOf", depth);
    }
    auto types = types_of(keys, path);
    if (!types) return types.error();
    if (types.value().empty()) return any_value(1);
    std::vector<Seq> alts;
    for (const std::string& t : types.value()) {
      auto one = typed(keys, t, path, depth);
      if (!one) return one.error();
      alts.push_back(std::move(one.value()));
    }
    if (alts.size() == 1) return std::move(alts[0]);
    return Seq{b_.ref(b_.rule("types", std::move(alts)))};
  }

  Result<std::vector<std::string>> types_of(const Keys& keys, const std::string& path) {
    std::vector<std::string> out;
    if (auto t = keys.get("type")) {
      std::string_view one;
      simdjson::dom::array many;
      if (!t->get_string().get(one)) out.emplace_back(one);
      else if (!t->get_array().get(many))
        for (element e : many) {
          if (e.get_string().get(one)) return Error{"\"type\" at " + where(path) + " must list strings"};
          out.emplace_back(one);
        }
      else return Error{"\"type\" at " + where(path) + " must be a string or an array of strings"};
      if (out.empty()) return Error{"\"type\" at " + where(path) + " lists no type"};
      return out;
    }
    // No "type": the types the keywords present speak about.
    auto any = [&](std::initializer_list<std::string_view> kws) {
      return std::any_of(kws.begin(), kws.end(), [&](std::string_view kw) { return keys.has(kw); });
    };
    if (any({"properties", "required", "additionalProperties", "maxProperties"})) out.push_back("object");
    if (any({"items", "prefixItems", "minItems", "maxItems"})) out.push_back("array");
    if (any({"minLength", "maxLength", "pattern", "format"})) out.push_back("string");
    if (any({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) out.push_back("number");
    return out;
  }

  Result<Seq> typed(const Keys& keys, const std::string& t, const std::string& path, int depth) {
    if (t == "string") return string_of(keys, path);
    if (t == "integer") return integer_of(keys, path);
    if (t == "number") return number_of(keys, path);
    if (t == "boolean") return Seq{b_.ref(b_.rule("boolean", {b_.literal("true"), b_.literal("false")}))};
    if (t == "null") return b_.literal("null");
    if (t == "object") return object_of(keys, path, depth);
    if (t == "array") return array_of(keys, path, depth);
    return Error{"unknown type \"" + t + "\" at " + where(path)};
  }

  Result<Seq> reference(element r, const std::string& path, int depth) {
    std::string_view ref;
    if (r.get_string().get(ref)) return Error{"\"$ref\" at " + where(path) + " must be a string"};
    const std::string key(ref);
    if (auto it = refs_.find(key); it != refs_.end()) return Seq{b_.ref(it->second)};
    if (ref.empty() || ref[0] != '#') return Error{"\"$ref\": \"" + key + "\" at " + where(path) + ": only references inside the schema (#/…) are supported"};
    auto target = resolve(ref);
    if (!target) return Error{target.message() + " (at " + where(path) + ")"};
    const uint32_t rule = b_.declare("ref " + key);
    refs_.emplace(key, rule);
    auto v = value(target.value(), std::string(ref.substr(1)), depth + 1);
    if (!v) return v.error();
    b_.define(rule, {v.value()});
    return Seq{b_.ref(rule)};
  }

  Result<Seq> constants(const Keys& keys, const std::string& path) {
    for (const auto& [key, v] : keys.map)
      if (kConstraints.count(key) && key != "const" && key != "enum" && key != "type")
        return Error{"\"" + std::string(key) + "\" beside \"" + (keys.has("const") ? "const" : "enum") + "\" is not supported at " + where(path)};
    std::vector<element> values;
    if (auto c = keys.get("const")) values.push_back(*c);
    if (auto e = keys.get("enum")) {
      simdjson::dom::array arr;
      if (e->get_array().get(arr)) return Error{"\"enum\" at " + where(path) + " must be an array"};
      if (keys.has("const")) return Error{"\"enum\" beside \"const\" is not supported at " + where(path)};
      for (element v : arr) values.push_back(v);
    }
    std::vector<std::string> types;
    if (keys.has("type")) {
      auto t = types_of(keys, path);
      if (!t) return t.error();
      types = t.value();
    }
    std::vector<Seq> alts;
    for (element v : values) {
      if (!types.empty() && std::find_if(types.begin(), types.end(), [&](const std::string& t) { return is_type(v, t); }) == types.end())
        continue;  // a value the "type" beside it excludes
      alts.push_back(b_.literal(simdjson::minify(v)));
    }
    if (alts.empty()) return Error{"no value of \"" + std::string(keys.has("const") ? "const" : "enum") + "\" at " + where(path) + " is valid"};
    return Seq{b_.ref(b_.rule("enum", std::move(alts)))};
  }

  static bool is_type(element v, const std::string& t) {
    switch (v.type()) {
      case simdjson::dom::element_type::STRING: return t == "string";
      case simdjson::dom::element_type::INT64:
      case simdjson::dom::element_type::UINT64: return t == "integer" || t == "number";
      case simdjson::dom::element_type::DOUBLE: {
        const double d = v.get_double().value();
        return t == "number" || (t == "integer" && d == std::floor(d));
      }
      case simdjson::dom::element_type::BOOL: return t == "boolean";
      case simdjson::dom::element_type::NULL_VALUE: return t == "null";
      case simdjson::dom::element_type::ARRAY: return t == "array";
      case simdjson::dom::element_type::OBJECT: return t == "object";
    }
    return false;
  }

  Result<Seq> any_of(element list, const std::string& path, int depth) {
    simdjson::dom::array arr;
    if (list.get_array().get(arr) || arr.size() == 0) return Error{where(path) + " must be a non-empty array of schemas"};
    std::vector<Seq> alts;
    size_t i = 0;
    for (element sub : arr) {
      auto v = value(sub, path + "/" + std::to_string(i++), depth + 1);
      if (!v) return v.error();
      alts.push_back(std::move(v.value()));
    }
    return Seq{b_.ref(b_.rule("any-of", std::move(alts)))};
  }

  // --- Objects ---------------------------------------------------------------------

  struct ObjectSpec {
    std::vector<std::pair<std::string, element>> props;  // declared order
    std::set<std::string> required;
    std::optional<element> additional;  // absent: none generated beside declared ones
    int64_t max_properties = -1;        // free-form objects only
    std::string path;
  };

  Status collect_object(const Keys& keys, const std::string& path, ObjectSpec& spec) {
    if (auto p = keys.get("properties")) {
      simdjson::dom::object obj;
      if (p->get_object().get(obj)) return Error{"\"properties\" at " + where(path) + " must be an object"};
      for (auto [name, sub] : obj) {
        const std::string n(name);
        if (std::none_of(spec.props.begin(), spec.props.end(), [&](const auto& x) { return x.first == n; })) spec.props.emplace_back(n, sub);
      }
    }
    if (auto r = keys.get("required")) {
      simdjson::dom::array arr;
      if (r->get_array().get(arr)) return Error{"\"required\" at " + where(path) + " must be an array of strings"};
      for (element e : arr) {
        std::string_view n;
        if (e.get_string().get(n)) return Error{"\"required\" at " + where(path) + " must be an array of strings"};
        spec.required.emplace(n);
      }
    }
    if (auto a = keys.get("additionalProperties")) spec.additional = *a;
    return count(keys, "maxProperties", path, spec.max_properties);
  }

  Result<Seq> object_of(const Keys& keys, const std::string& path, int depth) {
    ObjectSpec spec;
    spec.path = path;
    if (Status st = collect_object(keys, path, spec); !st) return st.error();
    return object_rule(spec, depth);
  }

  Result<Seq> all_of(element list, const std::string& path, int depth) {
    simdjson::dom::array arr;
    if (list.get_array().get(arr) || arr.size() == 0) return Error{where(path) + " must be a non-empty array of schemas"};
    if (arr.size() == 1) return value(arr.at(0).value(), path + "/0", depth + 1);
    // Several: only object schemas, merged (properties, required, additionalProperties).
    ObjectSpec spec;
    spec.path = path;
    size_t i = 0;
    for (element sub : arr) {
      const std::string at = path + "/" + std::to_string(i++);
      element s = sub;
      std::string_view ref;
      for (int hops = 0; hops < 16; ++hops) {  // follow plain $refs to the object they name
        auto k = keys_of(s, at);
        if (!k) return k.error();
        auto r = k.value().get("$ref");
        if (!r || r->get_string().get(ref) || ref.empty() || ref[0] != '#') break;
        auto t = resolve(ref);
        if (!t) return t.error();
        s = t.value();
      }
      auto k = keys_of(s, at);
      if (!k) return k.error();
      for (const auto& [key, v] : k.value().map)
        if (kConstraints.count(key) && key != "properties" && key != "required" && key != "additionalProperties" && key != "type" &&
            key != "maxProperties")
          return Error{"allOf is supported over object schemas only (\"" + std::string(key) + "\" at " + at + ")"};
      if (auto t = k.value().get("type"); t && simdjson::minify(*t) != "\"object\"")
        return Error{"allOf is supported over object schemas only (\"type\" at " + at + ")"};
      if (Status st = collect_object(k.value(), at, spec); !st) return st.error();
    }
    return object_rule(spec, depth);
  }

  // The schema a local reference ("#", "#/$defs/x", any JSON pointer) names.
  Result<element> resolve(std::string_view ref) {
    const std::string key(ref);
    element target = root_;
    std::string_view rest = ref.substr(1);
    while (!rest.empty()) {
      if (rest[0] != '/') return Error{"\"$ref\": \"" + key + "\" is not a JSON pointer"};
      rest.remove_prefix(1);
      const size_t slash = rest.find('/');
      std::string token(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
      for (size_t i = 0; (i = token.find('~', i)) != std::string::npos; ++i) {
        if (i + 1 >= token.size() || (token[i + 1] != '0' && token[i + 1] != '1')) return Error{"\"$ref\": \"" + key + "\" has a bad ~ escape"};
        token.replace(i, 2, token[i + 1] == '0' ? "~" : "/");
      }
      simdjson::dom::object obj;
      simdjson::dom::array arr;
      element next;
      if (!target.get_object().get(obj) && !obj[token].get(next)) target = next;
      else if (!target.get_array().get(arr) && !token.empty() && token.size() < 9 &&
               token.find_first_not_of("0123456789") == std::string::npos && !arr.at(std::stoul(token)).get(next))
        target = next;
      else return Error{"\"$ref\": \"" + key + "\" points at nothing"};
    }
    return target;
  }

  Result<Seq> object_rule(const ObjectSpec& spec, int depth) {
    bool additional_ok = true;
    std::optional<element> additional_schema;
    if (spec.additional) {
      bool flag;
      if (!spec.additional->get_bool().get(flag)) additional_ok = flag;
      else additional_schema = spec.additional;
    }
    std::vector<std::pair<std::string, std::optional<element>>> props;
    for (const auto& [n, s] : spec.props) props.emplace_back(n, s);
    for (const std::string& r : spec.required)
      if (std::none_of(props.begin(), props.end(), [&](const auto& p) { return p.first == r; })) {
        if (!additional_ok)
          return Error{"required property \"" + r + "\" at " + where(spec.path) + " is neither declared nor allowed (additionalProperties is false)"};
        props.emplace_back(r, additional_schema);
      }
    if (props.empty()) {
      if (spec.additional && !additional_ok) return GrammarBuilder::cat({b_.literal("{"), ws(), b_.literal("}")});
      Seq v = any_value(2);
      if (additional_schema) {
        auto r = value(*additional_schema, spec.path + "/additionalProperties", depth + 1);
        if (!r) return r.error();
        v = std::move(r.value());
      }
      return map_of(v, spec.max_properties);
    }
    if (spec.max_properties >= 0)
      return Error{"\"maxProperties\" beside properties or required is not supported at " + where(spec.path)};
    // The members in declared order, the optional ones optional: chain[i][c] generates
    // members i… given that c (0/1) members came before (so a comma is due).
    std::vector<Seq> member(props.size());
    for (size_t i = 0; i < props.size(); ++i) {
      Seq v;
      if (props[i].second) {
        auto r = value(*props[i].second, spec.path + "/properties/" + pointer_token(props[i].first), depth + 1);
        if (!r) return r.error();
        v = std::move(r.value());
      } else v = any_value(1);
      member[i] = GrammarBuilder::cat({b_.literal(json_string(props[i].first)), colon(), v});
    }
    std::array<Seq, 2> after{Seq{}, Seq{}};  // chain[i + 1]
    for (size_t i = props.size(); i-- > 0;) {
      std::array<Seq, 2> here;
      for (int c = 0; c < 2; ++c) {
        Seq take = GrammarBuilder::cat({c ? sep() : Seq{}, member[i], after[1]});
        std::vector<Seq> alts = {take};
        if (!spec.required.count(props[i].first)) alts.push_back(after[c]);
        here[c] = {b_.ref(b_.rule("members-" + std::to_string(i), std::move(alts)))};
      }
      after = here;
    }
    return GrammarBuilder::cat({b_.literal("{"), ws(), after[0], ws(), b_.literal("}")});
  }

  // --- Arrays ----------------------------------------------------------------------

  Result<Seq> array_of(const Keys& keys, const std::string& path, int depth) {
    int64_t min = 0, max = -1;
    if (Status st = count(keys, "minItems", path, min); !st) return st.error();
    if (Status st = count(keys, "maxItems", path, max); !st) return st.error();
    std::vector<Seq> prefix;
    if (auto p = keys.get("prefixItems")) {
      simdjson::dom::array arr;
      if (p->get_array().get(arr)) return Error{"\"prefixItems\" at " + where(path) + " must be an array of schemas"};
      size_t i = 0;
      for (element sub : arr) {
        auto v = value(sub, path + "/prefixItems/" + std::to_string(i++), depth + 1);
        if (!v) return v.error();
        prefix.push_back(std::move(v.value()));
      }
    }
    std::optional<Seq> rest = any_value(1);
    if (auto it = keys.get("items")) {
      bool flag;
      if (!it->get_bool().get(flag)) {
        if (!flag) rest.reset();
      } else {
        auto v = value(*it, path + "/items", depth + 1);
        if (!v) return v.error();
        rest = std::move(v.value());
      }
    }
    const auto k = static_cast<int64_t>(prefix.size());
    if (!rest) max = max < 0 ? k : std::min(max, k);
    if (max >= 0 && min > max) return Error{"no array fits at " + where(path) + ": minItems " + std::to_string(min) + " > " + std::to_string(max) + " items at most"};
    if (min > 100'000) return Error{"\"minItems\" at " + where(path) + " is too large"};
    // Element i, after a comma unless it is the first.
    auto item = [&](int64_t i) { return GrammarBuilder::cat({i ? sep() : Seq{}, i < k ? prefix[i] : *rest}); };
    // The optional elements from i on (max: how many in all, < 0: no limit).
    std::function<Seq(int64_t)> optional_from = [&](int64_t i) -> Seq {
      if (max >= 0 && i >= max) return {};
      if (i < k) return {b_.optional("item", GrammarBuilder::cat({item(i), optional_from(i + 1)}))};
      const int64_t more = max < 0 ? -1 : max - i;  // past the prefix every element is alike
      if (i > 0) return {b_.repeat("items", item(i), 0, more)};
      return {b_.optional("items", GrammarBuilder::cat({item(0), {b_.repeat("items", item(1), 0, more < 0 ? -1 : more - 1)}}))};
    };
    Seq body;
    for (int64_t i = 0; i < min; ++i) {
      const Seq s = item(i);
      body.insert(body.end(), s.begin(), s.end());
    }
    const Seq tail = optional_from(min);
    body.insert(body.end(), tail.begin(), tail.end());
    return GrammarBuilder::cat({b_.literal("["), ws(), body, ws(), b_.literal("]")});
  }

  Status count(const Keys& keys, std::string_view kw, const std::string& path, int64_t& out) {
    auto v = keys.get(kw);
    if (!v) return {};
    double d;
    if (v->get_double().get(d) || d < 0 || d != std::floor(d) || d > 1e9)
      return Error{"\"" + std::string(kw) + "\" at " + where(path) + " must be a non-negative integer"};
    out = static_cast<int64_t>(d);
    return {};
  }

  // --- Strings ---------------------------------------------------------------------

  Result<Seq> string_of(const Keys& keys, const std::string& path) {
    int64_t min = 0, max = -1;
    if (Status st = count(keys, "minLength", path, min); !st) return st.error();
    if (Status st = count(keys, "maxLength", path, max); !st) return st.error();
    const bool lengths = keys.has("minLength") || keys.has("maxLength");
    if (max >= 0 && min > max) return Error{"no string fits at " + where(path) + ": minLength " + std::to_string(min) + " > maxLength " + std::to_string(max)};
    auto quoted = [&](const Seq& inner) { return GrammarBuilder::cat({b_.literal("\""), inner, b_.literal("\"")}); };
    if (auto f = keys.get("format")) {
      std::string_view name;
      if (f->get_string().get(name)) return Error{"\"format\" at " + where(path) + " must be a string"};
      if (lengths || keys.has("pattern")) return Error{"\"format\" beside minLength, maxLength or pattern is not supported at " + where(path)};
      auto fs = format(name);
      if (!fs) return Error{"format \"" + std::string(name) + "\" at " + where(path) + " is not supported (date, time, date-time and uuid are)"};
      return quoted(*fs);
    }
    if (auto p = keys.get("pattern")) {
      std::string_view re;
      if (p->get_string().get(re)) return Error{"\"pattern\" at " + where(path) + " must be a string"};
      if (lengths) return Error{"\"pattern\" beside minLength or maxLength is not supported at " + where(path)};
      auto g = pattern_grammar(b_, re);
      if (!g) return Error{g.message() + " (at " + where(path) + ")"};
      return quoted(g.value());
    }
    if (!lengths) return any_string();
    return quoted({b_.repeat("chars", {str_char()}, min, max)});
  }

  std::optional<Seq> format(std::string_view name) {
    auto d = [&](char lo, char hi) { return digits(lo, hi); };
    auto alt = [&](const char* n, std::vector<Seq> alts) { return Seq{b_.ref(b_.rule(n, std::move(alts)))}; };
    auto lit = [&](const char* s) { return b_.literal(s); };
    using G = GrammarBuilder;
    auto date = [&] {
      const Seq year = {d('0', '9'), d('0', '9'), d('0', '9'), d('0', '9')};
      const Seq day28 = alt("day28", {{d('0', '0'), d('1', '9')}, {d('1', '1'), d('0', '9')}, {d('2', '2'), d('0', '8')}});
      const Seq day30 = alt("day30", {day28, G::cat({lit("29")}), G::cat({lit("30")})});
      const Seq day31 = alt("day31", {day30, lit("31")});
      const Seq md = alt("month-day", {G::cat({alt("month31", {lit("01"), lit("03"), lit("05"), lit("07"), lit("08"), lit("10"), lit("12")}), lit("-"), day31}),
                                       G::cat({alt("month30", {lit("04"), lit("06"), lit("09"), lit("11")}), lit("-"), day30}),
                                       G::cat({lit("02-"), day28})});
      return G::cat({year, lit("-"), md});
    };
    auto time = [&] {
      const Seq hour = alt("hour", {{d('0', '1'), d('0', '9')}, {d('2', '2'), d('0', '3')}});
      const Seq minute = {d('0', '5'), d('0', '9')};
      const Seq fraction = {b_.optional("second-fraction", G::cat({lit("."), {b_.repeat("fraction-digits", {d('0', '9')}, 1, 6)}}))};
      const Seq zone = alt("zone", {lit("Z"), G::cat({{b_.bytes(ByteSet{}.add('+').add('-'))}, hour, lit(":"), minute})});
      return G::cat({hour, lit(":"), minute, lit(":"), minute, fraction, zone});
    };
    auto hex = [&](int n) {
      Seq s;
      for (int i = 0; i < n; ++i) s.push_back(b_.bytes(ByteSet{}.add('0', '9').add('a', 'f')));
      return s;
    };
    if (name == "date") return date();
    if (name == "time") return time();
    if (name == "date-time") return G::cat({date(), lit("T"), time()});
    if (name == "uuid") return G::cat({hex(8), lit("-"), hex(4), lit("-"), hex(4), lit("-"), hex(4), lit("-"), hex(12)});
    return std::nullopt;
  }

  // --- Numbers ---------------------------------------------------------------------

  struct Bounds {
    std::optional<double> lo, hi;
    bool lo_open = false, hi_open = false;
  };

  Result<Bounds> bounds(const Keys& keys, const std::string& path) {
    Bounds b;
    // The tighter of minimum and exclusiveMinimum (of the maxima), the exclusive one on a tie.
    for (auto [kw, lower, open] : {std::tuple{"minimum", true, false}, std::tuple{"exclusiveMinimum", true, true},
                                   std::tuple{"maximum", false, false}, std::tuple{"exclusiveMaximum", false, true}}) {
      auto v = keys.get(kw);
      if (!v) continue;
      double d;
      if (v->get_double().get(d)) return Error{"\"" + std::string(kw) + "\" at " + where(path) + " must be a number"};
      std::optional<double>& bound = lower ? b.lo : b.hi;
      bool& is_open = lower ? b.lo_open : b.hi_open;
      if (!bound || (lower ? d > *bound : d < *bound) || (d == *bound && open)) {
        bound = d;
        is_open = open;
      }
    }
    return b;
  }

  // The integers a grammar writes in [lo, hi] (magnitudes up to kMaxMagnitude).
  Result<Seq> integers(int64_t lo, int64_t hi, const std::string& path) {
    lo = std::max(lo, -kMaxMagnitude);
    hi = std::min(hi, kMaxMagnitude);
    if (lo > hi) return Error{"no integer with at most " + std::to_string(kMaxDigits) + " digits lies in the range at " + where(path)};
    std::vector<Seq> alts;
    if (lo < 0)
      for (Seq& s : naturals(std::max<int64_t>(1, hi < 0 ? -hi : 1), -lo)) alts.push_back(GrammarBuilder::cat({b_.literal("-"), s}));
    if (hi >= 0)
      for (Seq& s : naturals(std::max<int64_t>(0, lo), hi)) alts.push_back(std::move(s));
    return Seq{b_.ref(b_.rule("integer-range", std::move(alts)))};
  }

  // Alternatives that write exactly the numbers of [a, b] (0 <= a <= b) without leading zeros.
  std::vector<Seq> naturals(int64_t a, int64_t b) {
    std::vector<Seq> out;
    int64_t p = 1;
    for (int len = 1; len <= kMaxDigits + 1 && a <= b; ++len, p *= 10) {
      const int64_t top = p * 10 - 1;  // largest number of `len` digits
      if (a > top) continue;
      const int64_t e = std::min(b, top);
      same_length(std::to_string(a), std::to_string(e), {}, out);
      a = top + 1;
    }
    return out;
  }

  // Numbers from x to y, both strings of the same length, appended as alternatives
  // (each `prefix` + digits).
  void same_length(const std::string& x, const std::string& y, const Seq& prefix, std::vector<Seq>& out) {
    if (x.empty()) {
      out.push_back(prefix);
      return;
    }
    const std::string rx = x.substr(1), ry = y.substr(1);
    auto any_digits = [&](size_t n) {
      Seq s;
      for (size_t i = 0; i < n; ++i) s.push_back(digits('0', '9'));
      return s;
    };
    auto with = [&](Seq s, const Seq& more) {
      s.insert(s.end(), more.begin(), more.end());
      return s;
    };
    if (x[0] == y[0]) return same_length(rx, ry, with(prefix, {digits(x[0], x[0])}), out);
    if (rx.find_first_not_of('0') == std::string::npos && ry.find_first_not_of('9') == std::string::npos) {
      out.push_back(with(with(prefix, {digits(x[0], y[0])}), any_digits(rx.size())));
      return;
    }
    same_length(rx, std::string(rx.size(), '9'), with(prefix, {digits(x[0], x[0])}), out);
    if (y[0] - x[0] > 1) out.push_back(with(with(prefix, {digits(static_cast<char>(x[0] + 1), static_cast<char>(y[0] - 1))}), any_digits(rx.size())));
    same_length(std::string(ry.size(), '0'), ry, with(prefix, {digits(y[0], y[0])}), out);
  }

  Result<Seq> integer_of(const Keys& keys, const std::string& path) {
    auto b = bounds(keys, path);
    if (!b) return b.error();
    const Bounds& r = b.value();
    auto clamp = [](double d) { return static_cast<int64_t>(std::clamp(d, -1e16, 1e16)); };
    const int64_t lo = !r.lo ? -kMaxMagnitude : clamp(r.lo_open ? std::floor(*r.lo) + 1 : std::ceil(*r.lo));
    const int64_t hi = !r.hi ? kMaxMagnitude : clamp(r.hi_open ? std::ceil(*r.hi) - 1 : std::floor(*r.hi));
    if (!r.lo && !r.hi) return Seq{b_.ref(b_.rule("integer", {GrammarBuilder::cat({{b_.optional("minus", b_.literal("-"))}, {int_digits()}})}))};
    return integers(lo, hi, path);
  }

  Result<Seq> number_of(const Keys& keys, const std::string& path) {
    auto b = bounds(keys, path);
    if (!b) return b.error();
    const Bounds& r = b.value();
    if (!r.lo && !r.hi) return any_number();
    auto clamp = [](double d) { return static_cast<int64_t>(std::clamp(d, -1e16, 1e16)); };
    const double lo = r.lo.value_or(-1e16), hi = r.hi.value_or(1e16);
    // Whole numbers k in the range; then k.f (in (k, k+1)) for k >= 0 with k >= lo and
    // k + 1 <= hi; then -k.f (in (-k-1, -k)) with -k-1 >= lo and -k <= hi. A fraction
    // ends in a non-zero digit so that k.f > k strictly.
    const int64_t klo = clamp(r.lo_open ? std::floor(lo) + 1 : std::ceil(lo)), khi = clamp(r.hi_open ? std::ceil(hi) - 1 : std::floor(hi));
    const Seq frac = GrammarBuilder::cat({b_.literal("."), {b_.repeat("frac-digits", {digits('0', '9')}, 0, kMaxDigits - 1)}, {digits('1', '9')}});
    std::vector<Seq> alts;
    auto add = [&](int64_t a, int64_t z, const Seq& before, const Seq& after) {
      a = std::max(a, int64_t{0});
      z = std::min(z, kMaxMagnitude);
      if (a > z) return;
      for (Seq& s : naturals(a, z)) alts.push_back(GrammarBuilder::cat({before, s, after}));
    };
    if (klo <= khi) {
      if (khi >= 0) add(std::max<int64_t>(klo, 0), khi, {}, {});
      if (klo < 0) add(std::max<int64_t>(1, -khi), -klo, b_.literal("-"), {});
    }
    add(clamp(std::ceil(lo)), clamp(std::floor(hi)) - 1, {}, frac);
    add(clamp(std::ceil(-hi)), clamp(std::floor(-lo)) - 1, b_.literal("-"), frac);
    if (alts.empty()) return Error{"no number Hearth can write lies in the range at " + where(path) + " (fractional bounds are rounded inwards to whole numbers)"};
    return Seq{b_.ref(b_.rule("number-range", std::move(alts)))};
  }

  GrammarBuilder b_;
  element root_;
  ThinkingRoom room_;
  std::map<std::string, uint32_t> refs_;
  std::optional<uint32_t> ws_, char_, string_, number_, int_digits_;
  std::array<std::optional<uint32_t>, kMaxValueDepth + 1> values_;
};

}  // namespace

Result<std::shared_ptr<const Grammar>> compile_json_schema(std::string_view schema, const ThinkingRoom& room) {
  if (schema.size() > kMaxSchemaBytes) return Error{"the schema is larger than " + std::to_string(kMaxSchemaBytes) + " bytes"};
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(schema.data(), schema.size()).get(root)) return Error{std::string("the schema is not valid JSON: ") + simdjson::error_message(err)};
  auto g = Compiler(root, room).compile();
  if (!g) return g.error();
  return std::make_shared<const Grammar>(std::move(g.value()));
}

std::shared_ptr<const Grammar> json_object_grammar(const ThinkingRoom& room) {
  auto make = [&] {
    simdjson::dom::parser parser;
    element root = parser.parse(std::string_view("{}")).value();
    return std::make_shared<const Grammar>(Compiler(root, room).json_object());
  };
  if (!room.close.empty()) return make();
  static const std::shared_ptr<const Grammar> g = make();
  return g;
}

}  // namespace hearth::model
