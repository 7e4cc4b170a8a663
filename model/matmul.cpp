#include "model/matmul.h"

#include <algorithm>

#include "kernels/kernels.h"
#include "kernels/threads.h"

namespace hearth::model {

// Y = W X: each activation row is quantized once to the weight type's activation type,
// then every output is one dot product. Rows (or packed groups of eight) are split over
// the threads; each thread walks its slice in chunks small enough to stay in cache while
// all B activation rows pass over them. Every output is computed exactly as for B = 1.
void MatMul::one(const Weight& w, const float* x, float* y, int B) {
  const Job job{&w, y};
  (*this)(std::span<const Job>(&job, 1), x, B);
}

// Several matrices of the same input (q, k, v; gate, up) in one parallel region: the
// activations quantized once, the matrices' rows split over the threads as one range (one
// barrier instead of one per matrix, and small matrices no longer split on their own).
// Matrices that cannot share the input's quantized form run one after the other.
void MatMul::operator()(std::span<const Job> jobs, const float* x, int B) {
  if (observer_)
    for (const Job& j : jobs) observer_(*j.w, x, B);
  product(jobs, x, B);
}

void MatMul::product(std::span<const Job> jobs, const float* x, int B) {
  const Weight& w0 = *jobs[0].w;
  const kernels::KernelTraits* k = kernels::kernel_traits(w0.info->type);
  const int64_t n = w0.cols();
  const auto prepare = w0.packed && B > 1 ? w0.repacked->prepare : nullptr;
  bool fused = true;
  for (const Job& j : jobs)
    fused = fused && j.w->cols() == n && kernels::kernel_traits(j.w->info->type)->activation == k->activation &&
            j.w->rows() % kernels::kRepackRows == 0 && (j.w->packed && B > 1 ? j.w->repacked->prepare : nullptr) == prepare;
  if (jobs.size() > 1 && !fused) {
    for (const Job& j : jobs) product(std::span<const Job>(&j, 1), x, B);
    return;
  }
  const size_t ab = kernels::activation_bytes(k->activation, n);
  act_.resize(ab * B);
  // The activation rows are quantized on all threads (serial, they would cap the
  // speed-up of prompt processing).
  kernels::parallel_rows(B, threads_, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) kernels::quantize_activations(k->activation, x + j * n, n, act_.data() + j * ab);
  });
  const void* prepared = w0.packed && B > 1 ? kernels::gemm_input(*w0.repacked, n, act_.data(), ab, B, prepared_) : act_.data();

  // Units of work: packed groups of eight rows (one row for a lone unpacked matrix).
  const int64_t unit = jobs.size() > 1 || w0.packed ? kernels::kRepackRows : 1;
  // Rows [r0, r1) of one matrix (multiples of 8 when packed).
  auto run = [&](const Job& job, int64_t r0, int64_t r1) {
    const Weight& w = *job.w;
    const int64_t rows = w.rows();
    if (w.packed && B > 1)
      return w.repacked->gemm(w.packed, n, prepared, ab, B, r0 / kernels::kRepackRows, r1 / kernels::kRepackRows, job.y, rows);
    if (w.packed) return w.repacked->gemv(w.packed, n, act_.data(), r0 / kernels::kRepackRows, r1 / kernels::kRepackRows, job.y);
    const gguf::GgmlType t = w.info->type;
    if (B > 1)
      if (const kernels::GemmFn gemm = kernels::gemm_fn(t, active_isa())) return gemm(w.data, w.row_bytes, n, act_.data(), ab, B, r0, r1, job.y, rows);
    const kernels::DotFn dot = kernels::dot_fn(t, active_isa());
    const kernels::GemvFn fast = kernels::gemv_fn(t, active_isa());
    constexpr int64_t kChunkRows = 128;  // a multiple of 8 (packed groups) and 4 (row tiles)
    for (int64_t c = r0; c < r1; c += kChunkRows) {
      const int64_t ce = std::min(r1, c + kChunkRows);
      for (int j = 0; j < B; ++j) {
        if (fast) fast(w.data, w.row_bytes, n, act_.data() + j * ab, c, ce, job.y + j * rows);
        else kernels::gemv(dot, w.data, w.row_bytes, n, act_.data() + j * ab, c, ce, job.y + j * rows);
      }
    }
  };
  // Units [u0, u1) of the matrices taken as one range.
  auto run_units = [&](int64_t u0, int64_t u1) {
    int64_t base = 0;
    for (const Job& job : jobs) {
      const int64_t units = job.w->rows() / unit, b = std::max(u0, base), e = std::min(u1, base + units);
      if (b < e) run(job, (b - base) * unit, (e - base) * unit);
      base += units;
    }
  };
  int64_t total = 0;
  for (const Job& job : jobs) total += job.w->rows() / unit;
  // Prompts (compute-bound) hand out eight slices per thread as threads come free: one
  // vCPU here often runs slower than the other, and with halves the faster thread waited
  // ~10 % of the time (pp +13 % measured). Decoding (bandwidth-bound) keeps one contiguous
  // stream per thread (slices handed out in turn measured slower: each restarts the
  // prefetch stream), taken in pieces so that a thread done early takes the other's last
  // pieces (perf: each thread had spent ~5 % of decoding waiting in libgomp; Q8_0 tg
  // +6 %, Q4_0 +2 % in alternating runs).
  if (B > 1) kernels::parallel_chunks(total, threads_, 8, run_units);
  else kernels::parallel_rows_stealing(total, threads_, 8, run_units);
}

}  // namespace hearth::model
