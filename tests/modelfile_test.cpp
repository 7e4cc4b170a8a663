// Modelfiles: the real ones in ../shared/testdata parse; Ollama's grammar and messages.
#include <gtest/gtest.h>

#include "server/modelfile.h"
#include "testdata.h"

namespace hearth::server {
namespace {

std::string err(std::string_view text) {
  auto m = parse_modelfile(text);
  return m.ok() ? "ok" : m.message();
}

TEST(Modelfile, EveryRealModelfileParses) {
  const auto dir = test::testdata_dir() / "ollama-templates" / "modelfiles";
  int n = 0;
  for (const auto& e : test::fs::directory_iterator(dir)) {
    if (e.path().extension() != ".Modelfile") continue;
    const std::string text = test::read_text(e.path());
    auto m = parse_modelfile(text);
    ASSERT_TRUE(m.ok()) << e.path() << ": " << m.message();
    ASSERT_FALSE(m.value().commands.empty());
    EXPECT_EQ(m.value().commands[0].name, "from") << e.path();
    // Every PARAMETER line of the file is a typed option.
    std::vector<std::pair<std::string, std::string>> params;
    for (const auto& c : m.value().commands)
      if (c.parameter) params.emplace_back(c.name, c.args);
    EXPECT_TRUE(format_params(params).ok()) << e.path();
    ++n;
  }
  EXPECT_EQ(n, 9);
}

TEST(Modelfile, ValuesQuotesAndParameters) {
  const auto dir = test::testdata_dir() / "ollama-templates" / "modelfiles";
  auto mario = parse_modelfile(test::read_text(dir / "mario.Modelfile"));
  ASSERT_TRUE(mario.ok());
  const auto& c = mario.value().commands;
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].args, "llama3.2");
  EXPECT_TRUE(c[1].parameter);
  EXPECT_EQ(c[1].name, "temperature");
  EXPECT_EQ(c[1].args, "1");
  EXPECT_EQ(c[2].name, "system");
  EXPECT_EQ(c[2].args, "\nYou are Mario from super mario bros, acting as an assistant.\n");

  // The SYSTEM prompt of dockerit holds Dockerfile lines ("FROM nginx:alpine") that are text.
  auto docker = parse_modelfile(test::read_text(dir / "dockerit.Modelfile"));
  ASSERT_TRUE(docker.ok());
  ASSERT_EQ(docker.value().commands.size(), 2u);
  EXPECT_NE(docker.value().commands[1].args.find("FROM postgres:latest\nENV POSTGRES_PASSWORD=abc123"), std::string::npos);

  auto random = parse_modelfile(test::read_text(test::testdata_dir() / "random" / "llama-2-tiny-random.Modelfile"));
  ASSERT_TRUE(random.ok());
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& x : random.value().commands)
    if (x.parameter) params.emplace_back(x.name, x.args);
  auto typed = format_params(params);
  ASSERT_TRUE(typed.ok());
  EXPECT_EQ(tmpl::to_json(typed.value()), R"({"seed":42,"stop":["foo","bar"],"top_p":0.9})");

  auto m = parse_modelfile("# comment\nfrom  ./model.gguf  \nTemplate \"{{ .Prompt }}\"\nMESSAGE user \"\"\"Hi\nthere\"\"\"\n"
                           "message Assistant hello\nLICENSE \"\"\"MIT\"\"\"\nLICENSE Apache\n");
  ASSERT_TRUE(m.ok()) << m.message();
  const auto& k = m.value().commands;
  ASSERT_EQ(k.size(), 6u);
  EXPECT_EQ(k[0].args, "./model.gguf");
  EXPECT_EQ(k[1].name, "template");
  EXPECT_EQ(k[1].args, "{{ .Prompt }}");
  EXPECT_EQ(k[2].role, "user");
  EXPECT_EQ(k[2].args, "Hi\nthere");
  EXPECT_EQ(k[3].role, "assistant");
  EXPECT_EQ(k[3].args, "hello");
  EXPECT_EQ(k[5].line, 8);
  // A UTF-16LE file with a byte-order mark.
  const std::string utf16("\xFF\xFE" "F\0R\0O\0M\0 \0x\0", 14);
  auto u = parse_modelfile(utf16);
  ASSERT_TRUE(u.ok()) << u.message();
  EXPECT_EQ(u.value().commands[0].args, "x");
}

TEST(Modelfile, ErrorsNameTheLineAndTheProblem) {
  EXPECT_EQ(err("FROM x\nPARAMTER top_k 1\n"),
            "(line 2): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", "
            "\"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"");
  EXPECT_EQ(err("SYSTEM hi\n"), "no FROM line");
  EXPECT_EQ(err("FROM x\nSYSTEM \"\"\"never closed\n"), "unexpected EOF");
  EXPECT_EQ(err("FROM x\nMESSAGE tool hi\n"), "(line 2): message role must be one of \"system\", \"user\", or \"assistant\"");
  EXPECT_EQ(err("FROM x\nSYSTEM\n"), "(line 2): missing value for system");
  auto p = [](std::string k, std::string v) {
    auto r = format_params({{k, v}});
    return r.ok() ? tmpl::to_json(r.value()) : r.message();
  };
  EXPECT_EQ(p("top_q", "1"), "unknown parameter 'top_q'");
  EXPECT_EQ(p("temperature", "warm"), "invalid float value [warm]");
  EXPECT_EQ(p("num_ctx", "2.5"), "invalid int value [2.5]");
  EXPECT_EQ(p("use_mmap", "yes"), "invalid bool value [yes]");
  EXPECT_EQ(p("use_mmap", "T"), "{\"use_mmap\":true}");
  EXPECT_EQ(p("mirostat", "2"), "{}");  // deprecated: skipped
}

}  // namespace
}  // namespace hearth::server
