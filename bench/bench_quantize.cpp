// Quantizer throughput, per type and thread count, on a model of TinyLlama-1.1B's shape.
//
//   bench_quantize [--types Q4_0,Q4_K_M] [--threads 1,2] [--dir /tmp] [--keep]
//
// Writes a llama model with 1.1B seeded N(0, 0.02) F16 weights (`hearth synth --shape 1b`:
// n_embd 2048, 22 layers, 32/4 heads, n_ff 5632, the llama-spm 32000-token vocabulary
// from shared/testdata), then times `hearth quantize`'s library call on it, the whole job
// (read, convert, quantize, write, fsync) as llama-quantize's wall time is measured.
// llama.cpp's figures on this machine kind (../shared/reference/bench/README.md,
// 2 threads): Q4_0 9.3 s, Q4_K_M 38.1 s.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "quant/fp16.h"
#include "model/synth.h"
#include "quant/model_quantizer.h"

namespace fs = std::filesystem;
using namespace hearth;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) out.push_back(x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> types = {"Q4_0", "Q4_K_M"};
  std::vector<int> threads = {1, 2};
  fs::path dir = "/tmp";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--types" && i + 1 < argc) types = split(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) {
      threads.clear();
      for (const std::string& t : split(argv[++i])) threads.push_back(std::atoi(t.c_str()));
    } else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--keep") keep = true;
    else {
      std::fprintf(stderr, "usage: bench_quantize [--types Q4_0,Q4_K_M] [--threads 1,2] [--dir /tmp] [--keep]\n");
      return 2;
    }
  }
  const char* td = std::getenv("HEARTH_TESTDATA");
  fs::path testdata = td && *td ? fs::path(td) : fs::path(HEARTH_SOURCE_DIR) / "../shared/testdata";
  fs::path model = dir / "hearth-bench-1.1b.f16.gguf";
  if (!fs::exists(model)) {
    auto t0 = std::chrono::steady_clock::now();
    model::SynthOptions so;
    so.shape = model::synth_shape("1b").value();
    so.vocab_path = (testdata / "vocab/ggml-vocab-llama-spm.gguf").string();
    if (Status s = model::write_synth_model(model.string(), so); !s) {
      std::fprintf(stderr, "bench_quantize: %s\n", s.message().c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %s (%.2f GB) in %.1f s\n", model.c_str(), fs::file_size(model) / 1e9,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const std::map<std::string, double> llama_cpp_2t = {{"Q4_0", 9.3}, {"Q4_K_M", 38.1}};
  std::printf("%-8s %7s %9s %12s %14s %20s\n", "type", "threads", "seconds", "MB/s input", "bits/weight",
              "llama.cpp 2t / ours");
  for (const std::string& t : types) {
    auto ft = quant::parse_file_type(t);
    if (!ft) {
      std::fprintf(stderr, "bench_quantize: unknown type %s\n", t.c_str());
      return 2;
    }
    for (int th : threads) {
      quant::QuantizeOptions opt;
      opt.ftype = ft->ftype;
      opt.threads = th;
      fs::path out = dir / ("hearth-bench-1.1b." + t + ".gguf");
      auto t0 = std::chrono::steady_clock::now();
      auto r = quant::quantize_model(model.string(), out.string(), opt);
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!r) {
        std::fprintf(stderr, "bench_quantize: %s\n", r.message().c_str());
        return 1;
      }
      auto ref = llama_cpp_2t.find(t);
      char ratio[32] = "-";
      if (ref != llama_cpp_2t.end() && th == 2) std::snprintf(ratio, sizeof ratio, "%.2fx", ref->second / sec);
      std::printf("%-8s %7d %9.2f %12.1f %14.3f %20s\n", t.c_str(), th, sec, r.value().in_bytes / sec / 1e6,
                  8.0 * r.value().out_bytes / r.value().n_elements, ratio);
      std::fflush(stdout);
      if (!keep) fs::remove(out);
    }
  }
  if (!keep) fs::remove(model);
  return 0;
}
