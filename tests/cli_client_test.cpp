// The client verbs of `hearth` (create, list, show, cp, rm, ps) against a real server on
// loopback, as a user runs them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>

#include "registry_fixture.h"
#include "server/store.h"
#include "server/transfer.h"
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
// `hearth run NAME` is a client of the server, as `ollama run`: the model's template,
// system prompt and parameters apply; the answer equals running the file on the rendered
// prompt with the same options.
TEST_F(ClientVerbs, RunANameThroughTheServer) {
  test::fs::copy_file(test::testdata_dir() / "models/stories260K.gguf", work_.path() / "stories260K.gguf");
  std::ofstream(work_.path() / "Modelfile") << "FROM ./stories260K.gguf\nPARAMETER temperature 0\nPARAMETER num_predict 12\n"
                                               "PARAMETER stop \"Lily\"\nSYSTEM Once upon a time\nTEMPLATE {{ .System }} {{ .Prompt }}\n";
  Outcome c = hearth("create story -f '" + (work_.path() / "Modelfile").string() + "'");
  ASSERT_EQ(c.status, 0) << c.err;
  Outcome named = hearth("run story 'there was'");
  ASSERT_EQ(named.status, 0) << named.err;
  Outcome file = hearth("run '" + (work_.path() / "stories260K.gguf").string() + "' 'Once upon a time there was' --temp 0 -n 12 --stop Lily");
  ASSERT_EQ(file.status, 0) << file.err;
  EXPECT_EQ(named.out, file.out);
  EXPECT_GT(named.out.size(), 3u);                                 // something was generated
  EXPECT_EQ(named.out.find("Lily"), std::string::npos) << named.out;  // and cut at the model's stop
  // Piped stdin comes before the words of PROMPT; --verbose prints Ollama's timing lines.
  auto piped = work_.path() / "piped";
  const std::string cmd = "printf 'Once upon a time' | OLLAMA_HOST=127.0.0.1:" + std::to_string(port_) + " '" + HEARTH_BIN +
                          "' run story --verbose >'" + piped.string() + "' 2>'" + piped.string() + ".err'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string timings = test::read_text(piped.string() + ".err");
  for (const char* line : {"total duration:", "load duration:", "prompt eval count:", "prompt eval rate:", "eval count:", "eval rate:"})
    EXPECT_NE(timings.find(line), std::string::npos) << line << " in " << timings;
  EXPECT_GT(test::read_text(piped).size(), 3u);
  Outcome ps = hearth("ps");
  EXPECT_NE(ps.out.find("story:latest"), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("CONTEXT"), std::string::npos) << ps.out;
  Outcome stop = hearth("stop story");
  EXPECT_EQ(stop.status, 0) << stop.err;
  EXPECT_EQ(hearth("ps").out.find("story:latest"), std::string::npos);
  Outcome missing = hearth("run nosuch 'hi'");
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.err, "Error: model 'nosuch' not found\n");
  Outcome version = hearth("--version");
  EXPECT_EQ(version.out, std::string("hearth version is ") + kOllamaApiVersion + "\n");
}

// Without PROMPT on a terminal: an interactive chat (run under script(1) for a pty).
TEST_F(ClientVerbs, InteractiveChatOnATerminal) {
  test::fs::copy_file(test::testdata_dir() / "models/stories260K.gguf", work_.path() / "stories260K.gguf");
  std::ofstream(work_.path() / "Modelfile") << "FROM ./stories260K.gguf\nPARAMETER temperature 0\nPARAMETER num_predict 8\n";
  ASSERT_EQ(hearth("create story -f '" + (work_.path() / "Modelfile").string() + "'").status, 0);
  auto out = work_.path() / "tty";
  std::ofstream(work_.path() / "input") << "/?\nOnce upon a time\n/set parameter num_predict 3\n\"\"\"The little\ndog\"\"\"\n/show info\n/clear\n/nonsense\n/bye\n";
  const std::string cmd = "OLLAMA_HOST=127.0.0.1:" + std::to_string(port_) + " script -qec \"'" + std::string(HEARTH_BIN) +
                          "' run story\" /dev/null <'" + (work_.path() / "input").string() + "' >'" + out.string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string tty = test::read_text(out);
  EXPECT_NE(tty.find(">>> "), std::string::npos) << tty;
  EXPECT_NE(tty.find("Available Commands:"), std::string::npos) << tty;
  EXPECT_NE(tty.find("Set parameter 'num_predict' to '3'"), std::string::npos) << tty;
  EXPECT_NE(tty.find("architecture        llama"), std::string::npos) << tty;
  EXPECT_NE(tty.find("Cleared session context"), std::string::npos) << tty;
  EXPECT_NE(tty.find("Unknown command '/nonsense'"), std::string::npos) << tty;
  EXPECT_NE(tty.find("... "), std::string::npos) << tty;  // the multi-line prompt
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

TEST_F(ClientVerbs, PushAndPullThroughARegistry) {
  test::RegistryProcess reg(work_.path() / "registry");
  ASSERT_TRUE(reg.start());
  std::ofstream(work_.path() / "Modelfile") << "FROM " << (test::testdata_dir() / "models/stories260K.gguf").string() << "\n";
  ASSERT_EQ(hearth("create story -f '" + (work_.path() / "Modelfile").string() + "'").status, 0);
  const std::string remote = reg.host() + "/test/story";
  ASSERT_EQ(hearth("cp story " + remote).status, 0);

  Outcome push = hearth("push " + remote + " --insecure");
  ASSERT_EQ(push.status, 0) << push.err;
  EXPECT_EQ(push.err.rfind("retrieving manifest\n", 0), 0u) << push.err;
  EXPECT_NE(push.err.find("pushing 270cba1bd510 100% [#########################] 1.2 MB/1.2 MB\n"), std::string::npos) << push.err;
  EXPECT_NE(push.err.find("pushing manifest\nsuccess\n"), std::string::npos) << push.err;

  ASSERT_EQ(hearth("rm story " + remote).status, 0);
  Outcome pull = hearth("pull " + remote + " --insecure");
  ASSERT_EQ(pull.status, 0) << pull.err;
  EXPECT_EQ(pull.err.rfind("pulling manifest\n", 0), 0u) << pull.err;
  EXPECT_NE(pull.err.find("pulling 270cba1bd510 100% [#########################] 1.2 MB/1.2 MB\n"), std::string::npos) << pull.err;
  EXPECT_NE(pull.err.find("verifying sha256 digest\nwriting manifest\nsuccess\n"), std::string::npos) << pull.err;
  EXPECT_NE(hearth("list").out.find(remote + ":latest"), std::string::npos);

  Outcome tls = hearth("pull " + remote);  // a plain-HTTP registry without --insecure
  EXPECT_EQ(tls.status, 1);
  EXPECT_NE(tls.err.find("Error: pull model manifest: GET https://" + reg.host()), std::string::npos) << tls.err;
  EXPECT_NE(tls.err.find("the TLS handshake failed (a plain-HTTP registry needs insecure)"), std::string::npos) << tls.err;
  Outcome usage = hearth("push");
  EXPECT_EQ(usage.status, 1);
  EXPECT_NE(usage.err.find("usage: hearth push NAME [--insecure]"), std::string::npos) << usage.err;
}

// A server told to stop (SIGTERM) while a pull runs ends it promptly — also one with
// "stream": false, which has no stream whose end would tell — nothing is published, the
// partial download stays for later.
TEST_F(ClientVerbs, ShutdownEndsARunningPull) {
  test::RegistryProcess reg(work_.path() / "registry");
  ASSERT_TRUE(reg.start());
  Store src(work_.path() / "src");
  const ModelName name = ModelName::parse(reg.host() + "/test/slow:latest");
  const std::string model = test::random_bytes(size_t{16} << 20, 23);
  test::put_model(src, name, model);
  ASSERT_TRUE(push_model(src, name, true, registry::Options{}, [](const std::string&) {}, nullptr));

  ::setenv("HEARTH_REGISTRY_MAX_RATE", std::to_string(4 << 20).c_str(), 1);  // 4 s for the model
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    c.Post("/api/pull", {}, R"({"model":")" + name.full() + R"(","insecure":true,"stream":false})", "application/json");
  });
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  srv_->stop();
  thread_.join();
  client.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::unsetenv("HEARTH_REGISTRY_MAX_RATE");
  EXPECT_LT(secs, 3.0) << "the pull held the shutdown";
  Store store(dir_.path());
  EXPECT_FALSE(store.find(name));
  EXPECT_FALSE(store.has_blob("sha256:" + sha256_hex(model)));
  EXPECT_TRUE(test::fs::exists(dir_.path() / "partial" / ("sha256-" + sha256_hex(model))));
}

}  // namespace
}  // namespace hearth::server
