#include "quant/cpu.h"

#include <cpuid.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace hearth {

namespace {

// Read straight from CPUID (gcc and clang agree on <cpuid.h>, not on the feature
// names of __builtin_cpu_supports), with XGETBV for the OS's register state support.
struct Features {
  bool avx2 = false, fma = false, f16c = false, avx512 = false;
};

Features read_features() {
  Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  unsigned xlo, xhi;
  __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool ymm = (xlo & 0x6) == 0x6, zmm = (xlo & 0xe6) == 0xe6;
  if (!ymm || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31), vnni = c & (1u << 11);
  f.avx512 = zmm && avx512f && avx512bw && avx512vl && vnni;
  return f;
}

}  // namespace

Isa cpu_isa() {
  const Features f = read_features();
  if (f.avx2 && f.fma && f.f16c) return f.avx512 ? Isa::Avx512 : Isa::Avx2;
  return Isa::Scalar;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

Isa active_isa() {
  static const Isa isa = [] {
    const Isa best = cpu_isa();
    const char* env = std::getenv("HEARTH_ISA");
    if (!env || !*env) return best;
    std::string want = env;
    Isa asked = want == "scalar" ? Isa::Scalar : want == "avx2" ? Isa::Avx2 : want == "avx512" ? Isa::Avx512 : best;
    if (want != "scalar" && want != "avx2" && want != "avx512")
      std::fprintf(stderr, "hearth: HEARTH_ISA='%s' is not scalar, avx2 or avx512; using %s\n", env,
                   std::string(isa_name(best)).c_str());
    if (static_cast<int>(asked) > static_cast<int>(best)) {
      std::fprintf(stderr, "hearth: HEARTH_ISA=%s is not supported by this CPU; using %s\n", env,
                   std::string(isa_name(best)).c_str());
      return best;
    }
    return asked;
  }();
  return isa;
}

}  // namespace hearth
