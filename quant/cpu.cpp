#include "quant/cpu.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace hearth {

Isa cpu_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return Isa::Avx2;
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
