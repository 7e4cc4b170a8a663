// hearth imatrix: an importance matrix over a text, as llama-imatrix computes and writes it.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/threads.h"
#include "model/imatrix.h"
#include "quant/imatrix_stats.h"
#include "tools/commands.h"
#include "tools/model_options.h"

namespace hearth::cli {
namespace {

const char* kImatrixUsage =
    "usage: hearth imatrix MODEL.gguf -f TEXT [-o OUT] [options]\n"
    "       hearth imatrix --in-file A --in-file B [...] -o OUT     (combine files, no model run)\n"
    "  -f, --file TEXT          the calibration text\n"
    "  -o, --output OUT         where to write (default imatrix.gguf)\n"
    "  --output-format gguf|dat GGUF imatrix (default) or llama-imatrix's legacy .dat\n"
    "  -c, --ctx N              tokens per chunk (default 512)\n"
    "  --chunks N               chunks to run (default: all the text has)\n"
    "  --chunk N                skip the first N chunks of the text\n"
    "  --in-file F              add an earlier imatrix (GGUF or .dat); repeatable\n"
    "  --process-output         also collect output.weight\n"
    "  --no-ppl                 do not compute the perplexity\n"
    "  --output-frequency N     save OUT every N chunks (default 10)\n"
    "  --save-frequency N       also save OUT.at_<chunk> every N chunks (default 0: never)\n"
    "  -t, --threads N          threads (default: all cores)\n"
    "  --kv-type f16|f32|q8_0   KV cache element type (default f16, as llama.cpp)\n"
    "  -fa, --flash-attn on|off attention numerics of llama.cpp's flash attention (default on,\n"
    "                           as llama-imatrix on CPUs) or of its F16 matmuls (off)\n"
    "The perplexity of each chunk goes to stdout ([1]4.0931,[2]...), a progress bar to stderr.\n";

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop = true; }

struct ImatrixArgs {
  std::string model, text, out = "imatrix.gguf", format;
  std::vector<std::string> in_files;
  model::ImatrixOptions run;
  int out_every = 10, save_every = 0;
  bool parsed = false;
};

ImatrixArgs parse(const Args& args) {
  ImatrixArgs r;
  r.run.threads = kernels::default_threads();
  Opts o{args, 0, "imatrix"};
  for (; o.i < args.size() && !o.bad; ++o.i) {
    const std::string& a = args[o.i];
    auto text = [&](std::string& to) {
      if (auto v = o.value()) to = *v;
    };
    if (a == "-f" || a == "--file") text(r.text);
    else if (a == "-o" || a == "--output" || a == "--output-file") text(r.out);
    else if (a == "--output-format") text(r.format);
    else if (a == "--in-file") {
      if (auto v = o.value()) r.in_files.push_back(*v);
    } else if (a == "-c" || a == "--ctx" || a == "--ctx-size") o.number(r.run.n_ctx);
    else if (a == "--chunks") o.number(r.run.max_chunks);
    else if (a == "--chunk" || a == "--from-chunk") o.number(r.run.skip_chunks);
    else if (a == "-t" || a == "--threads") o.number(r.run.threads);
    else if (a == "--output-frequency") o.number(r.out_every);
    else if (a == "--save-frequency") o.number(r.save_every);
    else if (a == "--process-output") r.run.process_output = true;
    else if (a == "--no-ppl") r.run.compute_ppl = false;
    else if (a == "--kv-type") o.bad = !kv_type_option(o, r.run.kv);
    else if (a == "-fa" || a == "--flash-attn") {
      auto v = o.value();
      if (v && (*v == "on" || *v == "auto")) r.run.flash_attn = true;
      else if (v && *v == "off") r.run.flash_attn = false;
      else if (v) {
        std::fprintf(stderr, "hearth imatrix: --flash-attn must be on, off or auto, not '%s'\n", v->c_str());
        return r;
      }
    }
    else if ((a == "-m" || a == "--model") && r.model.empty()) text(r.model);
    else if (r.model.empty() && !a.empty() && a[0] != '-') r.model = a;
    else {
      std::fprintf(stderr, "hearth imatrix: unexpected argument '%s'\n", a.c_str());
      return r;
    }
  }
  if (o.bad) return r;
  if (!r.format.empty() && r.format != "gguf" && r.format != "dat") {
    std::fprintf(stderr, "hearth imatrix: --output-format must be gguf or dat, not '%s'\n", r.format.c_str());
    return r;
  }
  if (r.run.threads < 1 || r.out_every < 1 || r.save_every < 0) {
    std::fputs("hearth imatrix: --threads and --output-frequency must be at least 1, --save-frequency at least 0\n", stderr);
    return r;
  }
  r.parsed = true;
  return r;
}

Status save(const quant::ImatrixStats& stats, const ImatrixArgs& a, const std::string& path) {
  return a.format == "dat" ? stats.save_dat(path) : stats.save_gguf(path);
}

std::string clock_text(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char b[32];
  std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return b;
}

// Runs the model over the text into `stats`, printing the perplexity per chunk and a
// progress bar, saving as asked; the exit status.
int run_model(const ImatrixArgs& a, quant::ImatrixStats& stats) {
  auto m = load_model("imatrix", a.model, a.run.kv);
  if (!m) return 1;
  auto text = gguf::MappedFile::open(a.text);  // mapped, never copied: the text may be large
  if (!text) {
    std::fprintf(stderr, "hearth imatrix: %s\n", text.message().c_str());
    return 1;
  }
  const auto bytes = text.value()->bytes();
  stats.add_dataset(a.text);
  const bool tty = ::isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  auto on_chunk = [&](const model::ImatrixProgress& p) -> Status {
    if (a.run.compute_ppl) {
      std::printf("[%d]%.4f,", p.chunk, p.ppl);
      std::fflush(stdout);
    }
    const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int width = 20, filled = width * p.chunk / p.n_chunks;
    std::fprintf(stderr, "%s[%.*s%*s] chunk %d/%d  %.2f s/chunk  ETA %s%s", tty ? "\r" : "", filled,
                 "####################", width - filled, "", p.chunk, p.n_chunks, spent / p.chunk,
                 clock_text(spent / p.chunk * (p.n_chunks - p.chunk)).c_str(), tty && p.chunk < p.n_chunks ? "\033[K" : "\n");
    if (g_stop) return Error{"interrupted"};
    const int64_t done = stats.chunk_count();
    if (done % a.out_every == 0)
      if (Status s = save(stats, a, a.out); !s) return s;
    if (a.save_every > 0 && done % a.save_every == 0)
      if (Status s = save(stats, a, a.out + ".at_" + std::to_string(done)); !s) return s;
    return {};
  };
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto r = model::compute_imatrix(*m, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), a.run,
                                  stats, on_chunk);
  if (a.run.compute_ppl) std::printf("\n");
  if (!r) {
    std::fprintf(stderr, "hearth imatrix: %s%s\n", r.message().c_str(),
                 g_stop ? " (the output holds what was saved before)" : "");
    return g_stop ? 130 : 1;
  }
  if (a.run.compute_ppl) std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.value().ppl, r.value().ppl_err);
  const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%d chunks of %d tokens in %.2f s (%.1f tokens/s)\n", r.value().n_chunks, a.run.n_ctx, spent,
               spent > 0 ? r.value().tokens / spent : 0.0);
  return 0;
}

}  // namespace

int cmd_imatrix(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kImatrixUsage, stdout);
    return 0;
  }
  ImatrixArgs a = parse(args);
  if (!a.parsed) return 2;
  if (a.text.empty() && a.in_files.empty()) {
    std::fputs("hearth imatrix: give a text (-f) to run the model over, or --in-file imatrices to combine\n", stderr);
    return 2;
  }
  if (!a.text.empty() && a.model.empty()) {
    std::fputs("hearth imatrix: which model? (hearth imatrix MODEL.gguf -f TEXT)\n", stderr);
    return 2;
  }
  quant::ImatrixStats stats(a.run.n_ctx);
  for (const std::string& f : a.in_files) {
    auto file = quant::read_imatrix_file(f);
    Status s = file ? stats.merge(file.value(), f) : Status(file.error());
    if (!s) {
      std::fprintf(stderr, "hearth imatrix: %s\n", s.message().c_str());
      return 1;
    }
  }
  if (!a.text.empty())
    if (int rc = run_model(a, stats); rc != 0) return rc;
  if (Status s = save(stats, a, a.out); !s) {
    std::fprintf(stderr, "hearth imatrix: %s\n", s.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "saved %zu entries after %lld chunks to %s\n", stats.entries().size(),
               static_cast<long long>(stats.chunk_count()), a.out.c_str());
  return 0;
}

}  // namespace hearth::cli
