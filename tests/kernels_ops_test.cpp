// The transformer ops besides matmul (kernels/ops.h) and the repacked GEMMs, each SIMD
// path against its scalar reference: activations' bytes identical, the GEMMs equal to
// the GEMV bit for bit, float results within a bound derived from the inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/blas.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/repack.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace hearth::kernels {
namespace {

constexpr float kEps = std::numeric_limits<float>::epsilon();

class Ops : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(static_cast<int>(cpu_isa()), static_cast<int>(Isa::Avx512)) << "these tests run every ISA: need AVX-512 VNNI";
  }
};

// Q8_0 activations: the AVX2 quantizer writes the scalar one's bytes, including values
// that sit exactly on a rounding tie and all-zero blocks.
TEST_F(Ops, Q8_0ActivationsEqualScalarBytes) {
  std::mt19937 rng(21);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t n = 32 * 64;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  for (int i = 0; i < 32; ++i) x[i] = 0.f;                                          // block 0: zeros
  for (int i = 32; i < 64; ++i) x[i] = (i % 2 ? 0.5f : -0.5f) + float(i - 48);      // block 1: ties x * 127/amax
  for (int i = 64; i < 96; ++i) x[i] = (i - 80) * (127.f / 16.f) / 127.f * 2.5f;   // block 2: k + 0.5 steps
  std::vector<uint8_t> a(activation_bytes(GgmlType::Q8_0, n)), b(a.size());
  quantize_activations(GgmlType::Q8_0, x.data(), n, a.data(), Isa::Scalar);
  quantize_activations(GgmlType::Q8_0, x.data(), n, b.data(), Isa::Avx2);
  EXPECT_EQ(a, b);
}

// Q8_K activations: the AVX2 quantizer writes the reference quantizer's bytes (scale,
// quants, block sums), for random blocks, zeros, a block whose largest magnitude is
// negative and shared by a positive value (the first wins), and exact halves (ties).
TEST_F(Ops, Q8_KActivationsEqualReferenceBytes) {
  std::mt19937 rng(22);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t n = 256 * 12;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng) * (1 + static_cast<float>(rng() % 100));
  for (int i = 0; i < 256; ++i) x[i] = 0.f;                                 // block 0: zeros
  for (int i = 256; i < 512; ++i) x[i] = static_cast<float>(i % 7) - 3.f;   // block 1: small integers
  x[256 + 10] = -127.f, x[256 + 20] = 127.f;                                // first of equal magnitudes
  for (int i = 512; i < 768; ++i) x[i] = (static_cast<float>(i % 255) - 127.f) + 0.5f;  // block 2: ties at scale 1
  x[512] = -127.f;
  std::vector<uint8_t> a(activation_bytes(GgmlType::Q8_K, n)), b(a.size());
  quantize_activations(GgmlType::Q8_K, x.data(), n, a.data(), Isa::Scalar);
  quantize_activations(GgmlType::Q8_K, x.data(), n, b.data(), Isa::Avx2);
  for (int64_t blk = 0; blk < n / 256; ++blk)
    EXPECT_EQ(std::memcmp(a.data() + blk * sizeof(quant::BlockQ8_K), b.data() + blk * sizeof(quant::BlockQ8_K), sizeof(quant::BlockQ8_K)), 0)
        << "block " << blk;
}

// The repacked GEMMs equal the repacked GEMVs bit for bit, for every column count
// around the tiles (eight columns for q4_0/q8_0, four for q4_K/q6_K), and write only their
// groups' rows.
TEST_F(Ops, RepackedGemmEqualsGemvBitForBit) {
  std::mt19937 rng(22);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t rows = 40, n = 256 * 3;
  struct Packed {
    GgmlType type;
    size_t (*bytes)(int64_t, int64_t);
    void (*repack)(const void*, size_t, int64_t, int64_t, void*);
    void (*gemv)(const void*, int64_t, const void*, int64_t, int64_t, float*);
    void (*gemm)(const void*, int64_t, const void*, size_t, int, int64_t, int64_t, float*, int64_t);
  };
  for (const Packed& k : {Packed{GgmlType::Q4_0, q4_0x8_bytes, repack_q4_0x8, gemv_q4_0x8, gemm_q4_0x8},
                          Packed{GgmlType::Q8_0, q8_0x8_bytes, repack_q8_0x8, gemv_q8_0x8, gemm_q8_0x8},
                          Packed{GgmlType::Q4_K, q4_Kx8_bytes, repack_q4_Kx8, gemv_q4_Kx8, gemm_q4_Kx8},
                          Packed{GgmlType::Q5_K, q5_Kx8_bytes, repack_q5_Kx8, gemv_q5_Kx8, gemm_q5_Kx8},
                          Packed{GgmlType::Q6_K, q6_Kx8_bytes, repack_q6_Kx8, gemv_q6_Kx8, gemm_q6_Kx8}}) {
    const GgmlType act_type = kernel_traits(k.type)->activation;
    ASSERT_EQ(repacked_traits(k.type, Isa::Avx512)->gemm, k.gemm);
    EXPECT_EQ(repacked_traits(k.type, Isa::Avx2), nullptr);
    std::vector<float> w(rows * n);
    for (auto& v : w) v = g(rng) * 0.02f;
    const size_t rb = gguf::type_bytes(k.type, n, "w").value();
    std::vector<uint8_t> wq(rb * rows), packed(k.bytes(rows, n));
    ASSERT_TRUE(quant::quantize_rows(k.type, w.data(), wq.data(), rows, n, nullptr).ok());
    k.repack(wq.data(), rb, rows, n, packed.data());
    for (int B : {1, 2, 3, 4, 5, 7, 8, 9, 17, 33}) {
      const size_t ab = activation_bytes(act_type, n);
      std::vector<float> x(B * n);
      for (auto& v : x) v = g(rng);
      std::vector<uint8_t> act(ab * B);
      for (int j = 0; j < B; ++j) quantize_activations(act_type, x.data() + j * n, n, act.data() + j * ab);
      std::vector<float> y(B * rows, std::nanf(""));
      std::vector<uint8_t> prepared;
      const RepackedTraits* rt = repacked_traits(k.type, Isa::Avx512);
      k.gemm(packed.data(), n, gemm_input(*rt, n, act.data(), ab, B, prepared), ab, B, 1, 4, y.data(), rows);
      for (int j = 0; j < B; ++j) {
        std::vector<float> want(rows, std::nanf(""));
        k.gemv(packed.data(), n, act.data() + j * ab, 1, 4, want.data());
        for (int64_t r = 0; r < rows; ++r) {
          if (r < 8 || r >= 32) {
            EXPECT_TRUE(std::isnan(y[j * rows + r])) << "row " << r << " is outside groups [1, 4)";
            continue;
          }
          EXPECT_EQ(y[j * rows + r], want[r]) << gguf::type_info(k.type).name << " B " << B << " column " << j << " row " << r;
        }
      }
    }
  }
}

// exp(x - max) and its sum: within 4 ulp of std::exp element-wise (including the
// tail that is not a multiple of eight and arguments past the underflow).
TEST_F(Ops, ExpShiftedMatchesStdExp) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-30.f, 5.f);
  for (int64_t n : {1, 7, 8, 29, 300}) {
    std::vector<float> x(n);
    for (auto& v : x) v = u(rng);
    if (n > 3) x[2] = -200.f;
    const float max = *std::max_element(x.begin(), x.end());
    std::vector<float> a = x, b = x;
    const float sa = exp_shifted(a.data(), n, max, Isa::Scalar), sb = exp_shifted(b.data(), n, max, Isa::Avx2);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(b[i], a[i], 4 * kEps * a[i] + 1e-38f) << "n " << n << " i " << i << " x " << x[i] - max;
    EXPECT_NEAR(sb, sa, n * kEps * sa);
  }
}

TEST_F(Ops, SwigluMatchesScalar) {
  std::mt19937 rng(24);
  std::uniform_real_distribution<float> u(-100.f, 100.f);
  const int64_t n = 1000 + 5;
  std::vector<float> gte(n), up(n);
  for (auto& v : gte) v = u(rng) * (u(rng) > 0 ? 1.f : 0.01f);
  for (auto& v : up) v = u(rng);
  std::vector<float> a = gte, b = gte;
  swiglu(a.data(), up.data(), n, Isa::Scalar);
  swiglu(b.data(), up.data(), n, Isa::Avx2);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(b[i], a[i], 8 * kEps * std::fabs(a[i]) + 1e-30f) << "x " << gte[i];
}

// Attention scores (K transposed) and weighted values (V by position) over F32 and F16
// caches against the scalar reference, within n * eps * sum |products|; positions not a
// multiple of four, eight or 32, strides wider than the data.
TEST_F(Ops, AttentionMatchesScalar) {
  std::mt19937 rng(25);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t hd = 64, n_ctx = 77, kstride = n_ctx + 3, vstride = 3 * hd;
  for (bool half : {false, true}) {
    std::vector<float> kf(hd * kstride), vf(n_ctx * vstride), q(hd), p(n_ctx);
    for (auto& v : kf) v = g(rng);
    for (auto& v : vf) v = g(rng);
    for (auto& v : q) v = g(rng);
    for (auto& v : p) v = std::fabs(g(rng));
    std::vector<uint16_t> kh(kf.size()), vh(vf.size());
    for (size_t i = 0; i < kf.size(); ++i) kh[i] = quant::fp32_to_fp16(kf[i]);
    for (size_t i = 0; i < vf.size(); ++i) vh[i] = quant::fp32_to_fp16(vf[i]);
    const void* k = half ? static_cast<const void*>(kh.data()) : kf.data();
    const void* v = half ? static_cast<const void*>(vh.data()) : vf.data();
    auto kv = [&](const std::vector<float>& f, const std::vector<uint16_t>& h, size_t i) { return half ? quant::fp16_to_fp32(h[i]) : f[i]; };
    for (int64_t n : {1, 5, 8, 45, 77}) {
      std::vector<float> sa(n + 1, std::nanf("")), sb(n + 1, std::nanf(""));
      attn_scores(q.data(), k, kstride, half, hd, n, 0.125f, sa.data(), Isa::Scalar);
      attn_scores(q.data(), k, kstride, half, hd, n, 0.125f, sb.data(), Isa::Avx2);
      EXPECT_TRUE(std::isnan(sb[n])) << "wrote past n";
      for (int64_t t = 0; t < n; ++t) {
        double mag = 0;
        for (int64_t i = 0; i < hd; ++i) mag += std::fabs(q[i] * kv(kf, kh, i * kstride + t));
        EXPECT_NEAR(sb[t], sa[t], hd * kEps * mag * 0.125) << "half " << half << " t " << t;
      }
      std::vector<float> oa(hd + 1, std::nanf("")), ob(hd + 1, std::nanf(""));
      attn_values(p.data(), v, vstride, half, hd, n, oa.data(), Isa::Scalar);
      attn_values(p.data(), v, vstride, half, hd, n, ob.data(), Isa::Avx2);
      EXPECT_TRUE(std::isnan(ob[hd])) << "wrote past hd";
      for (int64_t i = 0; i < hd; ++i) {
        double mag = 0;
        for (int64_t t = 0; t < n; ++t) mag += std::fabs(p[t] * kv(vf, vh, t * vstride + i));
        EXPECT_NEAR(ob[i], oa[i], n * kEps * mag) << "half " << half << " i " << i;
      }
    }
  }
}

// The norms against float64 definitions (both paths), and AVX2 against scalar within two
// ulp (they differ only in the order of the double sums); weights and bias optional.
TEST_F(Ops, NormsMatchDefinitions) {
  std::mt19937 rng(31);
  std::normal_distribution<float> g(0.f, 3.f);
  for (int64_t n : {1, 7, 64, 2053}) {
    std::vector<float> x(n), w(n), b(n);
    for (auto& v : x) v = g(rng) + 1.5f;
    for (auto& v : w) v = g(rng);
    for (auto& v : b) v = g(rng);
    const float eps = 1e-5f;
    double ss = 0, sum = 0;
    for (float v : x) ss += double(v) * v, sum += v;
    const double mean = sum / n;
    double var = 0;
    for (float v : x) var += (v - mean) * (v - mean);
    var /= n;
    for (bool weighted : {false, true}) {
      const float* wp = weighted ? w.data() : nullptr;
      const float* bp = weighted ? b.data() : nullptr;
      std::vector<float> rs(n + 1, std::nanf("")), ra = rs, ls = rs, la = rs;
      rms_norm(x.data(), wp, rs.data(), n, eps, Isa::Scalar);
      rms_norm(x.data(), wp, ra.data(), n, eps, Isa::Avx2);
      layer_norm(x.data(), wp, bp, ls.data(), n, eps, Isa::Scalar);
      layer_norm(x.data(), wp, bp, la.data(), n, eps, Isa::Avx2);
      EXPECT_TRUE(std::isnan(ra[n]) && std::isnan(la[n])) << "wrote past n";
      for (int64_t i = 0; i < n; ++i) {
        const double wi = weighted ? w[i] : 1.0, bi = weighted ? b[i] : 0.0;
        const double rms_want = x[i] / std::sqrt(ss / n + eps) * wi;
        const double ln_want = (x[i] - mean) / std::sqrt(var + eps) * wi + bi;
        EXPECT_NEAR(rs[i], rms_want, 4 * kEps * std::fabs(rms_want) + 1e-30) << "n " << n << " i " << i;
        // float (x - mean) loses up to eps * |mean| before the scale.
        const double ln_tol = 8 * kEps * (std::fabs(ln_want) + std::fabs(bi) + std::fabs(mean * wi) / std::sqrt(var + eps));
        EXPECT_NEAR(ls[i], ln_want, ln_tol) << "n " << n << " i " << i;
        EXPECT_NEAR(ra[i], rs[i], 2 * kEps * std::fabs(rs[i]) + 1e-30) << "n " << n << " i " << i;
        EXPECT_NEAR(la[i], ls[i], 2 * kEps * (std::fabs(ls[i]) + std::fabs(bi)) + 1e-30) << "n " << n << " i " << i;
      }
    }
    // In place.
    std::vector<float> in = x, out(n);
    rms_norm(in.data(), w.data(), in.data(), n, eps, Isa::Avx2);
    rms_norm(x.data(), w.data(), out.data(), n, eps, Isa::Avx2);
    EXPECT_EQ(in, out);
  }
}

// Softmax with scale, soft-capping and a causal mask against a float64 definition, both
// paths; a fully masked row becomes zeros, masked positions exactly zero.
TEST_F(Ops, SoftmaxWithMaskAndSoftcapMatchesDefinition) {
  std::mt19937 rng(32);
  std::normal_distribution<float> g(0.f, 4.f);
  for (int64_t n : {1, 5, 8, 37, 300}) {
    std::vector<float> x(n), mask(n);
    for (auto& v : x) v = g(rng);
    for (int64_t i = 0; i < n; ++i) mask[i] = i > n / 2 ? -INFINITY : (i % 3 == 0 ? -1.5f : 0.f);
    for (float softcap : {0.f, 5.f})
      for (bool masked : {false, true}) {
        std::vector<double> y(n);
        double max = -INFINITY;
        for (int64_t i = 0; i < n; ++i) {
          y[i] = 0.7 * double(x[i]);
          if (softcap > 0) y[i] = softcap * std::tanh(y[i] / softcap);
          if (masked) y[i] += mask[i];
          max = std::max(max, y[i]);
        }
        double sum = 0;
        for (auto& v : y) sum += (v = std::exp(v - max));
        for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
          std::vector<float> got = x;
          softmax(got.data(), n, 0.7f, softcap, masked ? mask.data() : nullptr, isa);
          for (int64_t i = 0; i < n; ++i) {
            const double want = y[i] / sum;
            if (masked && mask[i] == -INFINITY) {
              EXPECT_EQ(got[i], 0.f) << "masked position " << i;
              continue;
            }
            // Errors in the logits of a few ulp of their size (|y| <= ~15) move e^y by as much.
            EXPECT_NEAR(got[i], want, 64 * kEps * want + 1e-12) << "isa " << int(isa) << " n " << n << " cap " << softcap << " i " << i;
          }
        }
      }
  }
  std::vector<float> all(9, 1.f), none(9, -INFINITY);
  softmax(all.data(), 9, 1.f, 0.f, none.data(), Isa::Avx2);
  for (float v : all) EXPECT_EQ(v, 0.f);
}

// SiLU, GELU (tanh form) and GeGLU against float64 definitions and each other.
TEST_F(Ops, ActivationsMatchDefinitions) {
  std::mt19937 rng(33);
  std::uniform_real_distribution<float> u(-12.f, 12.f);
  const int64_t n = 1003;
  std::vector<float> x(n), up(n);
  for (auto& v : x) v = u(rng) * (u(rng) > 0 ? 1.f : 0.01f);
  for (auto& v : up) v = u(rng);
  x[0] = 0.f, x[1] = -0.f, x[2] = 80.f, x[3] = -80.f;
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    std::vector<float> s = x, ge = x, gg = x;
    silu(s.data(), n, isa);
    gelu(ge.data(), n, isa);
    geglu(gg.data(), up.data(), n, isa);
    for (int64_t i = 0; i < n; ++i) {
      const double xi = x[i];
      const double silu_want = xi / (1 + std::exp(-xi));
      const double gelu_want = 0.5 * xi * (1 + std::tanh(0.7978845608028654 * xi * (1 + 0.044715 * xi * xi)));
      EXPECT_NEAR(s[i], silu_want, 8 * kEps * std::fabs(silu_want) + 1e-37) << "isa " << int(isa) << " x " << xi;
      // The scalar path evaluates 1 + tanh(z) in float: near x = -3 and below it cancels,
      // an error of eps relative to the 1 (times |x| / 2).
      EXPECT_NEAR(ge[i], gelu_want, 8 * kEps * (std::fabs(gelu_want) + std::fabs(xi))) << "isa " << int(isa) << " x " << xi;
      EXPECT_NEAR(gg[i], gelu_want * up[i], 8 * kEps * (std::fabs(gelu_want) + std::fabs(xi)) * std::fabs(up[i]) + 1e-37)
          << "isa " << int(isa) << " x " << xi;
    }
  }
}

TEST_F(Ops, AddAndMulAreExact) {
  std::mt19937 rng(34);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t n = 77;
  std::vector<float> a(n), b(n);
  for (auto& v : a) v = g(rng);
  for (auto& v : b) v = g(rng);
  for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
    std::vector<float> s(n + 1, std::nanf("")), m(n + 1, std::nanf(""));
    add(a.data(), b.data(), s.data(), n, isa);
    mul(a.data(), b.data(), m.data(), n, isa);
    EXPECT_TRUE(std::isnan(s[n]) && std::isnan(m[n]));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(s[i], a[i] + b[i]);
      EXPECT_EQ(m[i], a[i] * b[i]);
    }
    std::vector<float> in = a;
    add(in.data(), b.data(), in.data(), n, isa);  // in place
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(in[i], a[i] + b[i]);
  }
}

// Causal attention of several queries over F32 and F16 caches against a float64
// definition (with the half cache's rounding of q and the probabilities as the only
// deliberate difference), on every ISA and head sizes 64 and 128 (the AVX-512 path's
// four and two rows per pass) and 40 (no AVX-512 path); one call for all queries (rows
// grouped eight at a time) equal to one call per query, and rows of one KV head with
// the same positions (a token's query heads) each equal to that query alone.
TEST_F(Ops, CausalAttentionOfManyQueriesMatchesDefinition) {
  std::mt19937 rng(35);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t n_ctx = 40;
  const int p0 = 20, nq = 11;
  for (int64_t hd : {64, 128, 40})
    for (bool half : {false, true}) {
      const int64_t kstride = n_ctx + 5, vstride = 2 * hd;  // two heads per V row
      std::vector<float> kf(hd * kstride), vf(n_ctx * vstride), q(nq * hd);
      for (auto& v : kf) v = g(rng);
      for (auto& v : vf) v = g(rng);
      for (auto& v : q) v = g(rng);
      if (half) {  // values the cache can hold exactly
        for (auto& v : kf) v = quant::fp16_to_fp32(quant::fp32_to_fp16(v));
        for (auto& v : vf) v = quant::fp16_to_fp32(quant::fp32_to_fp16(v));
      }
      std::vector<uint16_t> kh(kf.size()), vh(vf.size());
      for (size_t i = 0; i < kf.size(); ++i) kh[i] = quant::fp32_to_fp16(kf[i]);
      for (size_t i = 0; i < vf.size(); ++i) vh[i] = quant::fp32_to_fp16(vf[i]);
      KvHead kv;
      kv.kt = half ? static_cast<const void*>(kh.data()) : kf.data();
      kv.k_stride = kstride;
      kv.v = half ? static_cast<const void*>(vh.data()) : vf.data();
      kv.v_stride = vstride;
      kv.half = half;
      kv.hd = hd;
      const float scale = 0.125f;
      for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        std::vector<float> out(nq * hd, std::nanf("")), one(hd), scratch(attend_scratch(p0 + nq, hd));
        attend(kv, q.data(), hd, nq, p0, scale, 0.f, out.data(), hd, scratch.data(), isa);
        for (int j = 0; j < nq; ++j) {
          const int n = p0 + j + 1;
          std::vector<double> p(n);
          double max = -INFINITY, sum = 0;
          for (int t = 0; t < n; ++t) {
            double s = 0;
            for (int64_t i = 0; i < hd; ++i) s += double(q[j * hd + i]) * kf[i * kstride + t];
            max = std::max(max, p[t] = s * scale);
          }
          for (auto& v : p) sum += (v = std::exp(v - max));
          for (int64_t i = 0; i < hd; ++i) {
            double want = 0, mag = 0;
            for (int t = 0; t < n; ++t) want += p[t] / sum * vf[t * vstride + i], mag += std::fabs(vf[t * vstride + i]) * p[t] / sum;
            // half rounds q (scores move by ~2^-11 of |q||k| ~ 0.1, probabilities by that
            // relative) and the probabilities (2^-11 relative).
            const double tol = half ? 3e-3 * mag : 1e-5 * mag + 1e-7;
            EXPECT_NEAR(out[j * hd + i], want, tol) << "hd " << hd << " half " << half << " isa " << int(isa) << " query " << j << " i " << i;
          }
          attend(kv, &q[j * hd], 0, 1, p0 + j, scale, 0.f, one.data(), 0, scratch.data(), isa);
          EXPECT_EQ(std::memcmp(one.data(), &out[j * hd], hd * sizeof(float)), 0) << "hd " << hd << " isa " << int(isa) << " query " << j << " alone differs";
        }
        // Rows 0 … R-1 all at the last position (as a token's query heads): each equals
        // that query attended alone.
        for (int R : {3, 8}) {
          const float* qs[kAttendRows];
          float* os[kAttendRows];
          int ns[kAttendRows];
          std::vector<float> rows_out(R * hd, std::nanf(""));
          for (int r = 0; r < R; ++r) qs[r] = &q[r * hd], os[r] = &rows_out[r * hd], ns[r] = p0 + nq;
          attend_rows(kv, qs, ns, R, scale, 0.f, os, scratch.data(), isa);
          for (int r = 0; r < R; ++r) {
            attend(kv, &q[r * hd], 0, 1, p0 + nq - 1, scale, 0.f, one.data(), 0, scratch.data(), isa);
            EXPECT_EQ(std::memcmp(one.data(), &rows_out[r * hd], hd * sizeof(float)), 0) << "hd " << hd << " isa " << int(isa) << " R " << R << " row " << r;
          }
        }
      }
    }
}

// Weighted sums of Q8_0 value rows: AVX2 against the scalar reference, within
// n * eps * sum |p * v|.
TEST_F(Ops, Q8_0AttentionValuesMatchScalar) {
  std::mt19937 rng(27);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t hd = 64, nkv = 3 * hd, n = 37;
  const size_t row = activation_bytes(GgmlType::Q8_0, nkv);
  std::vector<uint8_t> v(row * n);
  std::vector<float> x(nkv), p(n);
  for (int64_t t = 0; t < n; ++t) {
    for (auto& e : x) e = g(rng);
    quantize_activations(GgmlType::Q8_0, x.data(), nkv, v.data() + t * row);
  }
  for (auto& e : p) e = std::fabs(g(rng));
  const size_t head = activation_bytes(GgmlType::Q8_0, hd);
  std::vector<float> oa(hd + 1, std::nanf("")), ob(hd + 1, std::nanf("")), deq(nkv);
  attn_values_q8_0(p.data(), v.data() + head, row, hd, n, oa.data(), Isa::Scalar);
  attn_values_q8_0(p.data(), v.data() + head, row, hd, n, ob.data(), Isa::Avx2);
  EXPECT_TRUE(std::isnan(ob[hd]));
  std::vector<double> mag(hd, 0.0);
  for (int64_t t = 0; t < n; ++t) {
    ASSERT_TRUE(quant::dequantize(GgmlType::Q8_0, v.data() + t * row, deq.data(), nkv).ok());
    for (int64_t i = 0; i < hd; ++i) mag[i] += std::fabs(p[t] * deq[hd + i]);
  }
  for (int64_t i = 0; i < hd; ++i) EXPECT_NEAR(ob[i], oa[i], n * kEps * mag[i]) << i;
}

// The OpenBLAS path for float weights against the dot products, within the rounding
// bound n * eps * sum |w x| (f16/bf16 activations rounded to the weight type first, as
// the dots see them), for slices that do not divide the rows.
TEST_F(Ops, BlasGemmMatchesDots) {
  std::mt19937 rng(28);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t rows = 1100, n = 1024;
  const int B = 5;
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    std::vector<float> w(rows * n), x(B * n), xr(B * n);
    for (auto& v : w) v = g(rng) * 0.05f;
    for (auto& v : x) v = g(rng);
    const size_t rb = gguf::type_bytes(t, n, "w").value(), ab = activation_bytes(t, n);
    std::vector<uint8_t> wq(rb * rows), act(ab * B);
    ASSERT_TRUE(quant::quantize_rows(t, w.data(), wq.data(), rows, n, nullptr).ok());
    for (int j = 0; j < B; ++j) {
      quantize_activations(t, &x[j * n], n, &act[j * ab]);
      ASSERT_TRUE(quant::dequantize(t, &act[j * ab], &xr[j * n], n).ok());
    }
    std::vector<float> y(B * (rows + 1), std::nanf(""));
    gemm_blas(t, wq.data(), rb, rows, n, xr.data(), B, y.data(), rows + 1, 2);
    std::vector<float> wd(n);
    for (int64_t r = 0; r < rows; r += 7) {
      ASSERT_TRUE(quant::dequantize(t, wq.data() + r * rb, wd.data(), n).ok());
      for (int j = 0; j < B; ++j) {
        const float want = dot_fn(t, Isa::Scalar)(n, wq.data() + r * rb, &act[j * ab]);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wd[i]) * xr[j * n + i]);
        EXPECT_NEAR(y[j * (rows + 1) + r], want, n * kEps * mag) << gguf::type_info(t).name << " row " << r << " token " << j;
      }
    }
    for (int j = 0; j < B; ++j) EXPECT_TRUE(std::isnan(y[j * (rows + 1) + rows])) << "wrote past the rows";
  }
}

// Rounding to half: F16C and the scalar conversion agree on every value, subnormal
// halves and overflow to infinity included.
TEST_F(Ops, RoundToHalfEqualsScalar) {
  std::mt19937 rng(26);
  std::vector<float> x;
  for (int e = -30; e <= 17; ++e)
    for (int i = 0; i < 40; ++i) x.push_back(std::ldexp(1.f + float(rng() % 4096) / 4096.f, e) * (i % 2 ? -1.f : 1.f));
  x.push_back(65520.f);
  x.push_back(1e-8f);
  std::vector<float> a = x, b = x;
  round_to_half(a.data(), static_cast<int64_t>(a.size()), Isa::Scalar);
  round_to_half(b.data(), static_cast<int64_t>(b.size()), Isa::Avx2);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(a[i], b[i]) << x[i];
}

// RoPE: without scaling the angles are pos * base^(-2i/n); linear scaling divides them
// by the factor; rope_freqs divide pair i's angle by its factor; YaRN with factor 1 is
// the unscaled rotation, and otherwise keeps the fastest pairs (extrapolated) and
// interpolates the slowest, with the magnitude 1 + 0.1 ln(factor). Checked against
// float64 evaluations of those definitions.
TEST(Rope, AnglesFollowTheDefinitions) {
  const int n_rot = 64, pos = 37;
  std::vector<float> cs(n_rot);
  auto angle = [&](int i, double base) { return pos * std::pow(base, -2.0 * i / n_rot); };
  RopeParams p;
  p.n_rot = n_rot;
  rope_cache(p, pos, cs.data());
  for (int i = 0; i < n_rot / 2; ++i) {
    EXPECT_NEAR(cs[2 * i], std::cos(angle(i, 10000)), 2e-4) << i;
    EXPECT_NEAR(cs[2 * i + 1], std::sin(angle(i, 10000)), 2e-4) << i;
  }
  p.freq_scale = 0.25f;
  rope_cache(p, pos, cs.data());
  for (int i = 0; i < n_rot / 2; ++i) EXPECT_NEAR(cs[2 * i + 1], std::sin(angle(i, 10000) / 4), 2e-4) << i;
  std::vector<float> ff(n_rot / 2);
  for (int i = 0; i < n_rot / 2; ++i) ff[i] = 1.f + i % 3;
  p.freq_scale = 1.f;
  p.freq_factors = ff.data();
  rope_cache(p, pos, cs.data());
  for (int i = 0; i < n_rot / 2; ++i) EXPECT_NEAR(cs[2 * i + 1], std::sin(angle(i, 10000) / ff[i]), 2e-4) << i;
  // YaRN, factor 1: no change.
  p.freq_factors = nullptr;
  p.ext_factor = 1.f;
  p.n_ctx_orig = 4096;
  std::vector<float> plain(n_rot);
  RopeParams q;
  q.n_rot = n_rot;
  rope_cache(q, pos, plain.data());
  rope_cache(p, pos, cs.data());
  for (int i = 0; i < n_rot; ++i) EXPECT_FLOAT_EQ(cs[i], plain[i]) << i;
  // YaRN, factor 4: pair 0 (fastest) extrapolated, the last pair interpolated, all
  // scaled by mscale.
  p.freq_scale = 0.25f;
  rope_cache(p, pos, cs.data());
  const double mscale = 1 + 0.1 * std::log(4.0);
  EXPECT_NEAR(cs[0], std::cos(angle(0, 10000)) * mscale, 2e-4);
  EXPECT_NEAR(cs[1], std::sin(angle(0, 10000)) * mscale, 2e-4);
  EXPECT_NEAR(cs[n_rot - 1], std::sin(angle(n_rot / 2 - 1, 10000) / 4) * mscale, 2e-4);
  // Applying the rotation: normal pairs neighbours, NeoX pairs i with i + n/2; the
  // vector's length is kept (mscale 1).
  std::vector<float> v(n_rot), w;
  for (int i = 0; i < n_rot; ++i) v[i] = float(i % 7) - 3.f;
  for (bool neox : {false, true}) {
    w = v;
    rope_apply(w.data(), plain.data(), n_rot, neox);
    double l0 = 0, l1 = 0;
    for (int i = 0; i < n_rot; ++i) l0 += v[i] * v[i], l1 += w[i] * w[i];
    EXPECT_NEAR(l1, l0, 1e-3 * l0);
    const int a = neox ? 1 : 2, b = neox ? 1 + n_rot / 2 : 3;  // pair 1
    EXPECT_NEAR(w[a], v[a] * plain[2] - v[b] * plain[3], 1e-5);
    EXPECT_NEAR(w[b], v[a] * plain[3] + v[b] * plain[2], 1e-5);
  }
}

}  // namespace
}  // namespace hearth::kernels
