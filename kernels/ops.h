// The element-wise and row operations of a transformer besides matmul, each with a
// scalar reference and a SIMD path chosen by active_isa() (HEARTH_ISA forces one).
#pragma once

#include <cstdint>

#include "quant/cpu.h"

namespace hearth::kernels {

// x[i] = exp(x[i] - max) for i < n; returns the sum of the new x[i]. The AVX2 path's
// exp is a degree-6 polynomial on a reduced argument, within 2 ulp of std::exp.
float exp_shifted(float* x, int64_t n, float max, Isa isa = active_isa());

// Attention over a float (half = false) or IEEE half KV cache, K stored transposed
// (row i holds dimension i of every position, k_stride elements apart) and V by position
// (row t holds position t's values, v_stride elements apart).
// scores[t] = scale * (q . K_t) for t < n; q has hd values (already rounded to half for a
// half cache, as llama.cpp does).
void attn_scores(const float* q, const void* kt, size_t k_stride, bool half, int64_t hd, int64_t n, float scale, float* scores,
                 Isa isa = active_isa());
// out[i] = sum_t p[t] V_t[i] for i < hd over n positions.
void attn_values(const float* p, const void* v, size_t v_stride, bool half, int64_t hd, int64_t n, float* out,
                 Isa isa = active_isa());
void attn_values_q8_0(const float* p, const void* v, size_t v_stride, int64_t hd, int64_t n, float* out, Isa isa = active_isa());
// x[i] rounded to the nearest half (ties to even) and back, in place.
void round_to_half(float* x, int64_t n, Isa isa = active_isa());

// gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)) (SwiGLU).
void swiglu(float* gate, const float* up, int64_t n, Isa isa = active_isa());

// out = x / rms(x) * w (w may be null: no weight), rms(x) = sqrt(mean(x^2) + eps) with the
// squares summed in double as ggml does; out may be x.
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps, Isa isa = active_isa());
// out = (x - mean) / sqrt(var + eps) * w + b (ggml_norm, then its mul and add: w and b
// may be null); mean and variance summed in double. out may be x.
void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps, Isa isa = active_isa());

// Softmax in place of y_i = scale * x_i, soft-capped when softcap > 0 (y = softcap *
// tanh(y / softcap), Gemma 2's logit capping) and plus mask[i] when mask is given (-inf
// removes a position: a causal or padding mask). A row masked entirely becomes zeros.
void softmax(float* x, int64_t n, float scale, float softcap, const float* mask, Isa isa = active_isa());

// Activations in place: silu(x) = x / (1 + exp(-x)); gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi)
// (x + 0.044715 x^3))), the tanh form GGML and GPT-2 use; geglu: gate = gelu(gate) * up.
void silu(float* x, int64_t n, Isa isa = active_isa());
void gelu(float* x, int64_t n, Isa isa = active_isa());
void geglu(float* gate, const float* up, int64_t n, Isa isa = active_isa());
// GELU as ggml's CPU backend computes it (its GGML_GELU_FP16 lookup table): x rounded to
// half, the GELU of that half rounded to half; 0 below -10, x above 10. Encoders use it
// so that their states follow llama.cpp's (the rounding moves elements by up to 1e-3).
void gelu_half(float* x, int64_t n);
// Element-wise out = a + b and out = a * b (out may alias either input).
void add(const float* a, const float* b, float* out, int64_t n, Isa isa = active_isa());
void mul(const float* a, const float* b, float* out, int64_t n, Isa isa = active_isa());

// One attention head over a float or half KV cache, laid out as attn_scores and
// attn_values read it.
struct KvHead {
  const void* kt = nullptr;
  size_t k_stride = 0;
  const void* v = nullptr;
  size_t v_stride = 0;
  bool half = false;
  // With a half cache: round q and the probabilities to half for their products, as
  // llama.cpp's F16 matmuls do (true), or keep them float, as its flash attention does.
  bool round = true;
  int64_t hd = 0;
};
// Query rows per attend_rows call: the query heads sharing a KV head, or consecutive
// tokens, up to this many, share each K and V vector loaded.
constexpr int kAttendRows = 8;
// Floats of scratch attend and attend_rows need for rows seeing up to max_n positions.
size_t attend_scratch(int64_t max_n, int64_t hd);
// R <= kAttendRows query rows over one KV head: row r sees positions 0 … n[r] - 1,
// out_r = softmax(scale * q_r . K (soft-capped)) V. With a half cache q and the
// probabilities are rounded to half for their products, as llama.cpp's F16 matmuls do.
// Each row's result is the same, bit for bit, whichever rows it is computed with.
void attend_rows(const KvHead& kv, const float* const* q, const int* n, int R, float scale, float softcap, float* const* out,
                 float* scratch, Isa isa = active_isa());
// Causal attention of nq queries at positions p0, p0+1, ...: query j sees positions
// 0 … p0 + j (attend_rows on up to kAttendRows queries at a time). q and out rows are
// q_stride and out_stride floats apart; scratch holds attend_scratch(p0 + nq, hd) floats.
void attend(const KvHead& kv, const float* q, int64_t q_stride, int nq, int p0, float scale, float softcap, float* out,
            int64_t out_stride, float* scratch, Isa isa = active_isa());

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
