// Every GGUF under the shared test data: the valid ones parse and dump exactly the
// JSON that llama.cpp's gguf tools produced (reference/gguf/); the invalid ones are
// rejected with a message naming the problem.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "gguf/dump.h"
#include "gguf/gguf.h"
#include "testdata.h"

namespace hearth::gguf {
namespace {

using test::fs::path;

// Files llama.cpp rejects, and what our message must say.
const std::map<std::string, std::string> kInvalid = {
    {"invalid/example-FUGG-magic.gguf", "magic is 'FUGG'"},
    {"invalid/test_writer-type13-OBJ.gguf", "key 'dict1' has invalid value type 13"},
    {"invalid/dbrx-duplicate-key/ggml-vocab-dbrx.gguf", "duplicate key 'general.file_type'"},
    {"models/legacy/tinyllamas-stories-260k-f32.v1.gguf", "unsupported version 1"},
};

TEST(GgufReader, EveryTestdataFileParsesOrIsRejectedByName) {
  path root = test::testdata_dir();
  auto files = test::gguf_files_under(root);
  ASSERT_GE(files.size(), 28u) << "expected the 28 GGUF files of shared/testdata";
  int valid = 0;
  for (const std::string& rel : files) {
    auto f = GgufFile::open((root / rel).string());
    auto bad = kInvalid.find(rel);
    if (bad != kInvalid.end()) {
      ASSERT_FALSE(f.ok()) << rel << " should be rejected";
      EXPECT_NE(f.message().find(bad->second), std::string::npos) << rel << ": " << f.message();
      EXPECT_NE(f.message().find(rel), std::string::npos) << "message should name the file: " << f.message();
      continue;
    }
    ASSERT_TRUE(f.ok()) << rel << ": " << f.message();
    ++valid;
  }
  EXPECT_EQ(valid, static_cast<int>(files.size() - kInvalid.size()));
}

TEST(GgufReader, JsonDumpEqualsLlamaCppReferenceText) {
  path root = test::testdata_dir();
  path ref = test::reference_dir() / "gguf";
  int compared = 0;
  for (const std::string& rel : test::gguf_files_under(root)) {
    if (kInvalid.count(rel)) continue;
    auto f = GgufFile::open((root / rel).string());
    ASSERT_TRUE(f.ok()) << f.message();
    std::ostringstream out;
    write_json(f.value(), out);
    path want = ref / (rel + ".json");
    ASSERT_TRUE(test::fs::exists(want)) << want;
    std::string expected = test::read_text(want);
    std::string got = out.str();
    if (got != expected) {
      size_t i = 0;
      while (i < got.size() && i < expected.size() && got[i] == expected[i]) ++i;
      FAIL() << rel << ": JSON differs from " << want << " at byte " << i << "\n  ours: "
             << got.substr(i > 60 ? i - 60 : 0, 160) << "\n  ref:  " << expected.substr(i > 60 ? i - 60 : 0, 160);
    }
    ++compared;
  }
  EXPECT_EQ(compared, 24);
}

// The reference folder's own GGUF files (quantizer goldens, synthetic models) parse and
// every tensor's data lies inside the file.
TEST(GgufReader, ReferenceModelsParse) {
  path ref = test::reference_dir();
  auto files = test::gguf_files_under(ref);
  ASSERT_GE(files.size(), 20u);
  for (const std::string& rel : files) {
    auto f = GgufFile::open((ref / rel).string());
    ASSERT_TRUE(f.ok()) << rel << ": " << f.message();
    for (const TensorInfo& t : f.value().tensors) {
      auto d = f.value().tensor_data(t);
      EXPECT_EQ(d.size(), t.n_bytes);
      EXPECT_LE(f.value().data_offset + t.offset + t.n_bytes, f.value().file_size);
    }
  }
}

TEST(GgufReader, TypedGettersAndTensorData) {
  auto f = GgufFile::open((test::testdata_dir() / "models/stories260K.gguf").string());
  ASSERT_TRUE(f.ok()) << f.message();
  const GgufFile& g = f.value();
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.data_offset, 14176u);
  EXPECT_EQ(g.tensors.size(), 48u);
  EXPECT_EQ(g.metadata.get<uint32_t>("llama.block_count").value(), 5u);
  EXPECT_EQ(g.metadata.get_uint("llama.block_count").value(), 5u);
  EXPECT_EQ(g.metadata.get_string("general.architecture").value(), "llama");
  EXPECT_FLOAT_EQ(g.metadata.get<float>("llama.attention.layer_norm_rms_epsilon").value(), 1e-5f);

  auto wrong = g.metadata.get<int32_t>("llama.block_count");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.message(), "key 'llama.block_count' has type uint32, expected int32");
  auto missing = g.metadata.get<uint32_t>("llama.nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), "key 'llama.nope' not found");

  auto toks = g.metadata.get_array("tokenizer.ggml.tokens", ValueType::STRING);
  ASSERT_TRUE(toks.ok()) << toks.message();
  EXPECT_EQ(toks.value()->count, 512u);
  EXPECT_EQ(toks.value()->strings[1], "<s>");
  auto scores = g.metadata.get_array("tokenizer.ggml.tokens", ValueType::F32);
  EXPECT_FALSE(scores.ok());
  auto sc = g.metadata.get_array("tokenizer.ggml.scores", ValueType::F32);
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(sc.value()->at<float>(0), 0.0f);

  const TensorInfo* t = g.find_tensor("blk.4.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne[0], 172u);
  EXPECT_EQ(t->ne[1], 64u);
  EXPECT_EQ(t->n_bytes, 172u * 64 * 4);
  // The span points into the file at data_offset + offset: compare with a plain read.
  auto raw = test::read_bytes(test::testdata_dir() / "models/stories260K.gguf");
  auto d = g.tensor_data(*t);
  ASSERT_EQ(d.size(), t->n_bytes);
  EXPECT_EQ(0, std::memcmp(d.data(), raw.data() + g.data_offset + t->offset, d.size()));
  EXPECT_EQ(g.find_tensor("no.such.tensor"), nullptr);
}

TEST(GgufReader, OpenErrorsNameThePath) {
  auto f = GgufFile::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("/nonexistent/dir/model.gguf"), std::string::npos);
  EXPECT_NE(f.message().find("No such file"), std::string::npos);
  auto d = GgufFile::open(test::testdata_dir().string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.message().find("not a regular file"), std::string::npos);
}

TEST(GgufDump, PythonFloatRepr) {
  EXPECT_EQ(py_float_repr(10000.0), "10000.0");
  EXPECT_EQ(py_float_repr(1e-05), "1e-05");
  EXPECT_EQ(py_float_repr(0.0001), "0.0001");
  EXPECT_EQ(py_float_repr(1e16), "1e+16");
  EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float_repr(1.5e16), "1.5e+16");
  EXPECT_EQ(py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(py_float_repr(0.0), "0.0");
  EXPECT_EQ(py_float_repr(double(1e-5f)), "9.999999747378752e-06");
  EXPECT_EQ(py_float_repr(123.456), "123.456");
  EXPECT_EQ(py_float_repr(1e300), "1e+300");
}

TEST(GgufDump, JsonStringsAsPythonWritesThem) {
  EXPECT_EQ(json_quote("a\"b\\c\n\t\x01"), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
  EXPECT_EQ(json_quote("\xe2\x96\x81t"), "\"\xe2\x96\x81t\"");
  EXPECT_EQ(json_quote("\xff"), "{\"invalid_utf8_hex\":\"ff\"}");
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));  // a UTF-16 surrogate
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));      // overlong
  EXPECT_TRUE(valid_utf8("\xf0\x9f\x98\x80"));
}

}  // namespace
}  // namespace hearth::gguf
