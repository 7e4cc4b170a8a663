// hearth run / eval / tokenize: the engine from the command line.
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include "gguf/dump.h"
#include "kernels/threads.h"
#include "model/generate.h"
#include "model/unicode.h"
#include "tools/commands.h"
#include "tools/model_options.h"

namespace hearth::cli {
namespace {

std::string json_ids(const std::vector<model::TokenId>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

const char* kRunUsage =
    "usage: hearth run MODEL.gguf PROMPT [options]   the file, in this process\n"
    "       hearth run NAME [PROMPT] [--verbose] [--format json] [--keepalive D] [--nowordwrap]\n"
    "                                                a model of the server (OLLAMA_HOST), as `ollama run`:\n"
    "                                                one answer, or an interactive chat without PROMPT\n"
    "  -n, --num-predict N    new tokens at most (default 128; -1: unbounded, at most 10 contexts)\n"
    "  -c, --ctx N            context length (default 2048, at most the model's)\n"
    "  -t, --threads N        threads (default: all cores)\n"
    "  --temp T               temperature (default 0.8; 0: greedy)\n"
    "  --seed S               random seed (default: from the clock)\n"
    "  --top-k K  --top-p P  --min-p P  --typical-p P\n"
    "  --repeat-penalty R  --repeat-last-n N  --presence-penalty P  --frequency-penalty P\n"
    "  --stop TEXT            stop string (repeatable)\n"
    "  --num-keep N           tokens after BOS kept when the context shifts (default 4)\n"
    "  --no-shift             stop when the context is full instead of shifting it\n"
    "  --json                 print {\"tokens\": [...], \"text\": \"...\"} instead of streaming\n"
    "  --kv-type f16|f32|q8_0 KV cache element type (default f16, as llama.cpp)\n"
    "Streams the continuation to stdout; prompt and generation speed go to stderr.\n";

}  // namespace

int cmd_run(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  // A model name, not a file: the server runs it (`ollama run`).
  std::error_code ec;
  const std::string& first = args[0];
  if (first[0] != '-' && !std::filesystem::is_regular_file(first, ec) &&
      !(first.size() > 5 && first.compare(first.size() - 5, 5, ".gguf") == 0))
    return cmd_run_server(args);
  model::GenerateOptions opt;
  int n_ctx = 2048, threads = 0;
  bool json = false;
  model::KvType kv = model::KvType::F16;
  std::vector<std::string> pos;
  Opts o{args, 0, "run"};
  for (; o.i < args.size() && !o.bad; ++o.i) {
    const std::string& a = args[o.i];
    if (a == "-n" || a == "--num-predict") o.number(opt.num_predict);
    else if (a == "-c" || a == "--ctx") o.number(n_ctx);
    else if (a == "-t" || a == "--threads") o.number(threads);
    else if (a == "--temp") o.number(opt.sampling.temperature);
    else if (a == "--seed") o.number(opt.sampling.seed);
    else if (a == "--top-k") o.number(opt.sampling.top_k);
    else if (a == "--top-p") o.number(opt.sampling.top_p);
    else if (a == "--min-p") o.number(opt.sampling.min_p);
    else if (a == "--typical-p") o.number(opt.sampling.typical_p);
    else if (a == "--repeat-penalty") o.number(opt.sampling.repeat_penalty);
    else if (a == "--repeat-last-n") o.number(opt.sampling.repeat_last_n);
    else if (a == "--presence-penalty") o.number(opt.sampling.presence_penalty);
    else if (a == "--frequency-penalty") o.number(opt.sampling.frequency_penalty);
    else if (a == "--stop") {
      if (auto v = o.value()) opt.stop.push_back(*v);
    } else if (a == "--json") json = true;
    else if (a == "--num-keep") o.number(opt.num_keep);
    else if (a == "--no-shift") opt.shift = false;
    else if (a == "--kv-type") {
      if (!kv_type_option(o, kv)) return 2;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "hearth run: unknown option '%s'\n\n%s", a.c_str(), kRunUsage);
      return 2;
    } else pos.push_back(a);
  }
  if (o.bad) return 2;
  if (pos.size() != 2) {
    std::fprintf(stderr, "hearth run: expected MODEL.gguf and PROMPT\n\n%s", kRunUsage);
    return 2;
  }
  const std::string path = pos[0], text = pos[1];
  const auto t_load = std::chrono::steady_clock::now();
  auto m = load_model("run", path, kv);
  if (!m) return 1;
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const model::HParams& h = m->hparams();
  n_ctx = std::max(1, std::min<int>(n_ctx, static_cast<int>(h.n_ctx_train)));
  auto prompt = m->vocab().tokenize(text, true, true);
  if (!prompt) {
    std::fprintf(stderr, "hearth run: %s\n", prompt.message().c_str());
    return 1;
  }
  model::Context ctx(*m, n_ctx, threads > 0 ? threads : kernels::default_threads(), kv);
  auto r = model::generate(ctx, prompt.value(), opt, [&](const std::string& s) {
    if (!json) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    }
  });
  if (!r) {
    std::fprintf(stderr, "\nhearth run: %s\n", r.message().c_str());
    return 1;
  }
  const model::GenerateResult& g = r.value();
  if (json) {
    // Bytes that are not UTF-8 (a model can emit any) become U+FFFD so the JSON stays valid.
    std::string text;
    for (const model::CodePoint& cp : model::decode_utf8(g.text))
      text += cp.cp == 0xFFFFFFFFu ? std::string("\xEF\xBF\xBD") : g.text.substr(cp.offset, cp.length);
    std::printf("{\"tokens\": %s, \"text\": %s}\n", json_ids(g.tokens).c_str(), gguf::json_quote(text).c_str());
  } else {
    std::printf("\n");
  }
  std::fprintf(stderr, "load: %.3f s; prompt: %zu tokens in %.3f s (%.1f tokens/s); generation: %zu tokens in %.3f s (%.1f tokens/s)\n",
               load_seconds, g.prompt_tokens.size(), g.prompt_seconds, g.prompt_tokens.size() / std::max(g.prompt_seconds, 1e-9),
               g.tokens.size(), g.gen_seconds, g.tokens.size() / std::max(g.gen_seconds, 1e-9));
  if (g.truncated > 0)
    std::fprintf(stderr, "the prompt was truncated to the context: %d of its %zu tokens dropped after the first %d kept\n",
                 g.truncated, g.prompt_tokens.size() + g.truncated, std::max(0, opt.num_keep));
  return 0;
}

// All of a file's bytes ("-": standard input), NULs and all; false with errno set.
static bool read_all(const std::string& path, std::string& out) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  const bool ok = !std::ferror(f);
  if (f != stdin) std::fclose(f);
  return ok;
}

int cmd_tokenize(const Args& args) {
  bool bos = true, special = true, json = false;
  std::string file;
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--no-bos") bos = false;
    else if (a == "--no-special") special = false;
    else if (a == "--json") json = true;
    else if (a == "--file" && i + 1 < args.size()) file = args[++i];
    else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "hearth tokenize: unknown option '%s'\n", a.c_str());
      return 2;
    } else pos.push_back(a);
  }
  if (pos.size() != (file.empty() ? 2u : 1u)) {
    std::fputs("usage: hearth tokenize MODEL.gguf [--no-bos] [--no-special] [--json] (TEXT | --file F)\n"
               "--file reads the text from F (\"-\": standard input), whatever its size or bytes.\n",
               pos.empty() && file.empty() ? stdout : stderr);
    return pos.empty() && file.empty() ? 0 : 2;
  }
  std::string text;
  if (!file.empty() && !read_all(file, text)) {
    std::fprintf(stderr, "hearth tokenize: cannot read '%s': %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  if (file.empty()) text = pos[1];
  auto f = gguf::GgufFile::open(pos[0]);
  if (!f) {
    std::fprintf(stderr, "hearth tokenize: %s\n", f.message().c_str());
    return 1;
  }
  auto v = model::Vocab::from_gguf(f.value());
  if (!v) {
    std::fprintf(stderr, "hearth tokenize: %s\n", v.message().c_str());
    return 1;
  }
  auto ids = v.value().tokenize(text, bos, special);
  if (!ids) {
    std::fprintf(stderr, "hearth tokenize: %s\n", ids.message().c_str());
    return 1;
  }
  if (json) {
    std::printf("%s\n", json_ids(ids.value()).c_str());
  } else {
    for (model::TokenId id : ids.value())
      std::printf("%6d  %s\n", id, gguf::json_quote(v.value().piece(id, true)).c_str());
  }
  return 0;
}

int cmd_eval(const Args& args) {
  std::string model_path, prompt, logits_out;
  bool have_prompt = false;
  model::KvType kv = model::KvType::F16;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto val = [&]() -> std::optional<std::string> {
      if (i + 1 < args.size()) return args[++i];
      std::fprintf(stderr, "hearth eval: %s needs a value\n", a.c_str());
      return std::nullopt;
    };
    if (a == "--prompt") {
      auto v = val();
      if (!v) return 2;
      prompt = *v;
      have_prompt = true;
    } else if (a == "--prompt-file") {
      auto v = val();
      if (!v) return 2;
      std::ifstream in(*v, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "hearth eval: cannot read '%s'\n", v->c_str());
        return 1;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      prompt = ss.str();
      have_prompt = true;
    } else if (a == "--logits") {
      auto v = val();
      if (!v) return 2;
      logits_out = *v;
    } else if (a == "--kv-type") {
      Opts o{args, i, "eval"};
      if (!kv_type_option(o, kv)) return 2;
      i = o.i;
    } else if (model_path.empty() && a[0] != '-') {
      model_path = a;
    } else {
      std::fprintf(stderr, "hearth eval: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (model_path.empty() || !have_prompt) {
    std::fputs("usage: hearth eval MODEL.gguf (--prompt TEXT | --prompt-file F) [--logits OUT.bin] [--kv-type f16|f32|q8_0]\n"
               "Prints the prompt's token ids; --logits writes float32 [n_tokens x n_vocab] little-endian.\n"
               "The reference logits in ../shared/reference/logits were made with --kv-type f32.\n",
               args.empty() ? stdout : stderr);
    return args.empty() ? 0 : 2;
  }
  auto m = load_model("eval", model_path, kv);
  if (!m) return 1;
  auto ids = m->vocab().tokenize(prompt, true, true);
  if (!ids) {
    std::fprintf(stderr, "hearth eval: %s\n", ids.message().c_str());
    return 1;
  }
  model::Context ctx(*m, static_cast<int>(ids.value().size()), kernels::default_threads(), kv);
  std::ofstream out;
  if (!logits_out.empty()) {
    out.open(logits_out, std::ios::binary | std::ios::trunc);
    if (!out) {
      std::fprintf(stderr, "hearth eval: cannot write '%s'\n", logits_out.c_str());
      return 1;
    }
  }
  const size_t n_vocab = ctx.logits().size();
  auto write = [&](size_t, const float* l) { out.write(reinterpret_cast<const char*>(l), n_vocab * sizeof(float)); };
  if (Status s = out.is_open() ? ctx.eval(std::span<const model::TokenId>(ids.value()), write)
                               : ctx.eval(std::span<const model::TokenId>(ids.value()));
      !s) {
    std::fprintf(stderr, "hearth eval: %s\n", s.message().c_str());
    return 1;
  }
  if (out.is_open() && !out.flush()) {
    std::fprintf(stderr, "hearth eval: writing '%s' failed\n", logits_out.c_str());
    return 1;
  }
  std::printf("%s\n", json_ids(ids.value()).c_str());
  return 0;
}

}  // namespace hearth::cli

#include "model/perplexity.h"

namespace hearth::cli {

int cmd_perplexity(const Args& args) {
  std::string model_path, text_path;
  int n_ctx = 512, chunks = -1, threads = 0;
  bool json = false;
  model::KvType kv = model::KvType::F16;
  Opts o{args, 0, "perplexity"};
  for (; o.i < args.size() && !o.bad; ++o.i) {
    const std::string& a = args[o.i];
    if (a == "-f" || a == "--file") {
      if (auto v = o.value()) text_path = *v;
    } else if (a == "-c" || a == "--ctx") o.number(n_ctx);
    else if (a == "--chunks") o.number(chunks);
    else if (a == "-t" || a == "--threads") o.number(threads);
    else if (a == "--json") json = true;
    else if (a == "--kv-type") {
      if (!kv_type_option(o, kv)) return 2;
    } else if (model_path.empty() && !a.empty() && a[0] != '-') model_path = a;
    else {
      std::fprintf(stderr, "hearth perplexity: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (o.bad) return 2;
  if (model_path.empty() || text_path.empty()) {
    std::fputs("usage: hearth perplexity MODEL.gguf -f TEXT [-c CTX (512)] [--chunks N] [-t THREADS] [--kv-type f16|f32|q8_0] [--json]\n"
               "Computed as llama-perplexity does: BOS per chunk, the second half of each chunk scored.\n",
               args.empty() ? stdout : stderr);
    return args.empty() ? 0 : 2;
  }
  auto m = load_model("perplexity", model_path, kv);
  if (!m) return 1;
  std::ifstream in(text_path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "hearth perplexity: cannot read '%s'\n", text_path.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = model::perplexity(*m, ss.str(), n_ctx, chunks, threads > 0 ? threads : kernels::default_threads(),
                             [&](int c, double p) {
                               if (!json) std::fprintf(stderr, "[%d]%.4f,", c + 1, p);
                             },
                             kv);
  if (!r) {
    std::fprintf(stderr, "\nhearth perplexity: %s\n", r.message().c_str());
    return 1;
  }
  const model::PerplexityResult& p = r.value();
  if (json) {
    std::printf("{\"ppl\": %.6f, \"ppl_err\": %.6f, \"n_ctx\": %d, \"n_chunks\": %d, \"tokens_scored\": %lld}\n", p.ppl,
                p.ppl_err, p.n_ctx, p.n_chunks, static_cast<long long>(p.tokens_scored));
  } else {
    std::fprintf(stderr, "\n");
    std::printf("Final estimate: PPL = %.4f +/- %.5f (%d chunks of %d tokens, %lld scored)\n", p.ppl, p.ppl_err, p.n_chunks,
                p.n_ctx, static_cast<long long>(p.tokens_scored));
  }
  return 0;
}

}  // namespace hearth::cli

#include <chrono>
#include <cmath>
#include <random>

#include "model/synth.h"

namespace hearth::cli {

int cmd_synth(const Args& args) {
  model::SynthOptions so;
  std::string shape = "tiny", type = "F16", out;
  Opts o{args, 0, "synth"};
  for (; o.i < args.size() && !o.bad; ++o.i) {
    const std::string& a = args[o.i];
    if (a == "--arch") {
      if (auto v = o.value()) so.arch = *v;
    } else if (a == "--shape") {
      if (auto v = o.value()) shape = *v;
    } else if (a == "--vocab") {
      if (auto v = o.value()) so.vocab_path = *v;
    } else if (a == "--type") {
      if (auto v = o.value()) type = *v;
    } else if (a == "--seed") {
      o.number(so.seed);
    } else if (a == "--sigma") {
      if (auto v = o.value()) so.sigma = std::strtof(v->c_str(), nullptr);
      if (!(so.sigma > 0 && so.sigma < 10)) {
        std::fputs("hearth synth: --sigma must be a number in (0, 10)\n", stderr);
        return 2;
      }
    } else if (a == "--pooling") {
      auto v = o.value();
      static const std::pair<const char*, model::Pooling> kPoolings[] = {
          {"mean", model::Pooling::Mean}, {"cls", model::Pooling::Cls}, {"last", model::Pooling::Last}, {"rank", model::Pooling::Rank}};
      bool known = false;
      for (const auto& [name, p] : kPoolings)
        if (v && *v == name) so.pooling = p, known = true;
      if (v && !known) {
        std::fprintf(stderr, "hearth synth: unknown pooling '%s' (mean, cls, last, rank)\n", v->c_str());
        return 2;
      }
    } else if (a == "-t" || a == "--threads") {
      o.number(so.threads);
    } else if (out.empty() && !a.empty() && a[0] != '-') {
      out = a;
    } else {
      std::fprintf(stderr, "hearth synth: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (o.bad) return 2;
  if (out.empty() || so.vocab_path.empty()) {
    std::fputs("usage: hearth synth --vocab VOCAB.gguf [--arch llama|bert|nomic-bert] [--shape S] [--type T] [--seed S]\n"
               "                    [--pooling mean|cls|last|rank] [--sigma 0.02] OUT.gguf\n"
               "Writes a model of a real architecture's shape with seeded N(0, sigma) weights and the tokenizer\n"
               "of VOCAB.gguf; TYPE is any hearth quantize type (F16 by default). Shapes: tiny, 1b, 3b, 7b (llama);\n"
               "bert-tiny, minilm, bge-base (encoders, whose --pooling is written as <arch>.pooling_type; rank adds\n"
               "a classification head).\n",
               args.empty() ? stdout : stderr);
    return args.empty() ? 0 : 2;
  }
  auto sh = model::synth_shape(shape);
  if (!sh) {
    std::fprintf(stderr, "hearth synth: %s\n", sh.message().c_str());
    return 2;
  }
  so.shape = sh.value();
  auto ft = quant::parse_file_type(type);
  if (!ft) {
    std::fprintf(stderr, "hearth synth: unknown type '%s'\n", type.c_str());
    return 2;
  }
  so.type = ft->ftype;
  if (Status s = model::write_synth_model(out, so); !s) {
    std::fprintf(stderr, "hearth synth: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

namespace {

struct MeanStd {
  double mean = 0, std = 0;
};
MeanStd mean_std(const std::vector<double>& v) {
  MeanStd m;
  for (double x : v) m.mean += x;
  m.mean /= v.size();
  for (double x : v) m.std += (x - m.mean) * (x - m.mean);
  m.std = v.size() > 1 ? std::sqrt(m.std / (v.size() - 1)) : 0;
  return m;
}

}  // namespace

int cmd_bench_model(const Args& args) {
  std::string path;
  int pp = 512, tg = 128, threads = 0, reps = 3, parallel = 1;
  bool json = false;
  model::KvType kv = model::KvType::F16;
  Opts o{args, 0, "bench model"};
  for (; o.i < args.size() && !o.bad; ++o.i) {
    const std::string& a = args[o.i];
    if (a == "-p") o.number(pp);
    else if (a == "-n") o.number(tg);
    else if (a == "-t" || a == "--threads") o.number(threads);
    else if (a == "-r" || a == "--reps") o.number(reps);
    else if (a == "--parallel") o.number(parallel);
    else if (a == "--json") json = true;
    else if (a == "--kv-type") {
      if (!kv_type_option(o, kv)) return 2;
    } else if (path.empty() && !a.empty() && a[0] != '-') path = a;
    else {
      std::fprintf(stderr, "hearth bench model: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (o.bad) return 2;
  if (path.empty()) {
    std::fputs("usage: hearth bench model MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r REPS] [--parallel N]\n"
               "                          [--kv-type f16|f32|q8_0] [--json]\n"
               "Prompt processing (pp) and generation (tg) tokens/s, mean +/- std over REPS, like llama-bench,\n"
               "with the effective rates: pp in GOP/s of the matrices, tg in GB/s of weights read.\n"
               "--parallel N decodes N sequences together, one row each per step (as the server's\n"
               "continuous batching does): tg is then the aggregate tokens/s of the N.\n",
               stdout);
    return 0;
  }
  if (parallel < 1 || parallel > 256) {
    std::fprintf(stderr, "hearth bench model: --parallel must be 1 to 256, not %d\n", parallel);
    return 2;
  }
  auto m = load_model("bench model", path, kv);
  if (!m) return 1;
  threads = threads > 0 ? threads : kernels::default_threads();
  const int n_vocab = static_cast<int>(m->hparams().n_vocab);
  std::mt19937 rng(1234);
  std::vector<double> pp_tps, tg_tps;
  using clk = std::chrono::steady_clock;
  for (int r = 0; r < std::max(1, reps); ++r) {
    model::Context ctx(*m, pp + tg, threads, kv);
    std::vector<model::TokenId> prompt(static_cast<size_t>(pp));
    for (auto& t : prompt) t = static_cast<model::TokenId>(rng() % n_vocab);
    auto t0 = clk::now();
    if (Status s = ctx.eval(std::span<const model::TokenId>(prompt)); !s) {
      std::fprintf(stderr, "hearth bench model: %s\n", s.message().c_str());
      return 1;
    }
    if (pp > 0) pp_tps.push_back(pp / std::chrono::duration<double>(clk::now() - t0).count());
    model::Context gen(*m, tg + 1, threads, kv, parallel);
    std::vector<model::BatchRow> rows(static_cast<size_t>(parallel));
    std::vector<float> logits;
    t0 = clk::now();
    for (int i = 0; i < tg; ++i) {
      for (int s = 0; s < parallel; ++s) rows[s] = {static_cast<model::TokenId>(rng() % n_vocab), i, s, true};
      if (Status s = gen.decode(rows, &logits); !s) {
        std::fprintf(stderr, "hearth bench model: %s\n", s.message().c_str());
        return 1;
      }
    }
    if (tg > 0) tg_tps.push_back(static_cast<double>(tg) * parallel / std::chrono::duration<double>(clk::now() - t0).count());
  }
  const MeanStd p = pp_tps.empty() ? MeanStd{} : mean_std(pp_tps), g = tg_tps.empty() ? MeanStd{} : mean_std(tg_tps);
  // What a token costs: every matrix is read once per decoded token (bytes as stored in
  // the file) and is 2 * rows * cols operations per token (multiply and add counted apart).
  double bytes = 0, ops = 0;
  for (const model::Weight* w : m->matrices()) {
    bytes += static_cast<double>(w->rows()) * static_cast<double>(w->row_bytes);
    ops += 2.0 * static_cast<double>(w->rows()) * static_cast<double>(w->cols());
  }
  if (json) {
    std::printf("{\"model\": %s, \"threads\": %d, \"reps\": %d, \"weight_bytes_per_token\": %.0f, \"ops_per_token\": %.0f, "
                "\"pp\": {\"n\": %d, \"tps_mean\": %.3f, \"tps_std\": %.3f, \"gops\": %.1f}, "
                "\"tg\": {\"n\": %d, \"parallel\": %d, \"tps_mean\": %.3f, \"tps_std\": %.3f, \"gbps\": %.2f}}\n",
                gguf::json_quote(path).c_str(), threads, reps, bytes, ops, pp, p.mean, p.std, p.mean * ops / 1e9, tg, parallel,
                g.mean, g.std, g.mean * bytes / 1e9 / parallel);
  } else {
    std::printf("| model | threads | test | t/s | effective |\n|---|---|---|---|---|\n");
    std::printf("| %s | %d | pp%d | %.2f ± %.2f | %.0f GOP/s |\n", path.c_str(), threads, pp, p.mean, p.std, p.mean * ops / 1e9);
    const std::string test = "tg" + std::to_string(tg) + (parallel > 1 ? " ×" + std::to_string(parallel) + " sequences" : "");
    std::printf("| %s | %d | %s | %.2f ± %.2f | %.1f GB/s of weights |\n", path.c_str(), threads, test.c_str(), g.mean, g.std,
                g.mean * bytes / 1e9 / parallel);
    std::printf("(a token reads %.0f MB of weights and costs %.2f GOP; `hearth bench machine` measures the roofs)\n", bytes / 1e6,
                ops / 1e9);
  }
  return 0;
}

}  // namespace hearth::cli
