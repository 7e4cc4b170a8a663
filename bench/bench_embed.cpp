// The encoder alone, as the runner batches it: embeds every line of INPUTS (tokenized with
// the model's tokenizer, [CLS] … [SEP]) in forward passes of up to runner::kEncoderSlots
// sequences and runner::kEncoderRows tokens, and prints the embeddings per second and
// tokens per second of the best of R runs. bench/embed_bench.py runs it beside /api/embed
// and llama-embedding.
//
// usage: bench_embed MODEL.gguf INPUTS.txt [threads] [runs]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "model/encoder.h"
#include "runner/runner.h"

int main(int argc, char** argv) {
  using namespace hearth;
  if (argc < 3) {
    std::fputs("usage: bench_embed MODEL.gguf INPUTS.txt [threads] [runs]\n", stderr);
    return 2;
  }
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2, runs = argc > 4 ? std::atoi(argv[4]) : 3;
  auto m = model::Model::load(argv[1]);
  if (!m) {
    std::fprintf(stderr, "bench_embed: %s\n", m.message().c_str());
    return 1;
  }
  const model::HParams& h = m.value()->hparams();
  if (h.family != model::Family::Encoder) {
    std::fprintf(stderr, "bench_embed: %s is not an encoder\n", argv[1]);
    return 1;
  }
  std::vector<std::vector<model::TokenId>> seqs;
  size_t tokens = 0;
  std::ifstream in(argv[2]);
  for (std::string line; std::getline(in, line);) {
    auto ids = m.value()->vocab().tokenize(line, true, true);
    if (!ids) {
      std::fprintf(stderr, "bench_embed: %s\n", ids.message().c_str());
      return 1;
    }
    tokens += ids.value().size();
    seqs.push_back(std::move(ids.value()));
  }
  const model::Pooling pooling = h.pooling == model::Pooling::Cls ? model::Pooling::Cls : model::Pooling::Mean;
  model::Encoder enc(*m.value(), threads);
  double best = 1e30;
  std::vector<std::vector<float>> out;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < seqs.size();) {  // the runner's grouping: in order, while they fit
      size_t j = i, rows = 0;
      while (j < seqs.size() && j - i < static_cast<size_t>(runner::kEncoderSlots) &&
             (j == i || rows + seqs[j].size() <= runner::kEncoderRows))
        rows += seqs[j++].size();
      if (Status s = enc.embed(std::span(seqs).subspan(i, j - i), pooling, out); !s) {
        std::fprintf(stderr, "bench_embed: %s\n", s.message().c_str());
        return 1;
      }
      i = j;
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("{\"inputs\": %zu, \"tokens\": %zu, \"seconds\": %.4f, \"embeddings_per_s\": %.2f, \"tokens_per_s\": %.1f}\n", seqs.size(),
              tokens, best, static_cast<double>(seqs.size()) / best, static_cast<double>(tokens) / best);
  return 0;
}
