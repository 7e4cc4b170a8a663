// The element-wise and row operations of a transformer besides matmul, each with a
// scalar reference and a SIMD path chosen by active_isa() (HEARTH_ISA forces one).
#pragma once

#include <cstdint>

#include "quant/cpu.h"

namespace hearth::kernels {

// x[i] = exp(x[i] - max) for i < n; returns the sum of the new x[i]. The AVX2 path's
// exp is a degree-6 polynomial on a reduced argument, within 2 ulp of std::exp.
float exp_shifted(float* x, int64_t n, float max, Isa isa = active_isa());

// Attention over a KV cache whose rows are float (half = false) or IEEE half values.
// scores[t] = scale * (q . K row t) for t < n, K rows k_stride elements apart;
// q has hd values (already rounded to half for a half cache, as llama.cpp does).
void attn_scores(const float* q, const void* k, size_t k_stride, bool half, int64_t hd, int64_t n, float scale, float* scores,
                 Isa isa = active_isa());
// out[i] = p . V^T row i for i < hd, the rows of the transposed V (positions
// contiguous) v_stride elements apart, over n positions.
void attn_values(const float* p, const void* vt, size_t v_stride, bool half, int64_t hd, int64_t n, float* out,
                 Isa isa = active_isa());
// For a Q8_0 cache (V not transposed): out[i] = sum_t p[t] * V row t [i] for i < hd, the
// rows (Q8_0 blocks, hd a multiple of 32) v_stride bytes apart.
void attn_values_q8_0(const float* p, const void* v, size_t v_stride, int64_t hd, int64_t n, float* out, Isa isa = active_isa());
// x[i] rounded to the nearest half (ties to even) and back, in place.
void round_to_half(float* x, int64_t n, Isa isa = active_isa());

// gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)) (SwiGLU).
void swiglu(float* gate, const float* up, int64_t n, Isa isa = active_isa());

// The rotation angles of RoPE for one position, as ggml computes them: theta_i =
// pos * base^(-2i/n_rot) (by repeated multiplication), divided by freq_factors[i] when
// given, then scaled (linear: freq_scale) or blended by YaRN's ramp between the
// interpolated and extrapolated angle, with YaRN's magnitude correction.
struct RopeParams {
  int n_rot = 0;
  float freq_base = 10000.f;
  float freq_scale = 1.f;          // 1 / scaling factor
  float ext_factor = 0.f;          // YaRN: 1 when rope.scaling.type is yarn, else 0
  float attn_factor = 1.f;
  float beta_fast = 32.f, beta_slow = 1.f;
  int n_ctx_orig = 0;              // YaRN: the context the model was trained with
  const float* freq_factors = nullptr;  // rope_freqs.weight (llama 3.1 style), n_rot/2 values
};
// cs[2i] = cos, cs[2i+1] = sin of pair i's angle (times YaRN's mscale), i < n_rot/2.
void rope_cache(const RopeParams& p, int pos, float* cs);
// Rotates the first n_rot values of one head: pairs (2i, 2i+1), or (i, i + n_rot/2)
// for NeoX-style models.
void rope_apply(float* v, const float* cs, int n_rot, bool neox);

}  // namespace hearth::kernels
