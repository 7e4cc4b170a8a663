// The one place kernels meet threads: split a range of rows over OpenMP threads, each
// thread getting one contiguous slice (weights stream sequentially per thread).
#pragma once

#include <omp.h>

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

}  // namespace hearth::kernels
