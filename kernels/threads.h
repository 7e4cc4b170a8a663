// The one place kernels meet threads: split a range of rows over OpenMP threads, each
// thread getting one contiguous slice (weights stream sequentially per thread).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace hearth::kernels {

inline int default_threads() { return omp_get_max_threads(); }

// Calls f(begin, end) on `threads` threads for contiguous slices of [0, n).
template <class F>
void parallel_rows(int64_t n, int threads, F&& f) {
  if (threads <= 1 || n < 2) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    f(n * t / nt, n * (t + 1) / nt);
  }
}

// Calls f(begin, end) for about chunks_per_thread * threads contiguous slices of [0, n),
// handed out to the threads as they come free: when one core runs slower than the other
// (a VM whose vCPUs are shared), the faster thread takes more of the slices instead of
// waiting at the end for the slower one.
template <class F>
void parallel_chunks(int64_t n, int threads, int chunks_per_thread, F&& f) {
  const int64_t chunks = std::min<int64_t>(n, int64_t{threads} * chunks_per_thread);
  if (threads <= 1 || chunks < 2) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) f(n * c / chunks, n * (c + 1) / chunks);
}

}  // namespace hearth::kernels
