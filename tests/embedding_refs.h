// llama-embedding's reference vectors (tests/data/embeddings; its README gives the commands
// and the llama.cpp commit), the inputs they were made from, and the cosine they are
// compared by.
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "server/gotemplate.h"
#include "testdata.h"

namespace hearth::test {

// cos(a, b) in double, whatever the element types.
template <class A, class B>
double cosine(const std::vector<A>& a, const std::vector<B>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

inline fs::path embeddings_dir() { return fs::path(HEARTH_SOURCE_DIR) / "tests/data/embeddings"; }

inline std::vector<std::string> embedding_inputs() {
  std::ifstream in(embeddings_dir() / "inputs.txt");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// One reference file: a JSON array of vectors, one per input.
inline std::vector<std::vector<double>> reference_vectors(const std::string& file) {
  const fs::path path = embeddings_dir() / file;
  auto v = server::tmpl::from_json(read_text(path));
  EXPECT_TRUE(v.ok()) << path;
  std::vector<std::vector<double>> out;
  if (!v.ok()) return out;
  for (const auto& row : *v.value().list) {
    out.emplace_back();
    for (const auto& x : *row.list) out.back().push_back(x.kind == server::tmpl::Value::Kind::Int ? static_cast<double>(x.i) : x.f);
  }
  return out;
}

}  // namespace hearth::test
