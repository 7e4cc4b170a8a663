// Which instruction set the SIMD paths may use: the best the CPU has, or the one
// forced with HEARTH_ISA=scalar|avx2|avx512 (so one machine tests every path).
// Decided once per process; immutable afterwards.
#pragma once

#include <string_view>

namespace hearth {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

Isa active_isa();
std::string_view isa_name(Isa isa);
// The best ISA this CPU supports (ignores HEARTH_ISA).
Isa cpu_isa();

}  // namespace hearth
