// Quantizer throughput, per type and thread count, on a model of TinyLlama-1.1B's shape.
//
//   bench_quantize [--types Q4_0,Q4_K_M] [--threads 1,2] [--dir /tmp] [--keep]
//
// Writes a llama model with 1.1B seeded N(0, 0.02) F16 weights (n_embd 2048, 22 layers,
// 32/4 heads, n_ff 5632, the llama-spm 32000-token vocabulary from shared/testdata) with
// Hearth's own writer, then times `hearth quantize`'s library call on it, the whole job
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

// Deterministic normal(0, sigma) halves: xorshift64* and Box-Muller.
struct Gauss {
  uint64_t s;
  float next_uniform() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return ((s * 2685821657736338717ull) >> 40) * (1.0f / 16777216.0f);
  }
  void fill(uint16_t* h, size_t n, float sigma) {
    for (size_t i = 0; i + 1 < n; i += 2) {
      float u1 = std::max(next_uniform(), 1e-7f), u2 = next_uniform();
      float r = sigma * std::sqrt(-2 * std::log(u1));
      h[i] = quant::fp32_to_fp16(r * std::cos(6.2831853f * u2));
      h[i + 1] = quant::fp32_to_fp16(r * std::sin(6.2831853f * u2));
    }
  }
};

Status write_model(const std::string& path, const fs::path& vocab_file) {
  auto vocab = gguf::GgufFile::open(vocab_file.string());
  if (!vocab) return vocab.error();
  gguf::Metadata md;
  auto put = [&](const char* k, gguf::Value v) { md.set(k, std::move(v)); };
  put("general.architecture", gguf::Value::string("llama"));
  put("general.name", gguf::Value::string("bench-tinyllama-1.1b-shape"));
  put("general.file_type", gguf::Value::of<uint32_t>(1));
  put("llama.context_length", gguf::Value::of<uint32_t>(2048));
  put("llama.embedding_length", gguf::Value::of<uint32_t>(2048));
  put("llama.feed_forward_length", gguf::Value::of<uint32_t>(5632));
  put("llama.block_count", gguf::Value::of<uint32_t>(22));
  put("llama.attention.head_count", gguf::Value::of<uint32_t>(32));
  put("llama.attention.head_count_kv", gguf::Value::of<uint32_t>(4));
  put("llama.rope.dimension_count", gguf::Value::of<uint32_t>(64));
  put("llama.rope.freq_base", gguf::Value::of<float>(10000.f));
  put("llama.attention.layer_norm_rms_epsilon", gguf::Value::of<float>(1e-5f));
  for (const gguf::KeyValue& kv : vocab.value().metadata.entries())
    if (kv.key.rfind("tokenizer.", 0) == 0) md.set(kv.key, kv.value);
  gguf::GgufWriter w(md);
  uint64_t seed = 1;
  auto matrix = [&](const std::string& name, uint64_t cols, uint64_t rows) -> Status {
    const uint64_t shape[] = {cols, rows};
    uint64_t my_seed = ++seed * 0x9E3779B97F4A7C15ull;
    return w.add_tensor(name, gguf::GgmlType::F16, shape, [cols, rows, my_seed](gguf::ByteSink& s) -> Status {
      Gauss g{my_seed};
      std::vector<uint16_t> row(cols * 64);
      for (uint64_t r = 0; r < rows; r += 64) {
        const uint64_t nr = std::min<uint64_t>(64, rows - r);
        g.fill(row.data(), cols * nr, 0.02f);
        if (Status st = s.write(row.data(), cols * nr * 2); !st) return st;
      }
      return {};
    });
  };
  std::vector<float> ones(5632, 1.0f);
  auto norm = [&](const std::string& name, uint64_t n) {
    const uint64_t shape[] = {n};
    return w.add_tensor(name, gguf::GgmlType::F32, shape, {reinterpret_cast<const uint8_t*>(ones.data()), n * 4});
  };
  if (Status s = matrix("token_embd.weight", 2048, 32000); !s) return s;
  for (int l = 0; l < 22; ++l) {
    std::string b = "blk." + std::to_string(l) + ".";
    for (Status s : {norm(b + "attn_norm.weight", 2048), matrix(b + "attn_q.weight", 2048, 2048),
                     matrix(b + "attn_k.weight", 2048, 256), matrix(b + "attn_v.weight", 2048, 256),
                     matrix(b + "attn_output.weight", 2048, 2048), norm(b + "ffn_norm.weight", 2048),
                     matrix(b + "ffn_gate.weight", 2048, 5632), matrix(b + "ffn_up.weight", 2048, 5632),
                     matrix(b + "ffn_down.weight", 5632, 2048)})
      if (!s) return s;
  }
  if (Status s = norm("output_norm.weight", 2048); !s) return s;
  if (Status s = matrix("output.weight", 2048, 32000); !s) return s;
  return w.write(path);
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
    if (Status s = write_model(model.string(), testdata / "vocab/ggml-vocab-llama-spm.gguf"); !s) {
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
