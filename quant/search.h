// Scale searches shared by the quantizers. These are the specification: llama.cpp's
// files are reproduced byte for byte only if every float operation happens in the
// same order, so this code is compiled with -ffp-contract=off and must not be
// "simplified" algebraically.
#pragma once

#include <cstdint>
#include <cstring>

namespace hearth::quant::detail {

// Smallest group maximum treated as non-zero.
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, via the 1.5 * 2^23 trick (valid for |v| < 2^22).
inline int nearest_int(float v) {
  float t = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// Symmetric levels in [-nmax, nmax-1] for n values; L receives level + nmax. Returns
// the scale. weight_kind: 0 = no search, 1 = x^2 weights, 2 = uniform, 3 = |x|,
// 4 = sqrt|x|; qw, when given, replaces the kind's weights. A negative kind returns
// the midpoint of the first fit and the initial scale, without the search.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int weight_kind, const float* qw);

// Symmetric 3-bit-style levels with x^2 weights and an iterative refinement; L
// receives level + nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool refine);

// Asymmetric levels in [0, nmax] with a weighted least-squares search over
// nstep+1 candidate scales. Returns the scale; *neg_min receives -min (>= 0).
// make_qkx2 takes the weights as given; make_qkx3 uses x^2 when weights is null and
// guards against a degenerate min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

// Runs the asymmetric search (make_qkx2_quants, or make_qkx3_quants when qkx3) on nsub
// consecutive blocks of len (<= 32) values with per-element weights w, and the
// symmetric one (make_qx_quants with weights w) likewise: eight blocks at a time on
// AVX2 lanes when the active ISA allows, the rest one by one. Bit-identical either way.
void asym_blocks(int nsub, int len, int nmax, const float* x, const float* w, uint8_t* L, float* scales,
                 float* neg_mins, float rmin, float rdelta, int nstep, bool mad, bool qkx3);
void sym_blocks(int nsub, int len, int nmax, const float* x, const float* w, int8_t* L, float* scales);

// Eight independent searches, one per AVX2 lane, on transposed blocks: xt[i * 8 + j]
// (and wt, Lt) is element i of block j. Bit-identical to eight scalar calls:
// make_qkx_quants_x8 to make_qkx2_quants (qkx3 = false) or make_qkx3_quants with
// weights (qkx3 = true); make_qx_quants_x8 to make_qx_quants(kind 1) with weights wt.
void make_qkx_quants_x8(int n, int nmax, const float* xt, const float* wt, uint8_t* Lt, float* scale, float* neg_min,
                        float rmin, float rdelta, int nstep, bool use_mad, bool qkx3);
void make_qx_quants_x8(int n, int nmax, const float* xt, const float* wt, int8_t* Lt, float* scale);

// Non-negative levels in [0, nmax] for positive values (sub-block scales), weighted.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

}  // namespace hearth::quant::detail
