// The client verbs of `hearth` (create, list, show, cp, rm, ps) against a real server on
// loopback, as a user runs them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>

#include "server/store.h"
#include "server_fixture.h"
#include "testdata.h"

namespace hearth::server {
namespace {

struct Outcome {
  int status;
  std::string out, err;
};

class ClientVerbs : public Server {
 protected:
  Outcome hearth(const std::string& args) {
    auto out = work_.path() / "out", err = work_.path() / "err";
    const std::string cmd = "OLLAMA_HOST=127.0.0.1:" + std::to_string(port_) + " '" + HEARTH_BIN + "' " + args + " >'" +
                            out.string() + "' 2>'" + err.string() + "' </dev/null";
    const int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc)) << cmd;
    return {WEXITSTATUS(rc), test::read_text(out), test::read_text(err)};
  }
  test::TempDir work_;
};

TEST_F(ClientVerbs, CreateListShowCopyRemove) {
  // A Modelfile beside a copy of the model, FROM a relative path.
  test::fs::copy_file(test::testdata_dir() / "models/stories260K.gguf", work_.path() / "stories260K.gguf");
  std::ofstream(work_.path() / "Modelfile") << "# a story model\nFROM ./stories260K.gguf\nPARAMETER temperature 0.7\n"
                                               "PARAMETER stop \"User:\"\nSYSTEM \"\"\"You tell stories.\"\"\"\n"
                                               "TEMPLATE {{ .System }} {{ .Prompt }}\nLICENSE MIT\nMESSAGE user hi\n";
  const std::string mf = "-f '" + (work_.path() / "Modelfile").string() + "'";
  Outcome c = hearth("create story " + mf);
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.err.find("copying file 270cba1bd510 100%"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("parsing GGUF\n"), std::string::npos) << c.err;
  EXPECT_EQ(c.err.substr(c.err.size() - 8), "success\n") << c.err;
  // A second create finds the blob already there (HEAD) and uploads nothing.
  Outcome again = hearth("create story-b " + mf);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.err.find("copying file"), std::string::npos) << again.err;

  Outcome l = hearth("list");
  ASSERT_EQ(l.status, 0) << l.err;
  EXPECT_EQ(l.out.rfind("NAME", 0), 0u) << l.out;
  EXPECT_NE(l.out.find("story:latest"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("story-b:latest"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("1.2 MB"), std::string::npos) << l.out;

  Outcome s = hearth("show story");
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_NE(s.out.find("architecture         llama"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("parameters           293K"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("temperature                    0.7"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("You tell stories."), std::string::npos) << s.out;
  Outcome t = hearth("show story --template");
  EXPECT_EQ(t.out, "{{ .System }} {{ .Prompt }}\n");
  Outcome p = hearth("show story --parameters");
  EXPECT_EQ(p.out, "stop                           \"User:\"\ntemperature                    0.7\n");
  Outcome m = hearth("show story --modelfile");
  EXPECT_NE(m.out.find("FROM " + (dir_.path() / "blobs").string()), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("PARAMETER stop \"User:\"\n"), std::string::npos) << m.out;

  Outcome cp = hearth("cp story story-c");
  ASSERT_EQ(cp.status, 0) << cp.err;
  EXPECT_EQ(cp.out, "copied 'story' to 'story-c'\n");
  Outcome rm = hearth("rm story-c story-b");
  ASSERT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(rm.out, "deleted 'story-c'\ndeleted 'story-b'\n");
  Outcome ps = hearth("ps");
  EXPECT_EQ(ps.status, 0);
  EXPECT_EQ(ps.out.rfind("NAME", 0), 0u);
  Store store(dir_.path());
  EXPECT_EQ(store.list().size(), 1u);
}

// `hearth run NAME`: the model from the store, its template rendering the prompt with its
// system prompt, its parameters as defaults (command-line options win): the same text as
// running the GGUF file on the rendered prompt with those options.
TEST_F(ClientVerbs, RunANameFromTheStore) {
  test::fs::copy_file(test::testdata_dir() / "models/stories260K.gguf", work_.path() / "stories260K.gguf");
  std::ofstream(work_.path() / "Modelfile") << "FROM ./stories260K.gguf\nPARAMETER temperature 0\nPARAMETER num_predict 12\n"
                                               "PARAMETER stop \"Lily\"\nSYSTEM Once upon a time\nTEMPLATE {{ .System }} {{ .Prompt }}\n";
  Outcome c = hearth("create story -f '" + (work_.path() / "Modelfile").string() + "'");
  ASSERT_EQ(c.status, 0) << c.err;
  const std::string store = "OLLAMA_MODELS='" + dir_.path().string() + "' ";
  auto run = [&](const std::string& args) {
    auto out = work_.path() / "out", err = work_.path() / "err";
    const std::string cmd = store + "'" + HEARTH_BIN + "' run " + args + " --json >'" + out.string() + "' 2>'" + err.string() + "' </dev/null";
    const int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc)) << cmd;
    return Outcome{WEXITSTATUS(rc), test::read_text(out), test::read_text(err)};
  };
  Outcome named = run("story 'there was'");
  ASSERT_EQ(named.status, 0) << named.err;
  Outcome file = run("'" + (work_.path() / "stories260K.gguf").string() + "' 'Once upon a time there was' --temp 0 -n 12 --stop Lily");
  ASSERT_EQ(file.status, 0) << file.err;
  EXPECT_EQ(named.out, file.out);
  EXPECT_NE(named.out.find("\"text\": \" "), std::string::npos) << named.out;  // something was generated
  EXPECT_EQ(named.out.find("Lily"), std::string::npos) << named.out;            // and cut at the model's stop
  // A command-line option beats the model's parameter: no stop string, 12 tokens.
  Outcome longer = run("story 'there was' --stop Sue");
  ASSERT_EQ(longer.status, 0) << longer.err;
  EXPECT_NE(longer.out.find("Lily"), std::string::npos) << longer.out;
  Outcome missing = run("nosuch 'hi'");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("hearth run: model 'nosuch:latest' not found in " + dir_.path().string()), std::string::npos) << missing.err;
}

TEST_F(ClientVerbs, ErrorsAreNamedAndExitNonZero) {
  Outcome none = hearth("show nosuch");
  EXPECT_EQ(none.status, 1);
  EXPECT_EQ(none.err, "Error: model 'nosuch:latest' not found\n");
  std::ofstream(work_.path() / "Modelfile") << "FROM ./missing.gguf\nPARAMTER x 1\n";
  Outcome bad = hearth("create x -f '" + (work_.path() / "Modelfile").string() + "'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("Error: (line 2): command must be one of"), std::string::npos) << bad.err;
  std::ofstream(work_.path() / "Modelfile2") << "FROM nosuch-model\n";
  Outcome missing = hearth("create x -f '" + (work_.path() / "Modelfile2").string() + "'");
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.err, "Error: model 'nosuch-model' not found\n");
  std::ofstream(work_.path() / "Modelfile3") << "FROM x\nPARAMETER temperature hot\n";
  Outcome param = hearth("create x -f '" + (work_.path() / "Modelfile3").string() + "'");
  EXPECT_EQ(param.err, "Error: invalid float value [hot]\n");
  Outcome nofile = hearth("create x -f /nonexistent/Modelfile");
  EXPECT_EQ(nofile.err, "Error: cannot read the Modelfile '/nonexistent/Modelfile'\n");
}

TEST(ClientVerbsOffline, NoServerIsAClearError) {
  test::TempDir work;
  auto err = work.path() / "err";
  // Port 9 (discard) is closed on loopback.
  const std::string cmd = std::string("OLLAMA_HOST=127.0.0.1:9 '") + HEARTH_BIN + "' list 2>'" + err.string() + "' >/dev/null";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 1);
  EXPECT_NE(test::read_text(err).find("Error: could not connect to a running Hearth/Ollama server at 127.0.0.1:9"),
            std::string::npos)
      << test::read_text(err);
}

}  // namespace
}  // namespace hearth::server
