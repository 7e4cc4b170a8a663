// The one place kernels meet threads: split a range of rows over OpenMP threads, each
// thread getting one contiguous slice (weights stream sequentially per thread).
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
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

// Calls f(begin, end) over [0, n) split into `threads` contiguous ranges of `pieces`
// pieces each: every thread takes its own range's pieces front to back (one sequential
// stream, as parallel_rows), then pieces from the back of the other ranges that are not
// taken yet. When one vCPU runs slower than the other, the faster thread finishes the
// slower one's tail instead of waiting for it at the barrier.
template <class F>
void parallel_rows_stealing(int64_t n, int threads, int pieces, F&& f) {
  constexpr int kMaxThreads = 64;
  if (threads <= 1 || n < 2 || threads > kMaxThreads || pieces < 2 || n < int64_t{threads} * pieces)
    return parallel_rows(n, threads, [&](int64_t b, int64_t e) {
      if (b < e) f(b, e);
    });
  // Range t's untaken pieces are [front, back): front in the low 32 bits, back in the high.
  struct alignas(64) Range {
    std::atomic<uint64_t> fb;
  };
  Range ranges[kMaxThreads];
  for (int t = 0; t < threads; ++t) ranges[t].fb.store(static_cast<uint64_t>(pieces) << 32, std::memory_order_relaxed);
  auto take = [&](int t, bool from_front, int& piece) {
    uint64_t v = ranges[t].fb.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t front = static_cast<uint32_t>(v), back = static_cast<uint32_t>(v >> 32);
      if (front >= back) return false;
      const uint64_t next = from_front ? v + 1 : v - (uint64_t{1} << 32);
      if (ranges[t].fb.compare_exchange_weak(v, next, std::memory_order_relaxed)) {
        piece = static_cast<int>(from_front ? front : back - 1);
        return true;
      }
    }
  };
  auto run = [&](int t, int piece) {
    const int64_t lo = n * t / threads, len = n * (t + 1) / threads - lo;
    f(lo + len * piece / pieces, lo + len * (piece + 1) / pieces);
  };
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num(), nt = omp_get_num_threads();
    int piece;
    if (me < threads)
      while (take(me, true, piece)) run(me, piece);
    // Ranges of threads OpenMP did not start are taken whole by the others.
    for (int k = 1; k <= threads; ++k) {
      const int o = (me + k) % threads;
      while (take(o, o >= nt, piece)) run(o, piece);
    }
  }
}

}  // namespace hearth::kernels
