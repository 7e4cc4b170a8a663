// hearth bench kernels: the machine's limits, then GEMV / GEMM / dot figures per type,
// ISA and thread count, as a table, JSON, CSV and an SVG roofline.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "kernels/measure.h"
#include "kernels/threads.h"
#include "tools/commands.h"

namespace hearth::cli {
namespace {

const char* kUsage =
    "usage: hearth bench model MODEL.gguf [-p 512] [-n 128] [-t THREADS] [-r REPS] [--kv-type f32|f16|q8_0] [--json]\n"
    "       hearth bench machine [--threads 1,2] [--json]\n"
    "       hearth bench kernels [--types q4_0,q8_0,...] [--isa scalar,avx2,avx512] [--threads 1,2]\n"
    "                            [--json F] [--csv F] [--plot F.svg] [--quick]\n"
    "\n"
    "Measures the machine (read bandwidth over 1 GiB, FP32 FMA and int8 dot peaks), then for\n"
    "each weight type, ISA and thread count: GEMV on a 14336 x 4096 matrix (weight GB/s and\n"
    "% of bandwidth), GEMM with 512 columns on 2048 x 4096 (GFLOP/s and % of peak) and the\n"
    "dot product (ns per block). --quick uses smaller sizes and shorter runs.\n";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

struct Row {
  kernels::KernelResult r;
  kernels::MachineLimits m;
  bool quantized;
};

std::string json_of(const std::vector<Row>& rows) {
  std::ostringstream o;
  o << "[\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [r, m, q] = rows[i];
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  "  {\"op\":\"%s\",\"type\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"rows\":%lld,\"cols\":%lld,"
                  "\"batch\":%lld,\"seconds\":%.9g,\"weight_gbps\":%.6g,\"gflops\":%.6g,\"ns_per_block\":%.6g,"
                  "\"machine_read_gbps\":%.6g,\"machine_fma_gflops\":%.6g,\"machine_int8_gops\":%.6g}%s\n",
                  r.op.c_str(), r.type.c_str(), r.isa.c_str(), r.threads, static_cast<long long>(r.rows),
                  static_cast<long long>(r.cols), static_cast<long long>(r.batch), r.seconds, r.weight_gbps, r.gflops,
                  r.ns_per_block, m.read_gbps, m.fma_gflops, m.int8_gops, i + 1 < rows.size() ? "," : "");
    o << buf;
  }
  o << "]\n";
  return o.str();
}

std::string csv_of(const std::vector<Row>& rows) {
  std::ostringstream o;
  o << "op,type,isa,threads,rows,cols,batch,seconds,weight_gbps,gflops,ns_per_block,machine_read_gbps,"
       "machine_fma_gflops,machine_int8_gops\n";
  for (const auto& [r, m, q] : rows)
    o << r.op << ',' << r.type << ',' << r.isa << ',' << r.threads << ',' << r.rows << ',' << r.cols << ',' << r.batch
      << ',' << r.seconds << ',' << r.weight_gbps << ',' << r.gflops << ',' << r.ns_per_block << ',' << m.read_gbps
      << ',' << m.fma_gflops << ',' << m.int8_gops << '\n';
  return o.str();
}

// Log-log roofline: x = operations per weight byte, y = GOP/s; the bandwidth roof
// (y = GB/s * x) meets the compute roofs (FP32 FMA, int8) of the most threads measured.
std::string svg_of(const std::vector<Row>& rows, const kernels::MachineLimits& top) {
  const double W = 900, H = 560, L = 80, R = 200, T = 40, B = 60;
  const double x0 = std::log10(0.1), x1 = std::log10(2000.0), y0 = std::log10(0.5), y1 = std::log10(5000.0);
  auto px = [&](double v) { return L + (std::log10(v) - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double v) { return H - B - (std::log10(v) - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
    << "<rect width='100%' height='100%' fill='white'/>\n"
    << "<text x='" << L << "' y='24' font-size='16'>Hearth kernels roofline (" << top.threads << " threads)</text>\n";
  for (double v : {0.1, 1.0, 10.0, 100.0, 1000.0})
    o << "<line x1='" << px(v) << "' y1='" << T << "' x2='" << px(v) << "' y2='" << H - B << "' stroke='#ddd'/>"
      << "<text x='" << px(v) << "' y='" << H - B + 16 << "' text-anchor='middle'>" << v << "</text>\n";
  for (double v : {1.0, 10.0, 100.0, 1000.0})
    o << "<line x1='" << L << "' y1='" << py(v) << "' x2='" << W - R << "' y2='" << py(v) << "' stroke='#ddd'/>"
      << "<text x='" << L - 6 << "' y='" << py(v) + 4 << "' text-anchor='end'>" << v << "</text>\n";
  o << "<text x='" << (L + W - R) / 2 << "' y='" << H - 20 << "' text-anchor='middle'>operations per weight byte</text>\n"
    << "<text x='20' y='" << (T + H - B) / 2 << "' transform='rotate(-90 20 " << (T + H - B) / 2
    << ")' text-anchor='middle'>GOP/s (multiply-add = 2)</text>\n";
  for (auto [peak, name, colour] : {std::tuple{top.fma_gflops, "FP32 FMA", "#c33"}, std::tuple{top.int8_gops, "int8", "#33c"}}) {
    const double knee = peak / top.read_gbps;
    o << "<polyline fill='none' stroke='" << colour << "' stroke-width='2' points='" << px(0.1) << ',' << py(0.1 * top.read_gbps)
      << ' ' << px(knee) << ',' << py(peak) << ' ' << px(2000) << ',' << py(peak) << "'/>"
      << "<text x='" << W - R + 6 << "' y='" << py(peak) + 4 << "' fill='" << colour << "'>" << name << " "
      << std::lround(peak) << "</text>\n";
  }
  o << "<text x='" << px(0.12) << "' y='" << py(0.12 * top.read_gbps) - 8 << "' fill='#555'>" << std::lround(top.read_gbps)
    << " GB/s</text>\n";
  int i = 0;
  for (const auto& [r, m, q] : rows) {
    if (r.op == "dot" || r.threads != top.threads) continue;
    const double ai = r.gflops / r.weight_gbps;
    const char* colour = r.op == "gemv" ? "#2a2" : "#a2a";
    o << "<circle cx='" << px(ai) << "' cy='" << py(r.gflops) << "' r='4' fill='" << colour << "'/>"
      << "<text x='" << px(ai) + 6 << "' y='" << py(r.gflops) + ((i++ % 3) - 1) * 10 << "' font-size='10'>" << r.op << ' '
      << r.type << ' ' << r.isa << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) {
    std::fprintf(stderr, "hearth bench: cannot write '%s'\n", path.c_str());
    return false;
  }
  return true;
}

// The thread counts of a --threads list (empty: none given); false, with a message
// naming the entry, when one is not a positive number.
bool thread_counts(const std::vector<std::string>& list, const char* cmd, std::vector<int>& out) {
  for (const std::string& s : list) {
    const int t = std::atoi(s.c_str());
    if (t < 1) {
      std::fprintf(stderr, "hearth bench %s: '%s' is not a thread count\n", cmd, s.c_str());
      return false;
    }
    out.push_back(t);
  }
  return true;
}

constexpr const char* kLimitsHeader = "  threads  read GB/s  FP32 GFLOP/s  int8 GOP/s\n";
void print_limits(const kernels::MachineLimits& m) {
  std::printf("  %7d  %9.1f  %12.1f  %10.1f\n", m.threads, m.read_gbps, m.fma_gflops, m.int8_gops);
}

}  // namespace

// hearth bench machine: the roofs alone (read bandwidth, FP32 FMA and int8 peaks), for
// putting `hearth bench model` figures (or another engine's) beside them.
static int cmd_bench_machine(const Args& args) {
  std::vector<std::string> threads_s;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--threads" && i + 1 < args.size()) threads_s = split(args[++i]);
    else if (args[i] == "--json") json = true;
    else {
      std::fprintf(stderr, "hearth bench machine: unknown option '%s'\n\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  std::vector<int> thread_list;
  if (!thread_counts(threads_s, "machine", thread_list)) return 2;
  if (thread_list.empty()) thread_list.push_back(kernels::default_threads());
  if (!json) std::fputs(kLimitsHeader, stdout);
  for (size_t k = 0; k < thread_list.size(); ++k) {
    const kernels::MachineLimits m = kernels::measure_machine(thread_list[k], 0.5);
    if (json)
      std::printf("%s{\"threads\": %d, \"read_gbps\": %.2f, \"fp32_gflops\": %.1f, \"int8_gops\": %.1f}%s", k ? ", " : "[",
                  m.threads, m.read_gbps, m.fma_gflops, m.int8_gops, k + 1 == thread_list.size() ? "]\n" : "");
    else
      print_limits(m);
  }
  return 0;
}

int cmd_bench(const Args& args) {
  if (!args.empty() && args[0] == "model") return cmd_bench_model(Args(args.begin() + 1, args.end()));
  if (!args.empty() && args[0] == "machine") return cmd_bench_machine(args);
  if (args.empty() || args[0] != "kernels") {
    std::fputs(kUsage, args.empty() ? stdout : stderr);
    return args.empty() ? 0 : 2;
  }
  std::vector<std::string> types = {"f32", "f16", "q8_0", "q4_0", "q4_K", "q6_K"}, isas, threads_s;
  std::string json, csv, plot;
  bool quick = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto val = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (a == "--types") types = split(val());
    else if (a == "--isa") isas = split(val());
    else if (a == "--threads") threads_s = split(val());
    else if (a == "--json") json = val();
    else if (a == "--csv") csv = val();
    else if (a == "--plot") plot = val();
    else if (a == "--quick") quick = true;
    else {
      std::fprintf(stderr, "hearth bench kernels: unknown option '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  std::vector<Isa> isa_list;
  if (isas.empty()) {
    for (int k = 0; k <= static_cast<int>(cpu_isa()); ++k) isa_list.push_back(static_cast<Isa>(k));
  } else {
    for (const std::string& s : isas) {
      Isa want = s == "scalar" ? Isa::Scalar : s == "avx2" ? Isa::Avx2 : s == "avx512" ? Isa::Avx512 : Isa::Scalar;
      if ((s != "scalar" && s != "avx2" && s != "avx512") || static_cast<int>(want) > static_cast<int>(cpu_isa())) {
        std::fprintf(stderr, "hearth bench kernels: ISA '%s' is unknown or not supported by this CPU\n", s.c_str());
        return 2;
      }
      isa_list.push_back(want);
    }
  }
  std::vector<int> thread_list;
  if (!thread_counts(threads_s, "kernels", thread_list)) return 2;
  if (thread_list.empty()) {
    thread_list.push_back(1);
    if (kernels::default_threads() > 1) thread_list.push_back(kernels::default_threads());
  }
  const double secs = quick ? 0.1 : 0.5;
  const int64_t gemv_rows = quick ? 4096 : 14336, gemm_rows = quick ? 256 : 2048, gemm_batch = quick ? 64 : 512;

  std::map<int, kernels::MachineLimits> limits;
  std::printf("machine (cpu ISA: %s)\n%s", std::string(isa_name(cpu_isa())).c_str(), kLimitsHeader);
  for (int t : thread_list) print_limits(limits[t] = kernels::measure_machine(t, secs));
  std::fflush(stdout);
  std::vector<Row> rows;
  std::printf("\n%-6s %-7s %7s  %-28s %-30s %s\n", "type", "isa", "threads", "gemv 14336x4096 (GB/s, %bw)",
              "gemm x512 (GFLOP/s, %peak)", "dot (ns/block)");
  for (const std::string& tn : types) {
    auto type = gguf::type_from_name(tn);
    if (!type || !kernels::kernel_traits(*type)) {
      std::fprintf(stderr, "hearth bench kernels: no kernel for type '%s'\n", tn.c_str());
      return 2;
    }
    const bool q = gguf::type_info(*type).quantized;
    for (Isa isa : isa_list) {
      auto dot = kernels::bench_dot(*type, isa, 4096, secs / 2);
      for (int t : thread_list) {
        auto gv = kernels::bench_gemv(*type, isa, t, gemv_rows, 4096, secs);
        auto gm = kernels::bench_gemm(*type, isa, t, gemm_rows, 4096, gemm_batch, secs);
        if (!gv || !gm || !dot) {
          std::fprintf(stderr, "hearth bench kernels: %s\n", (!gv ? gv : !gm ? gm : dot).message().c_str());
          return 1;
        }
        const auto& m = limits[t];
        const double peak = q ? m.int8_gops : m.fma_gflops;
        std::printf("%-6s %-7s %7d  %7.1f GB/s %5.1f%%            %8.1f GFLOP/s %5.1f%%          %6.1f\n",
                    std::string(gguf::type_info(*type).name).c_str(), std::string(isa_name(isa)).c_str(), t,
                    gv.value().weight_gbps, 100 * gv.value().weight_gbps / m.read_gbps, gm.value().gflops,
                    100 * gm.value().gflops / peak, dot.value().ns_per_block);
        std::fflush(stdout);
        rows.push_back({gv.value(), m, q});
        rows.push_back({gm.value(), m, q});
        if (t == thread_list.front()) rows.push_back({dot.value(), m, q});
      }
    }
  }
  if (!json.empty() && !write_file(json, json_of(rows))) return 1;
  if (!csv.empty() && !write_file(csv, csv_of(rows))) return 1;
  if (!plot.empty() && !write_file(plot, svg_of(rows, limits.rbegin()->second))) return 1;
  return 0;
}

}  // namespace hearth::cli
