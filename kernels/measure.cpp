#include "kernels/measure.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include "kernels/repack.h"
#include "kernels/threads.h"
#include "quant/quant.h"

namespace hearth::kernels {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
std::unique_ptr<uint8_t, AlignedFree> aligned_bytes(size_t n) {
  return std::unique_ptr<uint8_t, AlignedFree>(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64)));
}

__attribute__((target("avx512f"))) uint64_t read_slice_avx512(const uint8_t* p, size_t n) {
  __m512i a0 = _mm512_set1_epi64(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
  uint64_t r = 0;
  for (uint64_t v : lanes) r ^= v;
  return r;
}

__attribute__((target("avx2"))) uint64_t read_slice(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(a, 0) ^ _mm256_extract_epi64(a, 3));
}

__attribute__((target("avx2,fma"))) float fma_chain(int64_t iters) {
  __m256 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(1.0f + k * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  __m256 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm256_add_ps(s, acc[k]);
  return _mm256_cvtss_f32(s);
}

// The same on 512 bits (16 lanes): on CPUs with two 512-bit FMA ports (Intel server
// cores) twice the 256-bit rate; on Zen 4 (512 bits in two halves) about the same.
__attribute__((target("avx512f"))) float fma_chain_512(int64_t iters) {
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(1.0f + k * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  __m512 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_ps(s, acc[k]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0];
}

// int8 multiply-adds: VNNI's vpdpbusd (64 per instruction on 512 bits; the kernels use
// both widths) or AVX2's vpmaddubsw + vpmaddwd (32 per pair).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int int8_chain_vnni(int64_t iters) {
  __m512i acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
  __m512i s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_epi32(s, acc[k]);
  alignas(64) int32_t out[16];
  _mm512_store_si512(out, s);
  return out[0];
}
__attribute__((target("avx2"))) int int8_chain_avx2(int64_t iters) {
  __m256i acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_epi32(k);
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), one = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), one));
  __m256i s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm256_add_epi32(s, acc[k]);
  return _mm256_extract_epi32(s, 0);
}

// Runs fn() at least 3 times and for about `seconds`; returns the median time.
template <class F>
double timed(double seconds, F&& fn) {
  fn();  // warm-up: page faults, caches, thread start
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 3 || (since(start) < seconds && t.size() < 1000)) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// A rows x cols matrix of `type` made from 64 distinct random rows, tiled: real block
// data (valid scales) at DRAM-sized footprints without quantizing every row.
Result<std::unique_ptr<uint8_t, AlignedFree>> random_matrix(GgmlType type, int64_t rows, int64_t cols, size_t& row_bytes) {
  auto rb = gguf::type_bytes(type, static_cast<uint64_t>(cols), "bench matrix row");
  if (!rb) return rb.error();
  row_bytes = rb.value();
  const int64_t distinct = std::min<int64_t>(64, rows);
  std::vector<float> src(static_cast<size_t>(distinct * cols));
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0.f, 0.02f);
  for (float& v : src) v = g(rng);
  std::vector<uint8_t> q(row_bytes * static_cast<size_t>(distinct));
  auto n = quant::quantize_rows(type, src.data(), q.data(), distinct, cols, nullptr);
  if (!n) return n.error();
  auto m = aligned_bytes(row_bytes * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) std::memcpy(m.get() + r * row_bytes, q.data() + (r % distinct) * row_bytes, row_bytes);
  return m;
}

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = g(rng);
  return v;
}


// The repacked form of a matrix where the engine would use one (repacked_traits, rows a
// multiple of eight), else empty.
std::vector<uint8_t> repacked(GgmlType type, Isa isa, const uint8_t* W, size_t rb, int64_t rows, int64_t cols) {
  std::vector<uint8_t> P;
  const RepackedTraits* r = repacked_traits(type, isa);
  if (!r || rows % kRepackRows != 0) return P;
  P.resize(r->bytes(rows, cols));
  r->repack(W, rb, rows, cols, P.data());
  return P;
}

}  // namespace

MachineLimits measure_machine(int threads, double seconds_each) {
  MachineLimits m;
  m.threads = threads;
  const size_t bytes = size_t{1} << 30;  // far beyond any last-level cache here
  auto buf = aligned_bytes(bytes);
  parallel_rows(static_cast<int64_t>(bytes / 4096), threads, [&](int64_t b, int64_t e) {
    std::memset(buf.get() + b * 4096, 1, static_cast<size_t>(e - b) * 4096);
  });
  volatile uint64_t sink = 0;
  const double t = timed(seconds_each, [&] {
    parallel_rows(static_cast<int64_t>(bytes / 4096), threads, [&](int64_t b, int64_t e) {
      const uint8_t* p = buf.get() + b * 4096;
      const size_t len = static_cast<size_t>(e - b) * 4096;
      sink = sink + (cpu_isa() >= Isa::Avx512 ? read_slice_avx512(p, len) : read_slice(p, len));
    });
  });
  m.read_gbps = bytes / t / 1e9;

  const int64_t iters = 2'000'000;
  const bool wide = cpu_isa() >= Isa::Avx512;  // 512-bit chains: the widest the kernels use
  volatile float fs = 0;
  const double tf = timed(seconds_each, [&] {
    parallel_rows(threads, threads, [&](int64_t, int64_t) { fs = fs + (wide ? fma_chain_512(iters) : fma_chain(iters)); });
  });
  m.fma_gflops = static_cast<double>(threads) * iters * 12 * (wide ? 16 : 8) * 2 / tf / 1e9;

  volatile unsigned is = 0;  // a sink only: unsigned, so that its sum may wrap
  const double ti = timed(seconds_each, [&] {
    parallel_rows(threads, threads, [&](int64_t, int64_t) {
      is = is + static_cast<unsigned>(wide ? int8_chain_vnni(iters) : int8_chain_avx2(iters));
    });
  });
  m.int8_gops = static_cast<double>(threads) * iters * 12 * (wide ? 64 : 32) * 2 / ti / 1e9;
  return m;
}

Result<KernelResult> bench_gemv(GgmlType type, Isa isa, int threads, int64_t rows, int64_t cols, double seconds) {
  const KernelTraits* k = kernel_traits(type);
  const DotFn dot = dot_fn(type, isa);
  if (!k || !dot) return Error{"no kernel for " + std::string(gguf::type_info(type).name)};
  auto rb_or = gguf::type_bytes(type, static_cast<uint64_t>(cols), "bench matrix row");
  if (!rb_or) return rb_or.error();
  // Enough copies of the matrix, used in turn, that together they are far larger than
  // any last-level cache (a 4096 x 14336 q4_0 matrix alone, 33 MB, would mostly stay in
  // a big L3 between calls).
  const int64_t copies = std::max<int64_t>(1, (int64_t{512} << 20) / static_cast<int64_t>(rb_or.value() * rows));
  size_t rb = 0;
  auto W = random_matrix(type, rows * copies, cols, rb);
  if (!W) return W.error();
  const std::vector<float> x = random_floats(cols, 7);
  std::vector<uint8_t> a(activation_bytes(k->activation, cols));
  std::vector<float> y(static_cast<size_t>(rows));
  const GemvFn fast = gemv_fn(type, isa);
  // The engine's decode path: the repacked eight-row GEMV where there is one.
  const std::vector<uint8_t> P = repacked(type, isa, W.value().get(), rb, rows * copies, cols);
  const auto packed_gemv = P.empty() ? nullptr : repacked_traits(type, isa)->gemv;
  int64_t call = 0;
  const double t = timed(seconds, [&] {
    const int64_t c = call++ % copies;
    quantize_activations(k->activation, x.data(), cols, a.data(), isa);
    parallel_rows(P.empty() ? rows : rows / kRepackRows, threads, [&](int64_t b, int64_t e) {
      if (!P.empty()) packed_gemv(P.data() + P.size() / copies * c, cols, a.data(), b, e, y.data());
      else if (fast) fast(W.value().get() + rb * rows * c, rb, cols, a.data(), b, e, y.data());
      else gemv(dot, W.value().get() + rb * rows * c, rb, cols, a.data(), b, e, y.data());
    });
  });
  KernelResult r{"gemv", std::string(gguf::type_info(type).name), std::string(isa_name(isa)), threads, rows, cols, 1, t};
  r.weight_gbps = static_cast<double>(rb) * rows / t / 1e9;
  r.gflops = 2.0 * rows * cols / t / 1e9;
  return r;
}

Result<KernelResult> bench_gemm(GgmlType type, Isa isa, int threads, int64_t rows, int64_t cols, int64_t batch,
                                double seconds) {
  const KernelTraits* k = kernel_traits(type);
  const DotFn dot = dot_fn(type, isa);
  if (!k || !dot) return Error{"no kernel for " + std::string(gguf::type_info(type).name)};
  size_t rb = 0;
  auto W = random_matrix(type, rows, cols, rb);
  if (!W) return W.error();
  const std::vector<float> x = random_floats(cols * batch, 9);
  const size_t ab = activation_bytes(k->activation, cols);
  std::vector<uint8_t> a(ab * static_cast<size_t>(batch));
  std::vector<float> y(static_cast<size_t>(rows * batch));
  // The engine's prompt path: per 32 columns (its micro-batch) the activations prepared
  // once where the kernel wants it, then eight slices of rows per thread, handed out as
  // threads come free, through the repacked GEMM (q4_0, q8_0, q4_K,
  // q5_K, q6_K on AVX-512) or a multi-token kernel (the other types; floats on AVX-512),
  // else one dot product per (row, column).
  const std::vector<uint8_t> P = repacked(type, isa, W.value().get(), rb, rows, cols);
  const bool packed = !P.empty();
  const RepackedTraits* rt = packed ? repacked_traits(type, isa) : nullptr;
  std::vector<uint8_t> prepared;
  const GemmFn multi = gemm_fn(type, isa);
  constexpr int64_t kMicroBatch = 32;
  const double t = timed(seconds, [&] {
    parallel_rows(batch, threads, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) quantize_activations(k->activation, x.data() + j * cols, cols, a.data() + j * ab, isa);
    });
    for (int64_t j0 = 0; j0 < batch; j0 += kMicroBatch) {
      const int B = static_cast<int>(std::min(kMicroBatch, batch - j0));
      const uint8_t* act = a.data() + j0 * ab;
      const void* in = packed ? gemm_input(*rt, cols, act, ab, B, prepared) : nullptr;
      parallel_chunks(packed ? rows / kRepackRows : rows, threads, 8, [&](int64_t b, int64_t e) {
        if (packed) {
          rt->gemm(P.data(), cols, in, ab, B, b, e, y.data() + j0 * rows, rows);
        } else if (multi) {
          multi(W.value().get(), rb, cols, act, ab, B, b, e, y.data() + j0 * rows, rows);
        } else {
          for (int64_t r = b; r < e; ++r)
            for (int j = 0; j < B; ++j) y[(j0 + j) * rows + r] = dot(cols, W.value().get() + r * rb, act + j * ab);
        }
      });
    }
  });
  KernelResult r{"gemm", std::string(gguf::type_info(type).name), std::string(isa_name(isa)), threads, rows, cols, batch, t};
  r.weight_gbps = static_cast<double>(rb) * rows / t / 1e9;
  r.gflops = 2.0 * rows * cols * batch / t / 1e9;
  return r;
}

Result<KernelResult> bench_dot(GgmlType type, Isa isa, int64_t cols, double seconds) {
  const KernelTraits* k = kernel_traits(type);
  const DotFn dot = dot_fn(type, isa);
  if (!k || !dot) return Error{"no kernel for " + std::string(gguf::type_info(type).name)};
  size_t rb = 0;
  auto W = random_matrix(type, 1, cols, rb);
  if (!W) return W.error();
  const std::vector<float> x = random_floats(cols, 11);
  std::vector<uint8_t> a(activation_bytes(k->activation, cols));
  quantize_activations(k->activation, x.data(), cols, a.data());
  const int reps = 1000;
  volatile float sink = 0;
  const double t = timed(seconds, [&] {
    for (int i = 0; i < reps; ++i) sink = sink + dot(cols, W.value().get(), a.data());
  }) / reps;
  KernelResult r{"dot", std::string(gguf::type_info(type).name), std::string(isa_name(isa)), 1, 1, cols, 1, t};
  r.weight_gbps = static_cast<double>(rb) / t / 1e9;
  r.gflops = 2.0 * cols / t / 1e9;
  r.ns_per_block = t * 1e9 / (cols / gguf::type_info(type).block_size);
  return r;
}

}  // namespace hearth::kernels
