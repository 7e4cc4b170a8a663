// llama-quantize's newer options against the files today's llama-quantize writes with them
// (tests/data/quantize/README.md: the commands, and the SHA-256 of each output).
#include <gtest/gtest.h>

#include "quant/model_quantizer.h"
#include "quant/quantize_options.h"
#include "server/store.h"
#include "testdata.h"

namespace hearth::quant {
namespace {

using test::fs::path;

struct OptionCase {
  const char* name;
  const char* source;                 // under HEARTH_REFERENCE or HEARTH_TESTDATA (see `in`)
  const char* type;
  std::vector<std::string> args;      // as on llama-quantize's command line
  const char* imatrix;                // in the source's directory, recorded as typed; or null
  const char* sha256;                 // of llama-quantize's output
};

path source_path(const char* s) {
  const std::string v(s);
  return v.rfind("testdata/", 0) == 0 ? test::testdata_dir() / v.substr(9) : test::reference_dir() / v;
}

// The options of `args` (the parsers the CLI uses).
QuantizeOptions options_of(const std::vector<std::string>& args, std::vector<std::string>& include,
                           std::vector<std::string>& exclude) {
  QuantizeOptions o;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string &flag = args[i], &v = args[i + 1];
    if (flag == "--tensor-type") o.tensor_types.push_back(parse_tensor_type_rule(v).value());
    else if (flag == "--override-kv") o.kv_overrides.push_back(parse_kv_override(v).value());
    else if (flag == "--prune-layers") o.prune_layers = parse_layer_list(v).value();
    else if (flag == "--include-weights") include.push_back(v);
    else if (flag == "--exclude-weights") exclude.push_back(v);
    else ADD_FAILURE() << "unknown flag " << flag;
  }
  return o;
}

TEST(QuantizeOptions, SameBytesAsTodaysLlamaQuantize) {
  const char* synth = "quant/synth-q-256/synth-q-256.f32.gguf";
  const std::vector<OptionCase> cases = {
      {"tensor types", synth, "Q4_K_M", {"--tensor-type", "attn_v=q8_0", "--tensor-type", "blk\\.1\\.ffn_down=q5_k"}, nullptr,
       "5d685feb18c43853cf63ec7545b2d298a815cf8224eb1e38269f11069053f3a7"},
      {"prune the first layer", synth, "Q4_K_M", {"--prune-layers", "0"}, nullptr,
       "3aae5de405679ec2e1b8ee6c1179cb7381586e578b6efe14052299163919f02e"},
      {"override kv", synth, "Q8_0",
       {"--override-kv", "general.name=str:pruned", "--override-kv", "llama.context_length=int:-128", "--override-kv",
        "test.flag=bool:true", "--override-kv", "test.scale=float:0.5"},
       nullptr, "07f3846c7dd366ea4b61ba83be4bef25619f739532223c18a83bf34aada58467"},
      {"exclude weights", synth, "Q4_K_M", {"--exclude-weights", "ffn_down"}, "synth-q-256.imatrix.dat",
       "8934d598cc3a9dde58a169e5f5d8ffd9399d3b5c8410c70153203f7c74797acc"},
      {"include weights", synth, "Q4_K_M", {"--include-weights", "attn_", "--include-weights", "blk.1.ffn"},
       "synth-q-256.imatrix.dat", "7cf158884a6156687f976bd83731654a50bcd410d0c0b7ef646bbd0943888c35"},
      {"imatrix, prune and a rule", synth, "Q3_K_M", {"--prune-layers", "1", "--tensor-type", "ffn_up=q6_k"},
       "synth-q-256.imatrix.dat", "9e5216590d28d787850d91dbe8fc41d5b608deebe7bd22e228a11b42b1640da3"},
      {"prune two middle layers", "testdata/models/stories260K.gguf", "Q8_0", {"--prune-layers", "3,1"}, nullptr,
       "c4d64255ab10dd9b70f889afe8fda3b95d2e9d9147c3b8c9ea440dc1f5434551"},
      {"q2_K and q3_K fall back to q4_0", "testdata/models/TinyStories-656K.f16.gguf", "Q2_K", {}, nullptr,
       "c4a36a03300c72ff6aa4e2346992ecb6604309c8f3be2d1030c3c798db3d549b"},
      {"Q3_K_M fallbacks", "testdata/models/TinyStories-656K.f16.gguf", "Q3_K_M", {}, nullptr,
       "ad6742fcc57dcce27990d222057c7d44ba0c8124b2db3b0d15d0ea689041649e"},
  };
  for (const OptionCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> include, exclude;
    QuantizeOptions opt = options_of(c.args, include, exclude);
    opt.ftype = parse_file_type(c.type)->ftype;
    opt.threads = 2;
    const path src = source_path(c.source);
    Imatrix im;
    if (c.imatrix) {
      auto m = load_imatrix((src.parent_path() / c.imatrix).string());
      ASSERT_TRUE(m.ok()) << m.message();
      im = std::move(m.value());
      filter_imatrix(im, include, exclude);
      if (!im.values.empty()) opt.imatrix = &im;
      opt.imatrix_path = c.imatrix;
    }
    test::TempDir tmp;
    const path out = tmp.path() / "out.gguf";
    auto r = quantize_model(src.string(), out.string(), opt);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(server::sha256_hex(test::read_text(out)), c.sha256);
  }
}

TEST(QuantizeOptions, PruningRenumbersAndCountsLayers) {
  auto in = InputModel::open((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(in.ok());
  QuantizeOptions opt;
  opt.ftype = FileType::F16;
  opt.prune_layers = {1, 3};
  auto plan = plan_quantization(in.value(), opt);
  ASSERT_TRUE(plan.ok()) << plan.message();
  std::vector<std::string> down;
  for (const TensorPlan& p : plan.value())
    if (p.name.find("ffn_down") != std::string::npos) down.push_back(p.name + "<-" + p.info->name);
  EXPECT_EQ(down, (std::vector<std::string>{"blk.0.ffn_down.weight<-blk.0.ffn_down.weight",
                                            "blk.1.ffn_down.weight<-blk.2.ffn_down.weight",
                                            "blk.2.ffn_down.weight<-blk.4.ffn_down.weight"}));
  const gguf::Metadata md = output_metadata(in.value().metadata(), opt, 3);
  EXPECT_EQ(md.get_uint("llama.block_count").value(), 3u);
  EXPECT_EQ(md.entries().back().key, "llama.block_count");  // set last, as llama-quantize
}

TEST(QuantizeOptions, BadArgumentsAreNamed) {
  auto msg = [](auto r) { return r.ok() ? std::string("(accepted)") : r.message(); };
  EXPECT_EQ(msg(parse_tensor_type_rule("attn_v")), "malformed tensor type 'attn_v' (want NAME=TYPE)");
  EXPECT_EQ(msg(parse_tensor_type_rule("=q4_0")), "missing tensor name in '=q4_0'");
  EXPECT_EQ(msg(parse_tensor_type_rule("attn_v=")), "missing quantization type in 'attn_v='");
  EXPECT_EQ(msg(parse_tensor_type_rule("attn_v=q9_9")), "invalid quantization type 'q9_9' in 'attn_v=q9_9'");
  EXPECT_EQ(msg(parse_tensor_type_rule("(attn=q4_0")).rfind("invalid tensor name pattern '(attn': ", 0), 0u);
  EXPECT_EQ(parse_tensor_type_rule("ATTN_V=Q8_0").value().pattern, "attn_v");
  EXPECT_EQ(msg(parse_kv_override("general.name")),
            "malformed KV override 'general.name' (want KEY=TYPE:VALUE, a key of 1-127 characters)");
  EXPECT_EQ(msg(parse_kv_override("a=int:x")), "invalid int value 'x' in KV override 'a=int:x'");
  EXPECT_EQ(msg(parse_kv_override("a=bool:yes")), "invalid boolean value for KV override 'a=bool:yes'");
  EXPECT_EQ(msg(parse_kv_override("a=list:1")), "invalid type for KV override 'a=list:1' (int, float, bool or str)");
  EXPECT_EQ(msg(parse_kv_override("a=str:" + std::string(128, 'x'))),
            "malformed KV override 'a': the value cannot exceed 127 characters");
  EXPECT_EQ(msg(parse_layer_list("1,x")), "invalid layer id 'x'");
  EXPECT_EQ(msg(parse_layer_list("-1")), "invalid layer id '-1'");
  EXPECT_EQ(parse_layer_list("3,1,3").value(), (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace hearth::quant
