// The Go template engine against Ollama's golden renderings
// (../shared/testdata/ollama-templates/testdata/<name>.gotmpl/<case>) and Go's documented
// text/template semantics.
#include <gtest/gtest.h>

#include "server/gotemplate.h"
#include "server/prompt.h"
#include "testdata.h"

namespace hearth::server {
namespace {

using tmpl::Template;
using tmpl::Value;

std::string render(const std::string& text, const Value& data = Value::of_map()) {
  auto t = Template::parse(text);
  if (!t) return "PARSE ERROR: " + t.message();
  auto r = t.value().execute(data);
  if (!r) return "EXEC ERROR: " + r.message();
  return r.value();
}

std::vector<ChatMessage> messages_of(const Value& list) {
  std::vector<ChatMessage> out;
  for (const Value& m : *list.list) out.push_back({m.field("role").s, m.field("content").s, "", {}, ""});
  return out;
}

TEST(OllamaTemplates, EveryGoldenRenderingMatchesByteForByte) {
  const auto dir = test::testdata_dir() / "ollama-templates";
  auto cases = tmpl::from_json(test::read_text(dir / "testdata" / "cases.json"));
  ASSERT_TRUE(cases.ok()) << cases.message();
  // Ollama's test strips one trailing space from these templates' output (cases.json's _comment).
  const std::set<std::string> strip = {"chatqa", "llama2-chat", "mistral-instruct", "openchat", "vicuna"};
  int checked = 0;
  for (const auto& entry : test::fs::directory_iterator(dir / "testdata")) {
    if (!entry.is_directory()) continue;
    const std::string file = entry.path().filename().string();  // <name>.gotmpl
    const std::string name = file.substr(0, file.size() - 7);
    auto t = parse_model_template(test::read_text(dir / file));
    ASSERT_TRUE(t.ok()) << file << ": " << t.message();
    for (const auto& c : test::fs::directory_iterator(entry.path())) {
      const std::string case_name = c.path().filename().string();
      const Value& msgs = cases.value().field(case_name);
      ASSERT_EQ(msgs.kind, Value::Kind::List) << case_name << " missing from cases.json";
      auto got = render_chat(t.value(), messages_of(msgs));
      ASSERT_TRUE(got.ok()) << name << "/" << case_name << ": " << got.message();
      std::string out = got.value();
      if (strip.count(name) && !out.empty() && out.back() == ' ') out.pop_back();
      EXPECT_EQ(out, test::read_text(c.path())) << name << "/" << case_name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 20 * 3);  // 20 templates × 3 conversations
}

TEST(OllamaTemplates, LegacyTemplatesRenderTurnByTurnAndStopAtTheOpenResponse) {
  auto t = parse_model_template("{{ if .System }}S:{{ .System }}\n{{ end }}U:{{ .Prompt }}\nA:{{ .Response }}\n");
  ASSERT_TRUE(t.ok());
  std::vector<ChatMessage> m = {{"system", "sys", "", {}, ""}, {"user", "hi", "", {}, ""},
                                {"assistant", "hello", "", {}, ""}, {"user", "bye", "", {}, ""}};
  auto r = render_chat(t.value(), m);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r.value(), "S:sys\nU:hi\nA:hello\nU:bye\nA:");
  // A template with neither .Messages nor .Response gets {{ .Response }} appended.
  auto bare = parse_model_template("[INST] {{ .Prompt }} [/INST]");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare.value().references("Response"));
  auto r2 = render_chat(bare.value(), {{"user", "x", "", {}, ""}, {"assistant", "partial", "", {}, ""}});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2.value(), "[INST] x [/INST]partial");
}

TEST(GoTemplate, TrimMarkersCommentsAndText) {
  EXPECT_EQ(render("a  {{- \"b\" -}}  c"), "abc");
  EXPECT_EQ(render("a {{- /* note */ -}} b"), "ab");
  EXPECT_EQ(render("a{{/* note */}}b"), "ab");
  EXPECT_EQ(render("x {{-3}}"), "x -3");  // "{{-3" is the number -3, not a trim marker
  EXPECT_EQ(render("\n{{- 1 }}\n\n{{ 2 -}}\n\t3"), "1\n\n23");
}

TEST(GoTemplate, ControlFlowVariablesAndScopes) {
  Value d = Value::of_map({{"L", Value::of_list({Value::str("a"), Value::str("b"), Value::str("c")})},
                           {"M", Value::of_map({{"y", Value::integer(2)}, {"x", Value::integer(1)}})},
                           {"E", Value::of_list()},
                           {"S", Value::str("s")}});
  EXPECT_EQ(render("{{ range $i, $e := .L }}{{ $i }}={{ $e }};{{ end }}", d), "0=a;1=b;2=c;");
  EXPECT_EQ(render("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", d), "x1y2");  // keys sorted
  EXPECT_EQ(render("{{ range .E }}x{{ else }}empty{{ end }}", d), "empty");
  EXPECT_EQ(render("{{ range .L }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}", d), "ac");
  EXPECT_EQ(render("{{ range .L }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}", d), "a");
  EXPECT_EQ(render("{{ $x := 1 }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}", d), "c");
  EXPECT_EQ(render("{{ if false }}1{{ else if .S }}2{{ else }}3{{ end }}", d), "2");
  EXPECT_EQ(render("{{ with .S }}[{{ . }}]{{ end }}{{ with .Missing }}no{{ else }}none{{ end }}", d), "[s]none");
  EXPECT_EQ(render("{{ range .L }}{{ $.S }}{{ end }}", d), "sss");
  EXPECT_EQ(render("{{ define \"t\" }}<{{ . }}>{{ end }}{{ template \"t\" .S }}{{ block \"b\" 5 }}({{ . }}){{ end }}", d),
            "<s>(5)");
}

TEST(GoTemplate, BuiltinFunctions) {
  Value d = Value::of_map({{"L", Value::of_list({Value::integer(1), Value::integer(2), Value::integer(3)})},
                           {"S", Value::str("hello")}, {"N", Value::integer(7)}, {"F", Value::number(2.5)}});
  EXPECT_EQ(render("{{ len .L }} {{ len .S }} {{ index .L 1 }} {{ slice .S 1 3 }} {{ len (slice .L 1) }}", d), "3 5 2 el 2");
  EXPECT_EQ(render("{{ and 1 0 2 }} {{ or 0 \"\" 3 }} {{ not .S }} {{ and .S .N }}", d), "0 3 false 7");
  EXPECT_EQ(render("{{ eq .N 7 }} {{ eq .S \"x\" \"hello\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge .F 2.5 }} {{ gt \"b\" \"a\" }}", d),
            "true true true true true true");
  EXPECT_EQ(render("{{ printf \"%s=%d %5.2f|%-4s|%q %v %x\" .S .N .F \"ab\" \"q\" .L 255 }}", d), "hello=7  2.50|ab  |\"q\" [1 2 3] ff");
  EXPECT_EQ(render("{{ print 1 2 \"a\" \"b\" 3 }}|{{ println \"x\" 1 }}", d), "1 2ab3|x 1\n");
  EXPECT_EQ(render("{{ .S | printf \"%s!\" | len }}", d), "6");
  EXPECT_EQ(render("{{ json .L }} {{ json \"<a&b>\" }} {{ 1.5 }} {{ 1e6 }} {{ 0.0001 }} {{ 3.0 }}", d),
            "[1,2,3] \"\\u003ca\\u0026b\\u003e\" 1.5 1e+06 0.0001 3");
  EXPECT_EQ(render("{{ html \"<a href='x'>\" }} {{ urlquery \"a b&c\" }}", d), "&lt;a href=&#39;x&#39;&gt; a+b%26c");
  EXPECT_EQ(render("{{ .Missing }}|{{ .Missing.Deeper }}", d), "<no value>|<no value>");
  EXPECT_EQ(render("{{ printf \"%d\" \"x\" }}", d), "%!d(string=x)");
  EXPECT_EQ(render("{{ len currentDate }}", d), "10");
}

TEST(GoTemplate, ParseAndExecutionErrorsNameTheLine) {
  auto bad = [](const std::string& text) {
    auto t = Template::parse(text);
    return t.ok() ? std::string("parsed") : t.message();
  };
  EXPECT_EQ(bad("{{ .Foo "), "template: :1: unclosed action");
  EXPECT_EQ(bad("a\n{{ if .X }}"), "template: :2: unexpected EOF");
  EXPECT_EQ(bad("{{ end }}"), "template: :1: unexpected {{end}}");
  EXPECT_EQ(bad("{{ nosuch 1 }}"), "template: :1: function \"nosuch\" not defined");
  EXPECT_EQ(bad("\n\n{{ $x }}"), "template: :3: undefined variable \"$x\"");
  EXPECT_EQ(bad("{{ break }}"), "template: :1: {{break}} outside {{range}}");
  EXPECT_EQ(bad("{{ range .L }}{{ else }}{{ else }}{{ end }}"), "template: :1: expected end; found {{else}}");
  EXPECT_EQ(bad("{{ \"abc }}"), "template: :1: unterminated quoted string");
  EXPECT_EQ(bad("{{ ( 1 }}"), "template: :1: unclosed left paren");
  EXPECT_EQ(bad("{{ }}"), "template: :1: missing value for command");
  EXPECT_EQ(render("{{ index .L 5 }}", Value::of_map({{"L", Value::of_list()}})),
            "EXEC ERROR: template: :1: executing \"\": error calling index: index out of range: 5");
  EXPECT_EQ(render("{{ .S.Field }}", Value::of_map({{"S", Value::str("x")}})),
            "EXEC ERROR: template: :1: executing \"\": can't evaluate field Field in type string");
  EXPECT_EQ(render("{{ template \"nope\" }}"), "EXEC ERROR: template: :1: executing \"\": no such template \"nope\"");
}

TEST(GoTemplate, RecursionIsBoundedNotACrash) {
  EXPECT_EQ(render("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}"),
            "EXEC ERROR: template: :1: executing \"\": exceeded maximum template depth (1000)");
}

// Responses carry whatever bytes a model emits; JSON text stays valid UTF-8 as Go's
// encoding/json makes it (found by the serving benchmark: a random-weights model's byte
// tokens broke clients' JSON parsers).
TEST(GoJson, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(tmpl::json_quote("a\xff" "b"), "\"a\\ufffdb\"");
  EXPECT_EQ(tmpl::json_quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(tmpl::json_quote("\xc0\x80"), "\"\\ufffd\\ufffd\"");                // overlong
  EXPECT_EQ(tmpl::json_quote("x\xe2\x82"), "\"x\\ufffd\\ufffd\"");              // cut short
  EXPECT_EQ(tmpl::json_quote("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // past U+10FFFF
  EXPECT_EQ(tmpl::json_quote("\xe2\x80\xa8|\xe2\x80\xa9"), "\"\\u2028|\\u2029\"");
  EXPECT_EQ(tmpl::json_quote("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");  // é € 😀 as they are
}

// Found by probing the server: templates nested thousands of levels deep overflowed the
// stack. Nesting, execution depth, steps and output are bounded, each with Go's wording.
TEST(GoTemplate, DeepNestingIsAParseErrorNotACrash) {
  auto repeat = [](const std::string& s, int n) {
    std::string o;
    for (int i = 0; i < n; ++i) o += s;
    return o;
  };
  const std::string too_deep = "template: :1: max expression depth exceeded (200 levels)";
  for (int n : {201, 5000, 40000}) {
    EXPECT_EQ(render("{{" + repeat("(", n) + "1" + repeat(")", n) + "}}"), "PARSE ERROR: " + too_deep) << n;
    EXPECT_EQ(render(repeat("{{if 1}}", n) + "x" + repeat("{{end}}", n)), "PARSE ERROR: " + too_deep) << n;
    EXPECT_EQ(render(repeat("{{range .L}}", n)), "PARSE ERROR: " + too_deep) << n;
    EXPECT_EQ(render(repeat("{{with 1}}{{else with 2}}", n)), "PARSE ERROR: " + too_deep) << n;
  }
  // The 100,000 nested ifs: over the source size limit, refused before lexing.
  EXPECT_EQ(render(repeat("{{if 1}}", 100000) + repeat("{{end}}", 100000)),
            "PARSE ERROR: template: the template is 1500000 bytes, over the limit of 1 MiB");
  // 200 levels are allowed and run.
  EXPECT_EQ(render("{{" + repeat("(", 199) + "1" + repeat(")", 199) + "}}"), "1");
  EXPECT_EQ(render(repeat("{{if 1}}", 200) + "x" + repeat("{{end}}", 200)), "x");
}

TEST(GoTemplate, ExecutionIsBoundedInDepthStepsAndOutput) {
  // Recursion through nested control structures counts every level.
  EXPECT_EQ(render("{{ define \"r\" }}{{ if 1 }}{{ with 2 }}{{ template \"r\" }}{{ end }}{{ end }}{{ end }}{{ template \"r\" }}"),
            "EXEC ERROR: template: :1: executing \"\": exceeded maximum template depth (1000)");
  EXPECT_EQ(render("{{ range 1000000000 }}{{ end }}"),
            "EXEC ERROR: template: :1: executing \"\": exceeded maximum template steps (4000000)");
  // Each level calls the next twice: 2^40 copies of a 1 KiB text.
  std::string t = "{{ define \"t0\" }}" + std::string(1024, 'x') + "{{ end }}";
  for (int i = 1; i <= 40; ++i)
    t += "{{ define \"t" + std::to_string(i) + "\" }}{{ template \"t" + std::to_string(i - 1) + "\" }}{{ template \"t" +
         std::to_string(i - 1) + "\" }}{{ end }}";
  t += "{{ template \"t40\" }}";
  EXPECT_EQ(render(t), "EXEC ERROR: template: :1: executing \"\": output exceeds 32 MiB");
  // Go's fmt treats a width or precision past 1e6 as a runaway number.
  EXPECT_EQ(render("{{ printf \"%999999999999d|\" 1 }}"), "%!(NOVERB)%!(EXTRA int=1)");
  EXPECT_EQ(render("{{ printf \"%.99999999999s|\" \"a\" }}"), "%!(NOVERB)%!(EXTRA string=a)");
  EXPECT_EQ(render("{{ printf \"%5d|\" 1 }}"), "    1|");
}

}  // namespace
}  // namespace hearth::server
