#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include "quant/ftype.h"
#include "quant/model_quantizer.h"
#include "tools/commands.h"

namespace hearth::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

void usage(FILE* out) {
  std::fputs(
      "usage: hearth quantize IN.gguf [OUT.gguf] TYPE [THREADS] [options]\n"
      "\n"
      "Quantizes an F32/F16/BF16 GGUF model the way llama-quantize does: the same type for\n"
      "every tensor, the same metadata and tensor order, the same bytes. Without OUT, writes\n"
      "ggml-model-TYPE.gguf beside IN. A split model (NAME-00001-of-0000N.gguf) is read whole.\n"
      "\n"
      "options:\n"
      "  --imatrix FILE                 importance matrix (llama-imatrix .dat or GGUF)\n"
      "  --threads N                    threads (default: all cores)\n"
      "  --pure                         no mixes: every quantizable tensor gets TYPE's base type\n"
      "  --output-tensor-type T         ggml type for output.weight (e.g. q8_0)\n"
      "  --token-embedding-type T       ggml type for token_embd.weight\n"
      "  --leave-output-tensor          keep output.weight as it is\n"
      "  --allow-requantize             accept an already quantized input\n"
      "  --keep-split                   split input -> split output, shard for shard (OUT is the prefix)\n"
      "  --tensor-type REGEX=TYPE       tensors whose name matches REGEX get TYPE (repeatable; first match wins)\n"
      "  --tensor-type-file FILE        REGEX=TYPE rules, separated by whitespace\n"
      "  --prune-layers L0,L1,...       drop these layers (the later ones are renumbered)\n"
      "  --override-kv KEY=TYPE:VALUE   set a metadata key (TYPE: int, float, bool, str; repeatable)\n"
      "  --include-weights NAME         use the imatrix only for tensors whose name contains NAME (repeatable)\n"
      "  --exclude-weights NAME         do not use the imatrix for tensors whose name contains NAME (repeatable)\n"
      "  --dry-run                      print each tensor's type and the sizes; write nothing\n"
      "\n"
      "types (name or number; base type and its bits per weight):\n",
      out);
  for (const quant::FileTypeInfo& f : quant::file_types()) {
    const gguf::TypeInfo& b = gguf::type_info(f.base);
    std::fprintf(out, "  %2u  or  %-7s %-5s %5.2f bpw  %.*s\n", static_cast<unsigned>(f.ftype), std::string(f.name).c_str(),
                 std::string(b.name).c_str(), 8.0 * b.type_size / b.block_size, static_cast<int>(f.summary.size()),
                 f.summary.data());
  }
}

std::optional<gguf::GgmlType> parse_ggml_type(const std::string& s) { return gguf::type_from_name(s); }

// --tensor-type-file: whitespace-separated REGEX=TYPE rules; the exit status.
int read_tensor_type_file(const std::string& path, quant::QuantizeOptions& opt) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "hearth quantize: --tensor-type-file: cannot open '%s': %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::string rule;
  while (in >> rule) {
    auto r = quant::parse_tensor_type_rule(rule);
    if (!r) {
      std::fprintf(stderr, "hearth quantize: %s: %s\n", path.c_str(), r.message().c_str());
      return 2;
    }
    opt.tensor_types.push_back(r.value());
  }
  return 0;
}

std::string mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

// --dry-run: each tensor's type and size, and the totals; nothing is written.
int print_plan(const std::string& in_path, const quant::QuantizeOptions& opt) {
  auto in = quant::InputModel::open(in_path);
  auto plan = in ? quant::plan_quantization(in.value(), opt) : Result<std::vector<quant::TensorPlan>>(in.error());
  if (!plan) {
    std::fprintf(stderr, "hearth quantize: %s\n", plan.message().c_str());
    return 1;
  }
  uint64_t in_bytes = 0, out_bytes = 0, elements = 0;
  for (const quant::TensorPlan& p : plan.value()) {
    const uint64_t to = p.to == p.from ? p.info->n_bytes : gguf::type_bytes(p.to, p.info->n_elements, p.name).value();
    in_bytes += p.info->n_bytes;
    out_bytes += to;
    elements += p.info->n_elements;
    std::string shape;
    for (uint64_t d : p.info->shape()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    std::printf("%-36s %-5s -> %-6s [%s]  %s -> %s%s%s\n", p.name.c_str(), std::string(gguf::type_info(p.from).name).c_str(),
                std::string(gguf::type_info(p.to).name).c_str(), shape.c_str(), mib(p.info->n_bytes).c_str(), mib(to).c_str(),
                p.manual ? "  (--tensor-type)" : "", p.fallback ? "  (fallback)" : "");
  }
  std::printf("dry run: %zu tensors, %s -> %s, %.2f bits per weight; nothing written\n", plan.value().size(),
              mib(in_bytes).c_str(), mib(out_bytes).c_str(), elements ? 8.0 * out_bytes / elements : 0.0);
  return 0;
}

}  // namespace

int cmd_quantize(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    usage(stdout);
    return 0;
  }
  quant::QuantizeOptions opt;
  std::vector<std::string> pos, include, exclude;
  std::string imatrix_file;
  bool dry_run = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&](const char* what) -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "hearth quantize: %s needs a value\n", what);
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "--imatrix") {
      auto v = next("--imatrix");
      if (!v) return 2;
      imatrix_file = *v;
    } else if (a == "--threads" || a == "-t") {
      auto v = next("--threads");
      if (!v) return 2;
      opt.threads = std::atoi(v->c_str());
      if (opt.threads <= 0) {
        std::fprintf(stderr, "hearth quantize: --threads must be a positive number, not '%s'\n", v->c_str());
        return 2;
      }
    } else if (a == "--pure") {
      opt.pure = true;
    } else if (a == "--leave-output-tensor") {
      opt.leave_output_tensor = true;
    } else if (a == "--allow-requantize") {
      opt.allow_requantize = true;
    } else if (a == "--keep-split") {
      opt.keep_split = true;
    } else if (a == "--output-tensor-type" || a == "--token-embedding-type") {
      auto v = next(a.c_str());
      if (!v) return 2;
      auto t = parse_ggml_type(*v);
      if (!t) {
        std::fprintf(stderr, "hearth quantize: unknown ggml type '%s' for %s\n", v->c_str(), a.c_str());
        return 2;
      }
      (a == "--output-tensor-type" ? opt.output_tensor_type : opt.token_embedding_type) = *t;
    } else if (a == "--tensor-type" || a == "--override-kv" || a == "--prune-layers") {
      auto v = next(a.c_str());
      if (!v) return 2;
      Status st;
      if (a == "--tensor-type") {
        auto r = quant::parse_tensor_type_rule(*v);
        if (r) opt.tensor_types.push_back(r.value());
        st = r ? Status{} : Status(r.error());
      } else if (a == "--override-kv") {
        auto r = quant::parse_kv_override(*v);
        if (r) opt.kv_overrides.push_back(r.value());
        st = r ? Status{} : Status(r.error());
      } else {
        auto r = quant::parse_layer_list(*v);
        if (r) opt.prune_layers = r.value();
        st = r ? Status{} : Status(r.error());
      }
      if (!st) {
        std::fprintf(stderr, "hearth quantize: %s: %s\n", a.c_str(), st.message().c_str());
        return 2;
      }
    } else if (a == "--tensor-type-file") {
      auto v = next(a.c_str());
      if (!v) return 2;
      if (int rc = read_tensor_type_file(*v, opt); rc != 0) return rc;
    } else if (a == "--include-weights" || a == "--exclude-weights") {
      auto v = next(a.c_str());
      if (!v) return 2;
      (a == "--include-weights" ? include : exclude).push_back(*v);
    } else if (a == "--dry-run") {
      dry_run = true;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "hearth quantize: unknown option '%s' (see hearth quantize --help)\n", a.c_str());
      return 2;
    } else {
      pos.push_back(a);
    }
  }
  // As llama-quantize: "IN TYPE [THREADS]" writes DIR_OF_IN/ggml-model-TYPE.gguf.
  if (pos.size() >= 2 && pos.size() <= 3 && quant::parse_file_type(pos[1])) {
    const auto ft = quant::parse_file_type(pos[1]);
    const size_t slash = pos[0].find_last_of('/');
    std::string out = (slash == std::string::npos ? "" : pos[0].substr(0, slash + 1)) + "ggml-model-" +
                      std::string(ft->name) + ".gguf";
    pos.insert(pos.begin() + 1, out);
  }
  if (pos.size() < 3 || pos.size() > 4) {
    std::fprintf(stderr, "hearth quantize: expected IN.gguf [OUT.gguf] TYPE [THREADS] (see hearth quantize --help)\n");
    return 2;
  }
  auto ft = quant::parse_file_type(pos[2]);
  if (!ft) {
    std::fprintf(stderr, "hearth quantize: unknown type '%s' (see hearth quantize --help for the list)\n", pos[2].c_str());
    return 2;
  }
  opt.ftype = ft->ftype;
  if (pos.size() == 4) {
    opt.threads = std::atoi(pos[3].c_str());
    if (opt.threads <= 0) {
      std::fprintf(stderr, "hearth quantize: THREADS must be a positive number, not '%s'\n", pos[3].c_str());
      return 2;
    }
  }
  if (!include.empty() && !exclude.empty()) {
    std::fputs("hearth quantize: --include-weights and --exclude-weights cannot be used together\n", stderr);
    return 2;
  }
  quant::Imatrix imatrix;
  if (!imatrix_file.empty()) {
    auto m = quant::load_imatrix(imatrix_file);
    if (!m) {
      std::fprintf(stderr, "hearth quantize: %s\n", m.message().c_str());
      return 1;
    }
    imatrix = std::move(m.value());
    quant::filter_imatrix(imatrix, include, exclude);
    // Every entry filtered out: quantized as without one (no quantize.imatrix.* keys).
    if (!imatrix.values.empty()) opt.imatrix = &imatrix;
    opt.imatrix_path = imatrix_file;
  }
  if (dry_run) return print_plan(pos[0], opt);
  opt.cancel = &g_interrupted;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const bool tty = ::isatty(STDERR_FILENO);
  auto progress = [&](const quant::Progress& p) {
    const int width = 20, filled = static_cast<int>(width * (p.index + 1) / p.count);
    std::fprintf(stderr, "%s[%.*s%*s] %4zu/%zu  %-32s %5s -> %-5s %10s -> %-10s %8.1f MB/s%s", tty ? "\r" : "",
                 filled, "####################", width - filled, "", p.index + 1, p.count, p.tensor->name.c_str(),
                 std::string(gguf::type_info(p.tensor->from).name).c_str(),
                 std::string(gguf::type_info(p.tensor->to).name).c_str(), mib(p.in_bytes).c_str(),
                 mib(p.out_bytes).c_str(), p.seconds > 0 ? p.in_bytes / p.seconds / 1e6 : 0.0,
                 tty && p.index + 1 < p.count ? "\033[K" : "\n");
  };
  auto r = quant::quantize_model(pos[0], pos[1], opt, progress);
  if (!r) {
    std::fprintf(stderr, "%shearth quantize: %s%s\n", tty ? "\n" : "", r.message().c_str(),
                 g_interrupted ? " (no output written)" : "");
    return g_interrupted ? 130 : 1;
  }
  const quant::QuantizeSummary& s = r.value();
  int fallbacks = 0;
  for (const auto& t : s.tensors) fallbacks += t.fallback;
  std::fprintf(stderr,
               "quantized %s -> %s as %s with %d thread%s in %.2f s\n"
               "  tensors: %zu (%d fell back to a type that fits their rows)\n"
               "  input:   %s, output: %s, %.2f bits per weight, %.1f MB/s of input\n",
               pos[0].c_str(), pos[1].c_str(), std::string(ft->name).c_str(), s.threads, s.threads == 1 ? "" : "s",
               s.seconds, s.tensors.size(), fallbacks, mib(s.in_bytes).c_str(), mib(s.out_bytes).c_str(),
               s.n_elements ? 8.0 * s.out_bytes / s.n_elements : 0.0, s.seconds > 0 ? s.in_bytes / s.seconds / 1e6 : 0.0);
  return 0;
}

}  // namespace hearth::cli
