// The `hearth` binary itself: exit statuses, stdout and stderr.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <cmath>
#include <cstring>

#include "gguf/gguf.h"
#include "testdata.h"

namespace hearth {
namespace {

struct CliRun {
  int status;
  std::string out, err;
};

CliRun run_hearth(const std::string& args) {
  test::TempDir tmp;
  auto out = tmp.path() / "out", err = tmp.path() / "err";
  std::string cmd = std::string("'") + HEARTH_BIN + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "' </dev/null";
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc)) << cmd << " did not exit normally";
  return {WEXITSTATUS(rc), test::read_text(out), test::read_text(err)};
}

std::string data(const char* rel) {
  std::string s = "'";  // appended piecewise: gcc 12 warns falsely on "'" + std::string&&
  s += (test::testdata_dir() / rel).string();
  s += "'";
  return s;
}

TEST(Cli, UsageWithoutArguments) {
  CliRun r = run_hearth("");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("usage: hearth"), std::string::npos);
  CliRun g = run_hearth("gguf");
  EXPECT_EQ(g.status, 0);
  EXPECT_NE(g.out.find("usage: hearth gguf info FILE"), std::string::npos);
  CliRun bad = run_hearth("frobnicate");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("unknown command 'frobnicate'"), std::string::npos);
}

TEST(Cli, GgufInfoJsonMatchesReference) {
  CliRun r = run_hearth("gguf info --json " + data("models/stories260K.gguf"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, test::read_text(test::reference_dir() / "gguf/models/stories260K.gguf.json"));
  EXPECT_EQ(r.err, "");
}

TEST(Cli, GgufInfoText) {
  CliRun r = run_hearth("gguf info " + data("models/TinyStories-656K-Q8_0.gguf"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("version:     3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokenizer.ggml.tokens"), std::string::npos);
  EXPECT_NE(r.out.find("string[2048]"), std::string::npos);
  EXPECT_NE(r.out.find("... 2042 more]"), std::string::npos);  // long arrays are summarised
  EXPECT_NE(r.out.find("q8_0 x15"), std::string::npos);
  EXPECT_EQ(r.out.find("blk.1.ffn_up.weight"), std::string::npos);  // no table without --tensors
  CliRun t = run_hearth("gguf info --tensors " + data("models/TinyStories-656K-Q8_0.gguf"));
  ASSERT_EQ(t.status, 0);
  EXPECT_NE(t.out.find("blk.1.ffn_up.weight"), std::string::npos);
  EXPECT_NE(t.out.find("[128, 384]"), std::string::npos);
}

TEST(Cli, GgufInfoErrorsGoToStderrWithNonZeroStatus) {
  CliRun v1 = run_hearth("gguf info " + data("models/legacy/tinyllamas-stories-260k-f32.v1.gguf"));
  EXPECT_EQ(v1.status, 1);
  EXPECT_EQ(v1.out, "");
  EXPECT_NE(v1.err.find("unsupported version 1"), std::string::npos) << v1.err;
  CliRun missing = run_hearth("gguf info /no/such/file.gguf");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("cannot open '/no/such/file.gguf'"), std::string::npos) << missing.err;
  CliRun noarg = run_hearth("gguf info");
  EXPECT_EQ(noarg.status, 2);
  EXPECT_NE(noarg.err.find("missing FILE"), std::string::npos);
  CliRun opt = run_hearth("gguf info --bogus x");
  EXPECT_EQ(opt.status, 2);
  EXPECT_NE(opt.err.find("unknown option '--bogus'"), std::string::npos);
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(Cli, QuantizeHelpAndErrors) {
  CliRun help = run_hearth("quantize --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("Q4_K_M"), std::string::npos);
  EXPECT_NE(help.out.find("4.50 bpw"), std::string::npos);  // q4_0 and q4_K blocks
  CliRun bad = run_hearth("quantize a.gguf b.gguf Q9_Z");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("unknown type 'Q9_Z'"), std::string::npos) << bad.err;
  CliRun missing = run_hearth("quantize /no/such.gguf /tmp/x.gguf Q4_0");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("cannot open '/no/such.gguf'"), std::string::npos) << missing.err;
  CliRun im = run_hearth("quantize a.gguf b.gguf Q4_0 --imatrix /no/such.dat");
  EXPECT_EQ(im.status, 1);
  EXPECT_NE(im.err.find("/no/such.dat"), std::string::npos) << im.err;
}

TEST(Cli, QuantizeWritesLlamaCppIdenticalFile) {
  test::TempDir tmp;
  auto src = test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf";
  auto out = tmp.path() / "q.gguf";
  CliRun r = run_hearth("quantize '" + src.string() + "' '" + out.string() + "' q5_k_m 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("21/21"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bits per weight"), std::string::npos) << r.err;
  EXPECT_TRUE(test::read_bytes(out) == test::read_bytes(test::reference_dir() / "quant/synth-q-256/synth-q-256.Q5_K_M.gguf"));
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(Cli, QuantizeWithoutOutWritesGgmlModelTypeBesideInput) {
  test::TempDir tmp;
  auto src = tmp.path() / "m.gguf";
  test::fs::copy_file(test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf", src);
  CliRun r = run_hearth("quantize '" + src.string() + "' q8_0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(test::read_bytes(tmp.path() / "ggml-model-Q8_0.gguf") ==
              test::read_bytes(test::reference_dir() / "quant/synth-q-256/synth-q-256.Q8_0.gguf"));
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(Cli, RunTokenizeEval) {
  CliRun r = run_hearth("run " + data("models/stories260K.gguf") + " 'Once upon a time' -n 10 --temp 0 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "{\"tokens\": [432,383,286,261,376,298,315,421,395,317], \"text\": \", there was a little girl named Lily\"}\n");
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
  EXPECT_EQ(r.err.rfind("load: ", 0), 0u) << r.err;  // the load time comes first
  CliRun f16 = run_hearth("run " + data("models/stories260K.gguf") + " 'Once upon a time' -n 10 --temp 0 --json --kv-type f16");
  ASSERT_EQ(f16.status, 0) << f16.err;
  EXPECT_EQ(f16.out.rfind("{\"tokens\": [", 0), 0u) << f16.out;
  CliRun badkv = run_hearth("run " + data("models/stories260K.gguf") + " hi --kv-type q4");
  EXPECT_EQ(badkv.status, 2);
  EXPECT_NE(badkv.err.find("--kv-type must be f16, f32 or q8_0, not 'q4'"), std::string::npos) << badkv.err;
  CliRun q8kv = run_hearth("run " + data("models/stories260K.gguf") + " hi --kv-type q8_0");
  EXPECT_EQ(q8kv.status, 1);
  EXPECT_NE(q8kv.err.find("stories260K.gguf: a q8_0 KV cache needs a head size that is a multiple of 32; this model's is 8"),
            std::string::npos)
      << q8kv.err;
  // A prompt longer than the context: cut (and said so on stderr) with shift on, refused without.
  const std::string long_prompt = " 'Once upon a time there was a little girl named Lily. She loved to play outside in the sun.' -c 16 -n 3";
  CliRun cut = run_hearth("run " + data("models/stories260K.gguf") + long_prompt);
  ASSERT_EQ(cut.status, 0) << cut.err;
  EXPECT_NE(cut.err.find("prompt: 16 tokens"), std::string::npos) << cut.err;
  EXPECT_NE(cut.err.find("the prompt was truncated to the context: 14 of its 30 tokens dropped after the first 4 kept"), std::string::npos)
      << cut.err;
  CliRun noshift = run_hearth("run " + data("models/stories260K.gguf") + long_prompt + " --no-shift");
  EXPECT_EQ(noshift.status, 1);
  EXPECT_NE(noshift.err.find("the prompt has 30 tokens, more than the context's 16 free positions (and context shift is off)"),
            std::string::npos)
      << noshift.err;
  CliRun t = run_hearth("tokenize " + data("models/stories260K.gguf") + " --json 'Once upon a time'");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_EQ(t.out, "[1,403,407,261,378]\n");
  {
    // --file: the same text from a file; from standard input, NUL bytes and 256 KiB included.
    test::TempDir ft;
    const auto small = ft.path() / "t.txt", big = ft.path() / "big.txt", out = ft.path() / "out";
    std::ofstream(small, std::ios::binary) << "Once upon a time";
    CliRun tf = run_hearth("tokenize " + data("models/stories260K.gguf") + " --json --file '" + small.string() + "'");
    ASSERT_EQ(tf.status, 0) << tf.err;
    EXPECT_EQ(tf.out, "[1,403,407,261,378]\n");
    std::ofstream(big, std::ios::binary) << "Once upon a time" << '\0' << std::string(256 << 10, 'a');
    const std::string cmd = std::string("'") + HEARTH_BIN + "' tokenize " + data("models/stories260K.gguf") + " --json --file - <'" +
                            big.string() + "' >'" + out.string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const std::string ids = test::read_text(out);
    EXPECT_EQ(ids.rfind("[1,403,407,261,378,", 0), 0u) << ids.substr(0, 80);
    EXPECT_GT(std::count(ids.begin(), ids.end(), ','), 1000);
    CliRun missing = run_hearth("tokenize " + data("models/stories260K.gguf") + " --file /nonexistent/t.txt");
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("hearth tokenize: cannot read '/nonexistent/t.txt': No such file or directory"), std::string::npos) << missing.err;
  }
  test::TempDir tmp;
  auto bin = tmp.path() / "l.bin";
  CliRun e = run_hearth("eval " + data("models/stories260K.gguf") + " --prompt 'Once upon a time' --kv-type f32 --logits '" + bin.string() + "'");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_EQ(e.out, "[1,403,407,261,378]\n");
  auto got = test::read_bytes(bin);
  auto want = test::read_bytes(test::reference_dir() / "logits/stories260K/p1-short.logits.bin");
  ASSERT_EQ(got.size(), want.size());
  float max_diff = 0;
  for (size_t i = 0; i < got.size(); i += 4) {
    float a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    max_diff = std::max(max_diff, std::fabs(a - b));
  }
  EXPECT_LT(max_diff, 2e-4f);
  CliRun bad = run_hearth("run " + data("vocab/ggml-vocab-gpt-2.gguf") + " hi");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("architecture 'gpt2' is not supported"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(Cli, SynthAndBenchModel) {
  test::TempDir tmp;
  auto out = tmp.path() / "tiny.gguf";
  CliRun s = run_hearth("synth --vocab " + data("models/stories260K.gguf") + " --shape tiny --type Q8_0 '" + out.string() + "'");
  ASSERT_EQ(s.status, 0) << s.err;
  auto f = gguf::GgufFile::open(out.string());
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f.value().metadata.get<uint32_t>("llama.block_count").value(), 2u);
  EXPECT_EQ(f.value().metadata.get<uint32_t>("general.file_type").value(), 7u);  // Q8_0
  EXPECT_EQ(f.value().find_tensor("blk.0.ffn_up.weight")->type, gguf::GgmlType::Q8_0);
  EXPECT_EQ(std::distance(test::fs::directory_iterator(tmp.path()), test::fs::directory_iterator()), 1);  // temp removed
  CliRun b = run_hearth("bench model '" + out.string() + "' -p 16 -n 8 -r 2 --json");
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.out.find("\"pp\": {\"n\": 16, \"tps_mean\": "), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("\"tg\": {\"n\": 8, \"parallel\": 1, \"tps_mean\": "), std::string::npos) << b.out;
  {
    // The cost of a token, from the file's own tensor table: every 2-D matrix but the
    // embeddings (the output matrix is token_embd itself when tied) read once, 2 ops per weight.
    double bytes = 0, ops = 0;
    const bool tied = f.value().find_tensor("output.weight") == nullptr;
    for (const gguf::TensorInfo& t : f.value().tensors)
      if (t.n_dims == 2 && (t.name != "token_embd.weight" || tied)) {
        bytes += static_cast<double>(t.n_bytes);
        ops += 2.0 * static_cast<double>(t.n_elements);
      }
    simdjson::dom::parser parser;
    simdjson::dom::element j = parser.parse(b.out);
    EXPECT_EQ(j["weight_bytes_per_token"].get_double().value(), bytes);
    EXPECT_EQ(j["ops_per_token"].get_double().value(), ops);
    const double tg = j["tg"]["tps_mean"].get_double().value();
    EXPECT_NEAR(j["tg"]["gbps"].get_double().value(), tg * bytes / 1e9, 0.01 + 1e-4 * tg * bytes / 1e9);
  }
  CliRun m = run_hearth("bench machine --threads 1 --json");
  ASSERT_EQ(m.status, 0) << m.err;
  {
    simdjson::dom::parser parser;
    simdjson::dom::element j = parser.parse(m.out);
    EXPECT_EQ(j.at(0)["threads"].get_int64().value(), 1);
    for (const char* k : {"read_gbps", "fp32_gflops", "int8_gops"}) EXPECT_GT(j.at(0)[k].get_double().value(), 0.0) << k;
  }
  CliRun mbad = run_hearth("bench machine --threads 0");
  EXPECT_EQ(mbad.status, 2);
  EXPECT_NE(mbad.err.find("hearth bench machine: '0' is not a thread count"), std::string::npos) << mbad.err;
  CliRun kbad = run_hearth("bench kernels --threads 2,x --quick");
  EXPECT_EQ(kbad.status, 2);
  EXPECT_NE(kbad.err.find("hearth bench kernels: 'x' is not a thread count"), std::string::npos) << kbad.err;
  CliRun b16 = run_hearth("bench model '" + out.string() + "' -p 4 -n 4 -r 1 --kv-type f16 --json");
  ASSERT_EQ(b16.status, 0) << b16.err;
  EXPECT_NE(b16.out.find("\"tg\": {\"n\": 4, \"parallel\": 1, \"tps_mean\": "), std::string::npos) << b16.out;
  CliRun bp = run_hearth("bench model '" + out.string() + "' -p 0 -n 4 -r 1 --parallel 3");
  ASSERT_EQ(bp.status, 0) << bp.err;
  EXPECT_NE(bp.out.find("| tg4 ×3 sequences | "), std::string::npos) << bp.out;
  CliRun bp0 = run_hearth("bench model '" + out.string() + "' --parallel 0");
  EXPECT_EQ(bp0.status, 2);
  EXPECT_NE(bp0.err.find("hearth bench model: --parallel must be 1 to 256, not 0"), std::string::npos) << bp0.err;
  CliRun bkv = run_hearth("bench model '" + out.string() + "' --kv-type bf16");
  EXPECT_EQ(bkv.status, 2);
  EXPECT_NE(bkv.err.find("hearth bench model: --kv-type must be f16, f32 or q8_0, not 'bf16'"), std::string::npos) << bkv.err;
  CliRun bad = run_hearth("synth --vocab " + data("models/stories260K.gguf") + " --shape 13b x.gguf");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("unknown shape '13b'"), std::string::npos);
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

// hearth imatrix end to end: the perplexity per chunk on stdout, a file the quantizer reads,
// periodic saves, combining files without a model, and errors with their exit statuses.
TEST(Cli, ImatrixComputesSavesAndCombines) {
  test::TempDir tmp;
  const std::string out = (tmp.path() / "im.gguf").string();
  CliRun r = run_hearth("imatrix " + data("models/stories260K.gguf") + " -f " + data("text/tinystories_sample.txt") +
                 " -c 128 --chunks 4 -t 2 --output-frequency 2 --save-frequency 3 -o '" + out + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[1]4.09", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(",[4]5.7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Final estimate: PPL = "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("chunk 4/4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("saved 35 entries after 4 chunks to " + out), std::string::npos) << r.err;
  EXPECT_TRUE(test::fs::exists(out + ".at_3"));
  auto f = gguf::GgufFile::open(out);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f.value().metadata.get_uint("imatrix.chunk_count").value(), 4u);

  // Combining: the file with itself as a legacy .dat; 8 chunks.
  const std::string both = (tmp.path() / "both.dat").string();
  CliRun c = run_hearth("imatrix --in-file '" + out + "' --in-file '" + out + "' -c 128 --output-format dat -o '" + both + "'");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.err.find("saved 35 entries after 8 chunks"), std::string::npos) << c.err;
  CliRun q = run_hearth("quantize --imatrix '" + both + "' " + data("models/stories260K.gguf") + " '" +
                        (tmp.path() / "q.gguf").string() + "' q4_k_m 2");
  EXPECT_EQ(q.status, 0) << q.err;

  CliRun none = run_hearth("imatrix -o x.gguf");
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("give a text (-f)"), std::string::npos) << none.err;
  CliRun missing = run_hearth("imatrix " + data("models/stories260K.gguf") + " -f /no/such.txt -c 128 -o '" + out + "'");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("/no/such.txt"), std::string::npos) << missing.err;
  CliRun fmt = run_hearth("imatrix --in-file '" + out + "' --output-format xml -o '" + out + "'");
  EXPECT_EQ(fmt.status, 2);
  EXPECT_NE(fmt.err.find("--output-format must be gguf or dat, not 'xml'"), std::string::npos) << fmt.err;
  CliRun bad_in = run_hearth("imatrix --in-file " + data("models/stories260K.gguf") + " -o '" + out + "'");
  EXPECT_EQ(bad_in.status, 1);
  EXPECT_NE(bad_in.err.find("no importance matrix entries"), std::string::npos) << bad_in.err;
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(Cli, QuantizeDryRunAndOptionErrors) {
  const std::string src = "'" + (test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf").string() + "'";
  test::TempDir tmp;
  const std::string out = "'" + (tmp.path() / "never.gguf").string() + "'";
  CliRun dry = run_hearth("quantize --dry-run --tensor-type attn_v=q8_0 " + src + " " + out + " Q4_K_M");
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("blk.1.attn_v.weight                  f32   -> q8_0"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("(--tensor-type)"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("blk.1.ffn_down.weight                f32   -> q6_K"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("dry run: 21 tensors, 7.00 MiB -> "), std::string::npos) << dry.out;
  EXPECT_FALSE(test::fs::exists(tmp.path() / "never.gguf"));
  CliRun both = run_hearth("quantize --include-weights a --exclude-weights b " + src + " " + out + " Q4_K_M");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("cannot be used together"), std::string::npos) << both.err;
  CliRun rule = run_hearth("quantize --tensor-type attn_v " + src + " " + out + " Q4_K_M");
  EXPECT_EQ(rule.status, 2);
  EXPECT_NE(rule.err.find("--tensor-type: malformed tensor type 'attn_v'"), std::string::npos) << rule.err;
  CliRun kv = run_hearth("quantize --override-kv x=int:y " + src + " " + out + " Q4_K_M");
  EXPECT_EQ(kv.status, 2);
  EXPECT_NE(kv.err.find("invalid int value 'y'"), std::string::npos) << kv.err;
  CliRun file = run_hearth("quantize --tensor-type-file /no/such.txt " + src + " " + out + " Q4_K_M");
  EXPECT_EQ(file.status, 1);
  EXPECT_NE(file.err.find("cannot open '/no/such.txt'"), std::string::npos) << file.err;
}

}  // namespace
}  // namespace hearth
