// Structured output's cost per token: the token mask of a JSON-schema grammar, computed
// from cold (a new request: every automaton state and mask met for the first time) along
// a real document's tokens, for a 32k (llama SentencePiece) and a 102k (deepseek BPE)
// vocabulary; beside it the cheap check (`allows`) that spares the mask whenever the
// sampler's own pick is valid. Figures: µs per token.
//
//   bench_grammar [google-benchmark flags]      (HEARTH_TESTDATA: the vocabularies)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "gguf/gguf.h"
#include "model/grammar_matcher.h"
#include "model/json_schema.h"

using namespace hearth;

namespace {

// The issue's benchmark schema: six typed fields and an array of objects.
constexpr const char* kSchema =
    R"({"type":"object","properties":{"title":{"type":"string","maxLength":40},"year":{"type":"integer","minimum":1900,"maximum":2030},)"
    R"("rating":{"type":"number","minimum":0,"maximum":10},"seen":{"type":"boolean"},"genre":{"enum":["drama","comedy","horror"]},)"
    R"("notes":{"type":["string","null"],"maxLength":30},"cast":{"type":"array","maxItems":3,"items":{"type":"object",)"
    R"("properties":{"actor":{"type":"string","maxLength":20},"lead":{"type":"boolean"}},"required":["actor","lead"]}}},)"
    R"("required":["title","year","rating","seen","genre","notes","cast"]})";
constexpr const char* kDocument =
    R"({"title": "The Long Night of the Lighthouse", "year": 1987, "rating": 7.25, "seen": true, "genre": "drama", )"
    R"("notes": "watched twice, liked it", "cast": [{"actor": "Ann Lee", "lead": true}, {"actor": "Bo Park", "lead": false}]})";

struct Vocabulary {
  model::Vocab vocab;
  std::shared_ptr<const model::TokenTrie> trie;
  std::vector<model::TokenId> doc;
};

const Vocabulary& vocabulary(const std::string& file) {
  static std::map<std::string, Vocabulary> cache;
  if (auto it = cache.find(file); it != cache.end()) return it->second;
  const char* env = std::getenv("HEARTH_TESTDATA");
  const std::filesystem::path dir = env && *env ? env : std::filesystem::path(HEARTH_SOURCE_DIR) / "../shared/testdata";
  auto f = gguf::GgufFile::open((dir / "vocab" / file).string());
  if (!f) {
    std::fprintf(stderr, "bench_grammar: %s\n", f.message().c_str());
    std::exit(1);
  }
  auto v = model::Vocab::from_gguf(f.value());
  if (!v) std::exit(1);
  Vocabulary out{std::move(v.value()), nullptr, {}};
  out.trie = std::make_shared<model::TokenTrie>(out.vocab);
  // The document as the longest tokens that spell it (a tokenizer's own split would start
  // SentencePiece's "▁{" with a space the schema does not allow).
  std::map<std::string, model::TokenId> by_text;
  for (size_t t = 0; t < out.vocab.size(); ++t)
    if (const std::string& b = out.trie->bytes(static_cast<model::TokenId>(t)); !b.empty()) by_text.emplace(b, static_cast<model::TokenId>(t));
  const std::string doc = kDocument;
  for (size_t i = 0; i < doc.size();) {
    size_t n = std::min<size_t>(doc.size() - i, 64);
    while (n > 0 && !by_text.count(doc.substr(i, n))) --n;
    if (n == 0) std::exit(1);
    out.doc.push_back(by_text[doc.substr(i, n)]);
    i += n;
  }
  return cache.emplace(file, std::move(out)).first->second;
}

// Time per document token (an inverted rate: google-benchmark prints it with its unit).
void per_token(benchmark::State& st, size_t tokens) {
  st.counters["per_token"] = benchmark::Counter(static_cast<double>(st.iterations() * tokens),
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_MaskFromCold(benchmark::State& st, const std::string& file) {
  const Vocabulary& v = vocabulary(file);
  auto g = model::compile_json_schema(kSchema).value();
  std::vector<float> logits(v.vocab.size());
  for (auto _ : st) {
    model::GrammarMatcher m(g, v.trie, {v.vocab.eos()});
    for (model::TokenId t : v.doc) {
      m.mask(logits.data());
      if (!m.allows(t)) {
        st.SkipWithError("the document's tokens do not fit the schema");
        return;
      }
      m.accept(t);
    }
  }
  per_token(st, v.doc.size());
  st.counters["tokens"] = static_cast<double>(v.doc.size());
  st.counters["vocab"] = static_cast<double>(v.vocab.size());
}

void BM_AllowsOnly(benchmark::State& st, const std::string& file) {
  const Vocabulary& v = vocabulary(file);
  auto g = model::compile_json_schema(kSchema).value();
  for (auto _ : st) {
    model::GrammarMatcher m(g, v.trie, {v.vocab.eos()});
    for (model::TokenId t : v.doc) {
      benchmark::DoNotOptimize(m.allows(t));
      m.accept(t);
    }
  }
  per_token(st, v.doc.size());
}

void BM_TrieBuild(benchmark::State& st, const std::string& file) {
  const Vocabulary& v = vocabulary(file);
  for (auto _ : st) benchmark::DoNotOptimize(model::TokenTrie(v.vocab));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (const char* f : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-deepseek-llm.gguf"}) {
    benchmark::RegisterBenchmark((std::string("BM_MaskFromCold/") + f).c_str(), BM_MaskFromCold, std::string(f))->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_AllowsOnly/") + f).c_str(), BM_AllowsOnly, std::string(f))->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("BM_TrieBuild/") + f).c_str(), BM_TrieBuild, std::string(f))->Unit(benchmark::kMillisecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
