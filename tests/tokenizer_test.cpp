// Tokenizers against llama.cpp's own tokenization (../shared/reference/tokenize): for
// every vocabulary (SentencePiece, byte-level BPE with each pre-tokenizer, WordPiece),
// the 46 texts of the vocab suites and the 20 tricky strings, with and without BOS and
// special-token parsing, and every token's piece; and the .inp/.out suites.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <sstream>

#include "model/vocab.h"
#include "testdata.h"

namespace hearth::model {
namespace {

using test::fs::path;

std::vector<TokenId> ids_of(simdjson::dom::element e) {
  std::vector<TokenId> v;
  for (auto x : e.get_array()) v.push_back(static_cast<TokenId>(int64_t(x)));
  return v;
}

std::string hex(const std::string& s) {
  static const char* k = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += k[c >> 4];
    h += k[c & 15];
  }
  return h;
}

// Checks one reference file; returns the number of cases compared.
int check_reference(const path& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(json.string());
  std::string_view vocab_rel = doc["vocab"];
  auto f = gguf::GgufFile::open((test::reference_dir().parent_path() / vocab_rel).string());
  EXPECT_TRUE(f.ok()) << f.message();
  if (!f.ok()) return 0;
  auto v = Vocab::from_gguf(f.value());
  EXPECT_TRUE(v.ok()) << v.message();
  if (!v.ok()) return 0;
  int n = 0;
  for (simdjson::dom::object c : doc["cases"].get_array()) {
    std::string_view text = c["text"];
    struct Variant { const char* key; bool add_special, parse_special; };
    for (Variant var : {Variant{"nobos", false, true}, Variant{"bos", true, true}, Variant{"raw", false, false}}) {
      auto got = v.value().tokenize(text, var.add_special, var.parse_special);
      simdjson::dom::element want;
      if (c[var.key].get(want) == simdjson::SUCCESS) {
        EXPECT_TRUE(got.ok()) << json.filename() << " " << var.key << " '" << text << "': " << got.message();
        if (got.ok()) {
          EXPECT_EQ(got.value(), ids_of(want)) << json.filename() << " " << var.key << " '" << text << "'";
        }
      } else {
        // llama.cpp threw (a character outside a vocabulary without byte tokens): we fail cleanly.
        EXPECT_FALSE(got.ok()) << json.filename() << " " << var.key << " '" << text << "' should be an error";
      }
    }
    simdjson::dom::element pieces, nobos;
    if (c["pieces_nobos"].get(pieces) == simdjson::SUCCESS && c["nobos"].get(nobos) == simdjson::SUCCESS) {
      size_t k = 0;
      const std::vector<TokenId> ids = ids_of(nobos);
      for (simdjson::dom::element p : pieces.get_array()) {
        const std::string mine = v.value().piece(ids[k++], true);
        std::string_view s;
        if (p.get(s) == simdjson::SUCCESS) {
          EXPECT_EQ(mine, s) << json.filename() << " piece of " << ids[k - 1];
        } else {
          EXPECT_EQ(hex(mine), std::string_view(p["hex"])) << json.filename() << " piece of " << ids[k - 1];
        }
      }
    }
    ++n;
  }
  return n;
}

TEST(Tokenizer, SentencePieceVocabulariesMatchLlamaCpp) {
  int files = 0, cases = 0;
  for (const char* name : {"stories260K", "TinyStories-656K", "llama-2-tiny-random", "ggml-vocab-llama-spm",
                           "ggml-vocab-phi-3", "ggml-vocab-baichuan"}) {
    for (const char* dir : {"tokenize/inp/", "tokenize/tricky/"}) {
      path p = test::reference_dir() / (std::string(dir) + name + ".json");
      if (!test::fs::exists(p)) continue;  // tricky strings exist for some vocabularies only
      SCOPED_TRACE(p.string());
      cases += check_reference(p);
      ++files;
    }
  }
  EXPECT_EQ(files, 9);
  EXPECT_GE(cases, 6 * 46 + 3 * 20);
}

TEST(Tokenizer, ByteLevelBpeVocabulariesMatchLlamaCpp) {
  int files = 0, cases = 0;
  for (const char* name : {"ggml-vocab-gpt-2", "ggml-vocab-mpt", "ggml-vocab-starcoder", "ggml-vocab-refact",
                           "synth-gpt2-2048-qwen2pre", "ggml-vocab-deepseek-coder", "ggml-vocab-deepseek-llm",
                           "ggml-vocab-falcon", "ggml-vocab-gpt-neox"}) {
    for (const char* dir : {"tokenize/inp/", "tokenize/tricky/"}) {
      path p = test::reference_dir() / (std::string(dir) + name + ".json");
      if (!test::fs::exists(p)) continue;
      SCOPED_TRACE(p.string());
      cases += check_reference(p);
      ++files;
    }
  }
  EXPECT_EQ(files, 13);
  EXPECT_GE(cases, 9 * 46 + 4 * 20);
}

TEST(Tokenizer, WordPieceVocabularyMatchesLlamaCpp) {
  int files = 0, cases = 0;
  for (const char* dir : {"tokenize/inp/", "tokenize/tricky/"}) {
    path p = test::reference_dir() / (std::string(dir) + "ggml-vocab-bert-bge.json");
    SCOPED_TRACE(p.string());
    ASSERT_TRUE(test::fs::exists(p));
    cases += check_reference(p);
    ++files;
  }
  EXPECT_EQ(files, 2);
  EXPECT_GE(cases, 46 + 20);
}

// The .inp/.out suites of llama.cpp's test-tokenizer-0 (raw: no BOS, no special
// parsing), for every vocabulary in testdata/vocab that has one.
TEST(Tokenizer, EveryVocabSuite) {
  int suites = 0;
  for (const auto& entry : test::fs::directory_iterator(test::testdata_dir() / "vocab")) {
    const path out_path = entry.path();
    if (out_path.extension() != ".out") continue;
    const std::string gguf_path = out_path.parent_path() / out_path.stem();  // x.gguf.out -> x.gguf
    SCOPED_TRACE(gguf_path);
    auto f = gguf::GgufFile::open(gguf_path);
    ASSERT_TRUE(f.ok()) << f.message();
    auto v = Vocab::from_gguf(f.value());
    ASSERT_TRUE(v.ok()) << v.message();
    std::string inp = test::read_text(gguf_path + ".inp"), out = test::read_text(out_path.string());
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (size_t pos = 0;;) {
      size_t q = inp.find(sep, pos);
      if (q == std::string::npos) break;
      texts.push_back(inp.substr(pos, q - pos));
      pos = q + sep.size();
    }
    std::vector<std::vector<TokenId>> expected;
    std::stringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      std::vector<TokenId> ids;
      std::stringstream ls(line);
      for (TokenId id; ls >> id;) ids.push_back(id);
      expected.push_back(ids);
    }
    ASSERT_EQ(texts.size(), 46u);
    ASSERT_EQ(expected.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      auto got = v.value().tokenize(texts[i], false, false);
      ASSERT_TRUE(got.ok()) << got.message();
      EXPECT_EQ(got.value(), expected[i]) << "text " << i << ": '" << texts[i] << "'";
    }
    ++suites;
  }
  // bert-bge, deepseek-coder, deepseek-llm, falcon, gpt-2, llama-spm, mpt, phi-3, refact, starcoder
  EXPECT_EQ(suites, 10);
}

}  // namespace
}  // namespace hearth::model
