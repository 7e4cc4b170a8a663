// Structured output's grammar engine: JSON schemas compiled to grammars, and the matcher
// that masks tokens. The documents each schema must accept or refuse are written here by
// hand; the matcher's two paths (a token's bytes through the automaton, and the trie walk
// of mask()) are checked against each other on every state a generation passes.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <random>

#include "gguf/gguf.h"
#include "model/grammar_matcher.h"
#include "model/json_schema.h"
#include "testdata.h"

namespace hearth::model {
namespace {

// The stories260K vocabulary: 512 tokens, a byte token for every byte, so that any text
// can be fed one byte at a time.
struct Fixture {
  Vocab vocab;
  std::shared_ptr<const TokenTrie> trie;
  std::array<TokenId, 256> byte_token{};
  static const Fixture& get() {
    static const Fixture f;
    return f;
  }

 private:
  Fixture() : vocab(load()), trie(std::make_shared<TokenTrie>(vocab)) {
    byte_token.fill(-1);
    for (size_t t = 0; t < vocab.size(); ++t)
      if (vocab.type(static_cast<TokenId>(t)) == TokenType::Byte)
        byte_token[static_cast<uint8_t>(vocab.piece(static_cast<TokenId>(t), false)[0])] = static_cast<TokenId>(t);
  }
  static Vocab load() {
    auto f = gguf::GgufFile::open((test::testdata_dir() / "models/stories260K.gguf").string());
    HEARTH_CHECK(f.ok());
    auto v = Vocab::from_gguf(f.value());
    HEARTH_CHECK(v.ok());
    return std::move(v.value());
  }
};

GrammarMatcher matcher(const std::shared_ptr<const Grammar>& g) {
  const Fixture& f = Fixture::get();
  return GrammarMatcher(g, f.trie, {f.vocab.eos()});
}

// Whether `text`, fed byte by byte, is a complete document of the grammar.
bool accepts(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  GrammarMatcher m = matcher(g);
  for (char c : text) {
    const TokenId t = Fixture::get().byte_token[static_cast<uint8_t>(c)];
    if (t < 0 || !m.allows(t)) return false;
    m.accept(t);
  }
  return m.complete();
}

std::shared_ptr<const Grammar> schema(std::string_view s) {
  auto g = compile_json_schema(s);
  EXPECT_TRUE(g.ok()) << s << ": " << g.message();
  return g.ok() ? g.value() : nullptr;
}

struct Case {
  const char* schema;
  std::vector<const char*> good, bad;
};

TEST(JsonSchema, AcceptsWhatTheSchemaAllowsAndNothingElse) {
  const std::vector<Case> cases = {
      {R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]})",
       {R"({"name":"Ann","age":31})", "{ \"name\": \"B\\\"o\\u00e9\", \"age\": -4 }", "{\n  \"name\": \"\",\n  \"age\": 0\n}"},
       {R"({"age":31,"name":"Ann"})", R"({"name":"Ann"})", R"({"name":"Ann","age":3.5})", R"({"name":"Ann","age":031})",
        R"({"name":"Ann","age":31} )", R"( {"name":"Ann","age":31})", R"({"name":"Ann","age":31,"x":1})"}},
      {R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"number"}}})",
       {"{}", R"({"b":null})", R"({"a":true,"c":2.5})", R"({"a":false,"b":null,"c":-0.25})"},
       {R"({"b":null,"a":true})", R"({,"b":null})", R"({"a":true,})", R"({"c":1e5})"}},
      {R"({"type":"array","items":{"type":"integer","minimum":-3,"maximum":12},"minItems":1,"maxItems":3})",
       {"[0]", "[-3, 12, 7]", "[ 10 ]"},
       {"[]", "[13]", "[-4]", "[1,2,3,4]", "[1,]", "[01]"}},
      {R"({"enum":["red","green",3,null,{"k":[1]}]})", {R"("red")", "3", "null", R"({"k":[1]})"}, {R"("blue")", "4", R"({"k": [1]})"}},
      {R"({"const":"only"})", {R"("only")"}, {R"("Only")"}},
      {R"({"anyOf":[{"type":"string","maxLength":2},{"type":"integer","exclusiveMinimum":5}]})",
       {R"("ab")", R"("é")", "6", "100"}, {R"("abc")", "5", "-6"}},
      {R"({"type":"string","minLength":2,"maxLength":3})", {R"("ab")", R"("a\nb")", R"("€€€")"}, {R"("a")", R"("abcd")"}},
      {R"({"type":"string","format":"date"})", {R"("2024-01-31")", R"("1999-02-28")", R"("2023-11-30")"},
       {R"("2024-02-30")", R"("2024-13-01")", R"("2024-04-31")", R"("24-01-01")"}},
      {R"({"type":"string","format":"date-time"})", {R"("2024-01-31T23:59:59Z")", R"("2024-01-31T00:00:00.123+05:30")"},
       {R"("2024-01-31T24:00:00Z")", R"("2024-01-31 10:00:00Z")", R"("2024-01-31T10:00:00")"}},
      {R"({"type":"string","format":"uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")"}, {R"("123e4567e89b12d3a456426614174000")"}},
      {R"({"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"})", {R"("AB-123")"}, {R"("AB-12")", R"("ab-123")", R"("AB-1234")"}},
      {R"({"type":"string","pattern":"^(cat|dog)s?( \\w+)*$"})", {R"("cats")", R"("dog run fast")"}, {R"("cow")", R"("dogs  x")"}},
      {R"({"type":"string","pattern":"^a\"b\\\\c$"})", {R"("a\"b\\c")"}, {R"("a"b\c")"}},
      {R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"})",
       {R"({"v":1})", R"({"v":1,"kids":[{"v":2,"kids":[]},{"v":3}]})"}, {R"({"kids":[]})", R"({"v":1,"kids":[{}]})"}},
      {R"({"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}],"items":false})",
       {"[]", R"(["a"])", R"(["a",true])"}, {R"(["a",true,1])", "[true]"}},
      {R"({"type":"array","prefixItems":[{"type":"string"}],"minItems":2,"items":{"type":"null"}})",
       {R"(["a",null])", R"(["a",null,null])"}, {R"(["a"])", R"(["a","b"])"}},
      {R"({"type":["integer","null"]})", {"7", "null"}, {"7.5", "\"7\""}},
      {R"({"type":"number","minimum":0,"maximum":1})", {"0", "1", "0.5", "0.999"}, {"1.5", "-0.5", "2", "1.0"}},
      {R"({"type":"number","exclusiveMinimum":-2,"maximum":-1})", {"-1", "-1.5", "-1.999"}, {"-2", "-2.5", "0", "-0.5"}},
      {R"({"type":"integer","minimum":95,"maximum":1234})", {"95", "99", "100", "999", "1000", "1234"}, {"94", "1235", "2000", "-95"}},
      {R"({"type":"object","additionalProperties":{"type":"integer"}})", {"{}", R"({"x":1,"y":2})"}, {R"({"x":"1"})"}},
      {R"({"type":"object","maxProperties":2})", {"{}", R"({"x":[1],"y":{}})"}, {R"({"x":1,"y":2,"z":3})"}},
      {R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"string"}},"required":["b"]}]})",
       {R"({"a":1,"b":"x"})"}, {R"({"a":1})", R"({"b":"x"})"}},
      {R"({"title":"Anything","description":"no constraint"})", {"1", "\"x\"", R"({"a":[1,{"b":null}]})", "true"}, {"tru", "{"}},
      {R"({"type":"object","properties":{"s":{"type":"string"}},"required":["s"],"additionalProperties":false})",
       {R"({"s":"\ud7ff\u0041\/"})"}, {R"({"s":"\ud800"})", R"({"s":"tab	raw"})"}},
  };
  for (const Case& c : cases) {
    auto g = schema(c.schema);
    ASSERT_TRUE(g) << c.schema;
    for (const char* d : c.good) EXPECT_TRUE(accepts(g, d)) << c.schema << "\n  should accept: " << d;
    for (const char* d : c.bad) EXPECT_FALSE(accepts(g, d)) << c.schema << "\n  should refuse: " << d;
  }
}

TEST(JsonSchema, JsonModeIsAnyObject) {
  auto g = json_object_grammar();
  for (const char* d : {"{}", R"({"a":[1,2,{"b":"c"}],"d":null})", "{ \"x\" : -0.5 }"}) EXPECT_TRUE(accepts(g, d)) << d;
  for (const char* d : {"[]", "1", "\"s\"", "{} ", " {}", R"({"a":})"}) EXPECT_FALSE(accepts(g, d)) << d;
  // Whitespace is bounded: no model can loop on blanks.
  std::string spaces = "{\n" + std::string(20, ' ') + "}";
  EXPECT_TRUE(accepts(g, spaces));
  EXPECT_FALSE(accepts(g, "{\n" + std::string(21, ' ') + "}"));
  EXPECT_FALSE(accepts(g, "{  }"));
  // Nesting is bounded too (kMaxValueDepth levels of generic values).
  std::string deep = "{\"a\":" + std::string(kMaxValueDepth - 1, '[') + std::string(kMaxValueDepth - 1, ']') + "}";
  EXPECT_TRUE(accepts(g, deep));
  std::string deeper = "{\"a\":" + std::string(kMaxValueDepth, '[') + std::string(kMaxValueDepth, ']') + "}";
  EXPECT_FALSE(accepts(g, deeper));
}

TEST(JsonSchema, RefusesWhatItCannotGuaranteeNamingIt) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"type":"array","uniqueItems":true})", "unsupported JSON schema keyword \"uniqueItems\" at the schema's root"},
      {R"({"type":"object","properties":{"a":{"type":"number","multipleOf":3}}})", "unsupported JSON schema keyword \"multipleOf\" at /properties/a"},
      {R"({"type":"string","format":"email"})", "format \"email\" at the schema's root is not supported"},
      {R"({"type":"string","minLength":3,"maxLength":2})", "minLength 3 > maxLength 2"},
      {R"({"type":"array","minItems":3,"maxItems":1})", "minItems 3 > 1 items at most"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "no integer"},
      {R"({"type":"number","minimum":0.2,"maximum":0.8})", "fractional bounds are rounded inwards"},
      {R"({"type":"object","required":["x"],"additionalProperties":false})", "required property \"x\""},
      {R"(false)", "is false: no value is valid"},
      {R"({"$ref":"#/$defs/missing"})", "points at nothing"},
      {R"({"$ref":"https://example.com/s.json"})", "only references inside the schema"},
      {R"({"anyOf":[{"$ref":"#"}]})", "left recursion"},
      {R"({"type":"strin"})", "unknown type \"strin\""},
      {R"({"type":"string","pattern":"(a)\\1"})", "the escape \\1 is not supported"},
      {R"j({"type":"string","pattern":"(?=a)"})j", "lookarounds"},
      {R"({"type":"string","pattern":"a{5,2}"})", "counts down"},
      {R"({"enum":[1,2],"type":"string"})", "no value of \"enum\""},
      {R"({"type":"string","maxLength":1e12})", "must be a non-negative integer"},
      {R"({"type":"array","items":{"type":"string"},"maxItems":900000000})", "too large a grammar"},
      {"{\"type\":", "not valid JSON"},
      {R"({"type":"object","properties":{"a":{}},"maxProperties":1})", "\"maxProperties\" beside properties"},
  };
  for (const auto& [s, want] : cases) {
    auto g = compile_json_schema(s);
    ASSERT_FALSE(g.ok()) << s;
    EXPECT_NE(g.message().find(want), std::string::npos) << s << "\n  got: " << g.message();
  }
  // Deep nesting is refused at a fixed depth, not by running out of stack.
  std::string deep;
  for (int i = 0; i < 500; ++i) deep += R"({"type":"array","items":)";
  deep += "{}";
  for (int i = 0; i < 500; ++i) deep += "}";
  auto g = compile_json_schema(deep);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("nests deeper than 64"), std::string::npos) << g.message();
}

TEST(JsonSchema, RecursionThroughRootRefCompiles) {
  auto g = schema(R"({"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}},"required":["name"]})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, R"({"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]})"));
  EXPECT_FALSE(accepts(g, R"({"name":"a","children":[{"children":[]}]})"));
}

// A seeded random walk through the grammar: at every step the mask (trie walk) must
// allow exactly the tokens allows() allows, and the walk ends in a complete document.
TEST(GrammarMatcher, MaskAgreesWithTokenChecksAndWalksToTheEnd) {
  const Fixture& f = Fixture::get();
  const char* schemas[] = {
      R"({"type":"object","properties":{"id":{"type":"integer","minimum":1,"maximum":500},"tags":{"type":"array","items":{"enum":["a","bb","ccc"]},"maxItems":4},"when":{"type":"string","format":"date"},"ok":{"type":"boolean"}},"required":["id","tags","when","ok"]})",
      R"({"type":"array","items":{"type":"object","properties":{"k":{"type":"string","maxLength":6},"v":{"type":["number","null"]}},"required":["k","v"]},"minItems":2,"maxItems":3})",
  };
  std::mt19937 rng(7);
  for (const char* s : schemas) {
    auto g = schema(s);
    ASSERT_TRUE(g);
    for (int run = 0; run < 5; ++run) {
      GrammarMatcher m = matcher(g);
      std::string text;
      bool ended = false;
      for (int step = 0; step < 400 && !ended; ++step) {
        std::vector<float> logits(f.vocab.size(), 0.f);
        const size_t n = m.mask(logits.data());
        std::vector<TokenId> allowed;
        for (size_t t = 0; t < logits.size(); ++t) {
          const bool masked_in = !std::isinf(logits[t]);
          ASSERT_EQ(masked_in, m.allows(static_cast<TokenId>(t))) << "token " << t << " after: " << text;
          if (masked_in) allowed.push_back(static_cast<TokenId>(t));
        }
        ASSERT_EQ(n, allowed.size());
        ASSERT_FALSE(allowed.empty()) << text;
        // Prefer ending once possible, and closing brackets/quotes later on, so that walks finish.
        TokenId pick = allowed[rng() % allowed.size()];
        if (m.complete()) pick = f.vocab.eos();
        else if (step > 150)
          for (TokenId t : allowed)
            if (const std::string p = f.trie->bytes(t); p == "]" || p == "}" || p == "\"" || p == "0") pick = t;
        if (pick == f.vocab.eos()) {
          ended = true;
          break;
        }
        m.accept(pick);
        text += f.trie->bytes(pick);
      }
      ASSERT_TRUE(ended) << text;
      simdjson::dom::parser p;
      EXPECT_FALSE(p.parse(text).error()) << text;
      EXPECT_TRUE(m.finished()) << text;
    }
  }
}

}  // namespace
}  // namespace hearth::model

namespace hearth::model {
namespace {

// A thinking model gets room to reason before the document: anything up to the close tag.
TEST(JsonSchema, RoomToThinkBeforeTheDocument) {
  const char* s = R"({"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]})";
  auto inside = compile_json_schema(s, {"<think>", "</think>", true});
  ASSERT_TRUE(inside.ok()) << inside.message();
  for (const char* d : {"Let me think.</think>\n{\"ok\":true}", "</think>{\"ok\":false}", "a <</think/ </thin</think>  {\"ok\":true}",
                        "{\"ok\": maybe}</think>{\"ok\":true}"})
    EXPECT_TRUE(accepts(inside.value(), d)) << d;
  for (const char* d : {"{\"ok\":true}", "Let me think.</think>\nok", "x</think>{\"ok\":true}</think>"})
    EXPECT_FALSE(accepts(inside.value(), d)) << d;
  auto before = compile_json_schema(s, {"<think>", "</think>", false});
  ASSERT_TRUE(before.ok());
  for (const char* d : {"{\"ok\":true}", "<think>hmm</think>{\"ok\":true}"}) EXPECT_TRUE(accepts(before.value(), d)) << d;
  for (const char* d : {"hmm</think>{\"ok\":true}", "<think>{\"ok\":true}"}) EXPECT_FALSE(accepts(before.value(), d)) << d;
  auto json = json_object_grammar({"<think>", "</think>", true});
  EXPECT_TRUE(accepts(json, "x</think>{}"));
  EXPECT_FALSE(accepts(json, "{}"));
}

}  // namespace
}  // namespace hearth::model

namespace hearth::model {
namespace {

// Branches that all stay possible at once (5000 string patterns that differ only at their
// end): past kMaxStacks parses the matcher stops with an error instead of growing.
TEST(GrammarMatcher, AmbiguityExplosionIsRefusedWithinBounds) {
  std::string s = R"({"anyOf":[)";
  for (int i = 0; i < 5000; ++i) s += (i ? "," : "") + std::string(R"({"type":"string","pattern":"^[a-z]*)") + std::to_string(i) + R"($"})";
  s += "]}";
  auto g = compile_json_schema(s);
  ASSERT_TRUE(g.ok()) << g.message();
  GrammarMatcher m = matcher(g.value());
  std::vector<float> logits(Fixture::get().vocab.size());
  m.mask(logits.data());
  EXPECT_NE(m.error().find("too ambiguous"), std::string::npos) << m.error();
}

}  // namespace
}  // namespace hearth::model
