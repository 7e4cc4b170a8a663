// The SIMD dot products against the scalar specification: integer block sums equal
// bit for bit (exhaustively over small domains: every weight level against every
// activation byte, every 6-bit and 8-bit scale), float results within
// n * eps * sum|w_i * a_i| of the scalar result.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "kernels/dots.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "kernels/threads.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace hearth::kernels {
namespace {

using namespace hearth::quant;

class Kernels : public ::testing::Test {
 protected:
  // Every ISA's kernels are compiled in; this machine kind (and CI's) runs all of them.
  void SetUp() override {
    ASSERT_EQ(static_cast<int>(cpu_isa()), static_cast<int>(Isa::Avx512)) << "these tests run every ISA: need AVX-512 VNNI";
  }
};

// Every (weight byte, activation byte) pair in blocks of 32.
TEST_F(Kernels, Q8_0BlockSumsExhaustive) {
  std::vector<std::pair<int, int>> pairs;
  for (int w = -128; w <= 127; ++w)
    for (int a = -127; a <= 127; ++a) pairs.push_back({w, a});
  int blocks = 0;
  for (size_t p = 0; p < pairs.size(); p += 32, ++blocks) {
    BlockQ8_0 x{}, y{};
    for (int j = 0; j < 32; ++j) {
      const auto& [w, a] = pairs[(p + j) % pairs.size()];
      x.qs[j] = static_cast<int8_t>(w);
      y.qs[j] = static_cast<int8_t>(a);
    }
    ASSERT_EQ(scalar::block_isum_q8_0(x, y), avx2::block_isum_q8_0(x, y)) << "block " << blocks;
    ASSERT_EQ(scalar::block_isum_q8_0(x, y), avx512::block_isum_q8_0(x, y)) << "block " << blocks;
  }
  EXPECT_EQ(blocks, 2040);
}

TEST_F(Kernels, Q4_0BlockSumsExhaustive) {
  int blocks = 0;
  for (int a0 = -127; a0 <= 127; a0 += 2) {
    BlockQ4_0 x{};
    BlockQ8_0 y{};
    for (int j = 0; j < 16; ++j) x.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));  // every nibble, both halves
    for (int j = 0; j < 32; ++j) y.qs[j] = static_cast<int8_t>(std::clamp(a0 + j * 7 - 100, -127, 127));
    ASSERT_EQ(scalar::block_isum_q4_0(x, y), avx2::block_isum_q4_0(x, y)) << a0;
    ASSERT_EQ(scalar::block_isum_q4_0(x, y), avx512::block_isum_q4_0(x, y)) << a0;
    for (int j = 0; j < 32; ++j) y.qs[j] = static_cast<int8_t>(a0);  // every activation against every nibble
    ASSERT_EQ(scalar::block_isum_q4_0(x, y), avx2::block_isum_q4_0(x, y)) << a0;
    ASSERT_EQ(scalar::block_isum_q4_0(x, y), avx512::block_isum_q4_0(x, y)) << a0;
    ++blocks;
  }
  EXPECT_EQ(blocks, 128);
}

BlockQ8_K q8k_from(const int8_t* qs, float d) {
  BlockQ8_K y{};
  y.d = d;
  std::memcpy(y.qs, qs, QK_K);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int i = 0; i < 16; ++i) s += qs[16 * g + i];
    y.bsums[g] = static_cast<int16_t>(s);
  }
  return y;
}

TEST_F(Kernels, Q4_KBlockSumsEveryScaleAndMin) {
  std::mt19937 rng(1);
  int blocks = 0;
  for (int base = 0; base < 64; base += 8) {   // sub-block j gets scale base+j and min 63-base-j
    for (int rep = 0; rep < 8; ++rep, ++blocks) {
      BlockQ4_K x{};
      x.d = fp32_to_fp16(0.01f);
      x.dmin = fp32_to_fp16(0.002f);
      for (int j = 0; j < 8; ++j) {
        const uint8_t sc = static_cast<uint8_t>(base + j), m = static_cast<uint8_t>(63 - base - j);
        if (j < 4) {
          x.scales[j] = sc;
          x.scales[j + 4] = m;
        } else {
          x.scales[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
          x.scales[j - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
          x.scales[j] |= static_cast<uint8_t>((m >> 4) << 6);
        }
      }
      for (auto& q : x.qs) q = static_cast<uint8_t>(rep == 0 ? 0xFF : rng());  // rep 0: all nibbles 15
      int8_t qs[QK_K];
      for (int i = 0; i < QK_K; ++i) qs[i] = static_cast<int8_t>(rep == 0 ? 127 : static_cast<int>(rng() % 255) - 127);
      const BlockQ8_K y = q8k_from(qs, 0.5f);
      uint8_t sc[8], m[8];
      scalar::q4_k_scales(x.scales, sc, m);
      for (int j = 0; j < 8; ++j) ASSERT_EQ(sc[j], base + j);
      const BlockSums a = scalar::block_isum_q4_K(x, y), b = avx2::block_isum_q4_K(x, y),
                      c = avx512::block_isum_q4_K(x, y);
      ASSERT_EQ(a.scaled, b.scaled) << blocks;
      ASSERT_EQ(a.mins, b.mins) << blocks;
      ASSERT_EQ(a.scaled, c.scaled) << blocks;
      ASSERT_EQ(a.mins, c.mins) << blocks;
    }
  }
  EXPECT_EQ(blocks, 64);
}

TEST_F(Kernels, Q6_KBlockSumsEveryLevelAndScale) {
  std::mt19937 rng(2);
  for (int sbase = -128; sbase < 128; sbase += 16) {
    for (int rep = 0; rep < 8; ++rep) {
      // Levels 0..63 in order (rep 0) or random; ql/qh packed as the format stores them.
      uint8_t L[QK_K];
      for (int i = 0; i < QK_K; ++i) L[i] = static_cast<uint8_t>(rep == 0 ? i % 64 : rng() % 64);
      BlockQ6_K x{};
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
          const uint8_t* q = L + 128 * h;
          x.ql[64 * h + l] = static_cast<uint8_t>((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
          x.ql[64 * h + l + 32] = static_cast<uint8_t>((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
          x.qh[32 * h + l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                                   ((q[l + 96] >> 4) << 6));
        }
      for (int g = 0; g < 16; ++g) x.scales[g] = static_cast<int8_t>(sbase + g);
      x.d = fp32_to_fp16(0.01f);
      int8_t qs[QK_K];
      for (int i = 0; i < QK_K; ++i) qs[i] = static_cast<int8_t>(rep == 1 ? -127 : static_cast<int>(rng() % 255) - 127);
      const BlockQ8_K y = q8k_from(qs, 0.25f);
      ASSERT_EQ(scalar::block_isum_q6_K(x, y), avx2::block_isum_q6_K(x, y)) << sbase << " " << rep;
      ASSERT_EQ(scalar::block_isum_q6_K(x, y), avx512::block_isum_q6_K(x, y)) << sbase << " " << rep;
      // And the decoding is the format's: compare with the reference dequantizer.
      float deq[QK_K];
      dequantize_q6_K(&x, deq, QK_K);
      for (int i = 0; i < QK_K; ++i)
        ASSERT_EQ(deq[i], fp16_to_fp32(x.d) * x.scales[i / 16] * (static_cast<int>(L[i]) - 32)) << i;
    }
  }
}

// Float results: SIMD vs scalar within n * eps * sum |w_i a_i| of the dequantized values.
TEST_F(Kernels, DotProductsMatchScalarWithinRoundingBound) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.f, 1.f);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                     GgmlType::Q6_K, GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::IQ4_XS}) {
    const KernelTraits* k = kernel_traits(t);
    ASSERT_NE(k, nullptr);
    for (int64_t n : {256, 512, 4096, 11008}) {
      if (n % gguf::type_info(t).block_size) continue;
      std::vector<float> w(n), x(n);
      for (auto& v : w) v = g(rng) * 0.05f;
      for (auto& v : x) v = g(rng) * (rng() % 17 == 0 ? 20.f : 1.f);
      std::vector<uint8_t> wq(gguf::type_bytes(t, n, "w").value()), aq(activation_bytes(k->activation, n));
      ASSERT_TRUE(quantize_rows(t, w.data(), wq.data(), 1, n, nullptr).ok());
      quantize_activations(k->activation, x.data(), n, aq.data());
      std::vector<float> wd(n), ad(n);
      ASSERT_TRUE(dequantize(t, wq.data(), wd.data(), n).ok());
      ASSERT_TRUE(dequantize(k->activation, aq.data(), ad.data(), n).ok());
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += double(wd[i]) * ad[i];
        mag += std::fabs(double(wd[i]) * ad[i]);
      }
      double tol = n * std::numeric_limits<float>::epsilon() * mag;
      if (k->activation == GgmlType::Q8_1) {
        // Q8_1 carries s = d * sum(q) rounded to f16 (half an ulp: 2^-11 relative),
        // which the min term m * s uses as llama.cpp does.
        const auto* yb = reinterpret_cast<const BlockQ8_1*>(aq.data());
        const size_t bsz = gguf::type_info(t).type_size;
        for (int64_t b = 0; b < n / 32; ++b) {
          uint16_t m;
          std::memcpy(&m, wq.data() + b * bsz + 2, 2);  // Q4_1/Q5_1: d, then m
          tol += std::fabs(fp16_to_fp32(m)) * std::fabs(fp16_to_fp32(yb[b].s)) * 0x1p-11;
        }
      }
      const float s = k->dot[0](n, wq.data(), aq.data());
      EXPECT_NEAR(s, exact, tol) << gguf::type_info(t).name << " n=" << n << " scalar";
      for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
        if (!k->dot[static_cast<int>(isa)]) continue;  // this type runs a lower ISA's kernel there
        const float v = k->dot[static_cast<int>(isa)](n, wq.data(), aq.data());
        EXPECT_NEAR(v, s, tol) << gguf::type_info(t).name << " n=" << n << " " << isa_name(isa) << " vs scalar";
      }
    }
  }
}

TEST_F(Kernels, GemvWritesOnlyItsRowRange) {
  const int64_t n = 512, rows = 64;
  std::mt19937 rng(4);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> w(n * rows), x(n);
  for (auto& v : w) v = g(rng);
  for (auto& v : x) v = g(rng);
  const size_t rb = gguf::type_bytes(GgmlType::Q4_0, n, "w").value();
  std::vector<uint8_t> wq(rb * rows), aq(activation_bytes(GgmlType::Q8_0, n));
  ASSERT_TRUE(quantize_rows(GgmlType::Q4_0, w.data(), wq.data(), rows, n, nullptr).ok());
  quantize_activations(GgmlType::Q8_0, x.data(), n, aq.data());
  std::vector<float> y(rows, std::nanf(""));
  gemv(dot_fn(GgmlType::Q4_0, Isa::Avx2), wq.data(), rb, n, aq.data(), 8, 40, y.data());
  for (int64_t r = 0; r < rows; ++r) {
    if (r < 8 || r >= 40) {
      EXPECT_TRUE(std::isnan(y[r])) << r;
    } else {
      EXPECT_FLOAT_EQ(y[r], avx2::dot_q4_0(n, wq.data() + r * rb, aq.data())) << r;
    }
  }
}

TEST(KernelTable, FallsBackToLowerIsaAndKnowsActivationTypes) {
  EXPECT_EQ(dot_fn(GgmlType::IQ4_NL, Isa::Avx512), dot_fn(GgmlType::IQ4_NL, Isa::Avx2));
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                     GgmlType::Q6_K})
    for (int isa = 0; isa < 3; ++isa) EXPECT_NE(kernel_traits(t)->dot[isa], nullptr) << gguf::type_info(t).name << " isa " << isa;
  EXPECT_NE(dot_fn(GgmlType::Q4_0, Isa::Avx512), dot_fn(GgmlType::Q4_0, Isa::Avx2));
  EXPECT_EQ(kernel_traits(GgmlType::Q4_K)->activation, GgmlType::Q8_K);
  EXPECT_EQ(kernel_traits(GgmlType::Q4_0)->activation, GgmlType::Q8_0);
  EXPECT_EQ(kernel_traits(GgmlType::F16)->activation, GgmlType::F16);
  EXPECT_EQ(dot_fn(GgmlType::IQ2_XXS, Isa::Scalar), nullptr);
}

// The eight-row repacked Q4_0, Q8_0, Q4_K and Q6_K GEMVs against one dot() per row: the packed form holds the
// same numbers, so every row agrees within the rounding bound, and a group range writes
// only its own rows.
TEST_F(Kernels, RepackedGemvMatchesDotPerRow) {
  std::mt19937 rng(9);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t rows = 40;
  struct Packed {
    GgmlType type;
    size_t (*bytes)(int64_t, int64_t);
    void (*repack)(const void*, size_t, int64_t, int64_t, void*);
    void (*gemv)(const void*, int64_t, const void*, int64_t, int64_t, float*);
  };
  for (const Packed& k : {Packed{GgmlType::Q4_0, q4_0x8_bytes, repack_q4_0x8, gemv_q4_0x8},
                          Packed{GgmlType::Q8_0, q8_0x8_bytes, repack_q8_0x8, gemv_q8_0x8},
                          Packed{GgmlType::Q4_K, q4_Kx8_bytes, repack_q4_Kx8, gemv_q4_Kx8},
                          Packed{GgmlType::Q5_K, q5_Kx8_bytes, repack_q5_Kx8, gemv_q5_Kx8},
                          Packed{GgmlType::Q6_K, q6_Kx8_bytes, repack_q6_Kx8, gemv_q6_Kx8}})
  for (int64_t n : {512, 32 * 600}) {  // the second spans two 512-block chunks of the q4_0/q8_0 kernels
    const GgmlType act = kernel_traits(k.type)->activation;
    std::vector<float> w(rows * n), x(n);
    for (auto& v : w) v = g(rng) * 0.02f;
    for (auto& v : x) v = g(rng);
    const size_t rb = gguf::type_bytes(k.type, n, "w").value();
    std::vector<uint8_t> wq(rb * rows), aq(activation_bytes(act, n)), packed(k.bytes(rows, n));
    ASSERT_GE(packed.size(), rb * rows);
    ASSERT_TRUE(quantize_rows(k.type, w.data(), wq.data(), rows, n, nullptr).ok());
    quantize_activations(act, x.data(), n, aq.data());
    k.repack(wq.data(), rb, rows, n, packed.data());
    std::vector<float> y(rows, std::nanf(""));
    k.gemv(packed.data(), n, aq.data(), 1, 4, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      if (r < 8 || r >= 32) {
        EXPECT_TRUE(std::isnan(y[r])) << "row " << r << " is outside groups [1, 4)";
        continue;
      }
      const float want = kernel_traits(k.type)->dot[0](n, wq.data() + r * rb, aq.data());
      std::vector<float> wd(n), ad(n);
      ASSERT_TRUE(dequantize(k.type, wq.data() + r * rb, wd.data(), n).ok());
      ASSERT_TRUE(dequantize(act, aq.data(), ad.data(), n).ok());
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wd[i]) * ad[i]);
      EXPECT_NEAR(y[r], want, n * std::numeric_limits<float>::epsilon() * mag) << gguf::type_info(k.type).name << " n " << n << " row " << r;
    }
  }
}

// The multi-token kernels give exactly dot()'s result for every (row, token), for batch
// sizes on both sides of the eight-token tile, and write only their rows.
TEST_F(Kernels, MultiTokenKernelsEqualDotBitForBit) {
  std::mt19937 rng(10);
  std::normal_distribution<float> g(0.f, 1.f);
  int tested = 0;
  // Every type without a repacked form has one on AVX-512 (the float types too); the six
  // of dot_more_impl.h on AVX2 as well.
  const std::vector<std::pair<GgmlType, Isa>> kernels = {
      {GgmlType::Q4_K, Isa::Avx512}, {GgmlType::Q6_K, Isa::Avx512}, {GgmlType::Q4_1, Isa::Avx512}, {GgmlType::Q5_0, Isa::Avx512},
      {GgmlType::Q5_1, Isa::Avx512}, {GgmlType::Q2_K, Isa::Avx512}, {GgmlType::Q3_K, Isa::Avx512}, {GgmlType::Q5_K, Isa::Avx512},
      {GgmlType::Q4_1, Isa::Avx2},   {GgmlType::Q5_0, Isa::Avx2},   {GgmlType::Q5_1, Isa::Avx2},   {GgmlType::Q2_K, Isa::Avx2},
      {GgmlType::Q3_K, Isa::Avx2},   {GgmlType::Q5_K, Isa::Avx2},   {GgmlType::F32, Isa::Avx512},  {GgmlType::F16, Isa::Avx512},
      {GgmlType::BF16, Isa::Avx512}, {GgmlType::IQ4_XS, Isa::Avx512}};
  for (const auto& [type, isa] : kernels) {
    const KernelTraits* k = kernel_traits(type);
    const GemmFn gemm = gemm_fn(k->weight, isa);
    ASSERT_NE(gemm, nullptr) << gguf::type_info(type).name << " isa " << static_cast<int>(isa);
    const DotFn dot = dot_fn(k->weight, isa);
    const int64_t rows = 12, n = 1024;
    std::vector<float> w(rows * n);
    for (auto& v : w) v = g(rng) * 0.02f;
    const size_t rb = gguf::type_bytes(k->weight, n, "w").value(), ab = activation_bytes(k->activation, n);
    std::vector<uint8_t> wq(rb * rows);
    ASSERT_TRUE(quantize_rows(k->weight, w.data(), wq.data(), rows, n, nullptr).ok());
    for (int B : {1, 3, 4, 7, 8, 9, 17}) {
      std::vector<uint8_t> aq(ab * B);
      std::vector<float> x(n);
      for (int j = 0; j < B; ++j) {
        for (auto& v : x) v = g(rng);
        quantize_activations(k->activation, x.data(), n, aq.data() + j * ab);
      }
      std::vector<float> y(B * rows, std::nanf(""));
      gemm(wq.data(), rb, n, aq.data(), ab, B, 2, 10, y.data(), rows);
      for (int j = 0; j < B; ++j)
        for (int64_t r = 0; r < rows; ++r) {
          if (r < 2 || r >= 10) {
            EXPECT_TRUE(std::isnan(y[j * rows + r])) << "row " << r << " is outside [2, 10)";
            continue;
          }
          const float want = dot(n, wq.data() + r * rb, aq.data() + j * ab);
          EXPECT_EQ(std::memcmp(&y[j * rows + r], &want, 4), 0)
              << gguf::type_info(k->weight).name << " isa " << static_cast<int>(isa) << " B " << B << " token " << j << " row " << r << ": " << y[j * rows + r] << " vs " << want;
          ++tested;
        }
    }
  }
  EXPECT_EQ(tested, static_cast<int>(kernels.size()) * (1 + 3 + 4 + 7 + 8 + 9 + 17) * 8);
}

// The float kernels' tails: an odd number of rows (the 2 x 3 block's last row alone), token
// counts around the block's three, and a row length that leaves a 16-value step and a few
// single values after the 64-value loop.
TEST_F(Kernels, FloatMultiTokenTailsEqualDotBitForBit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.f, 1.f);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    const GemmFn gemm = gemm_fn(type, Isa::Avx512);
    ASSERT_NE(gemm, nullptr);
    const DotFn dot = dot_fn(type, Isa::Avx512);
    const int64_t rows = 9, n = 64 * 3 + 16 + 5;
    std::vector<float> w(rows * n);
    for (auto& v : w) v = g(rng) * 0.02f;
    const size_t rb = gguf::type_bytes(type, n, "w").value(), ab = activation_bytes(kernel_traits(type)->activation, n);
    std::vector<uint8_t> wq(rb * rows);
    ASSERT_TRUE(quantize_rows(type, w.data(), wq.data(), rows, n, nullptr).ok());
    for (int B : {1, 2, 3, 5, 6, 7}) {
      std::vector<uint8_t> aq(ab * B);
      std::vector<float> x(n);
      for (int j = 0; j < B; ++j) {
        for (auto& v : x) v = g(rng);
        quantize_activations(kernel_traits(type)->activation, x.data(), n, aq.data() + j * ab);
      }
      std::vector<float> y(B * rows, std::nanf(""));
      gemm(wq.data(), rb, n, aq.data(), ab, B, 1, 8, y.data(), rows);
      for (int j = 0; j < B; ++j)
        for (int64_t r = 0; r < rows; ++r) {
          if (r < 1 || r >= 8) {
            EXPECT_TRUE(std::isnan(y[j * rows + r]));
            continue;
          }
          const float want = dot(n, wq.data() + r * rb, aq.data() + j * ab);
          EXPECT_EQ(std::memcmp(&y[j * rows + r], &want, 4), 0)
              << gguf::type_info(type).name << " B " << B << " token " << j << " row " << r;
        }
    }
  }
}

}  // namespace
}  // namespace hearth::kernels

namespace hearth::kernels {
namespace {

// Random bit patterns (every field, including scales and high bits) against random
// activations in [-127, 127]: the AVX2 integer sums equal the scalar ones.
template <class Block>
Block random_block(std::mt19937& rng) {
  Block b;
  auto* p = reinterpret_cast<uint8_t*>(&b);
  for (size_t i = 0; i < sizeof b; ++i) p[i] = static_cast<uint8_t>(rng());
  return b;
}

template <class Act>
Act random_act(std::mt19937& rng, int n) {
  Act a{};
  for (int i = 0; i < n; ++i) a.qs[i] = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  return a;
}

BlockQ8_K random_q8k(std::mt19937& rng) {
  int8_t qs[QK_K];
  for (auto& v : qs) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  return q8k_from(qs, 0.5f);
}

TEST_F(Kernels, MoreBlockSumsMatchScalarOnRandomBits) {
  std::mt19937 rng(21);
  for (int it = 0; it < 3000; ++it) {
    const auto q41 = random_block<BlockQ4_1>(rng);
    const auto q50 = random_block<BlockQ5_0>(rng);
    const auto q51 = random_block<BlockQ5_1>(rng);
    const auto a0 = random_act<BlockQ8_0>(rng, 32);
    const auto a1 = random_act<BlockQ8_1>(rng, 32);
    ASSERT_EQ(scalar::block_isum_q4_1(q41, a1), avx2::block_isum_q4_1(q41, a1)) << it;
    ASSERT_EQ(scalar::block_isum_q5_0(q50, a0), avx2::block_isum_q5_0(q50, a0)) << it;
    ASSERT_EQ(scalar::block_isum_q5_1(q51, a1), avx2::block_isum_q5_1(q51, a1)) << it;
    ASSERT_EQ(scalar::block_isum_q4_1(q41, a1), avx512::block_isum_q4_1(q41, a1)) << it;
    ASSERT_EQ(scalar::block_isum_q5_0(q50, a0), avx512::block_isum_q5_0(q50, a0)) << it;
    ASSERT_EQ(scalar::block_isum_q5_1(q51, a1), avx512::block_isum_q5_1(q51, a1)) << it;
    const BlockQ8_K y = random_q8k(rng);
    const auto q2 = random_block<BlockQ2_K>(rng);
    const auto q3 = random_block<BlockQ3_K>(rng);
    const auto q5 = random_block<BlockQ5_K>(rng);
    const BlockSums s2 = scalar::block_isum_q2_K(q2, y), v2 = avx2::block_isum_q2_K(q2, y);
    ASSERT_EQ(s2.scaled, v2.scaled) << it;
    ASSERT_EQ(s2.mins, v2.mins) << it;
    ASSERT_EQ(scalar::block_isum_q3_K(q3, y), avx2::block_isum_q3_K(q3, y)) << it;
    const BlockSums s5 = scalar::block_isum_q5_K(q5, y), v5 = avx2::block_isum_q5_K(q5, y);
    ASSERT_EQ(s5.scaled, v5.scaled) << it;
    ASSERT_EQ(s5.mins, v5.mins) << it;
    const BlockSums w2 = avx512::block_isum_q2_K(q2, y), w5 = avx512::block_isum_q5_K(q5, y);
    ASSERT_EQ(s2.scaled, w2.scaled) << it;
    ASSERT_EQ(s2.mins, w2.mins) << it;
    ASSERT_EQ(scalar::block_isum_q3_K(q3, y), avx512::block_isum_q3_K(q3, y)) << it;
    ASSERT_EQ(s5.scaled, w5.scaled) << it;
    ASSERT_EQ(s5.mins, w5.mins) << it;
  }
}

// The ternary block sums: every byte value in every position of qs and qh (TQ1_0 packs
// base-3 digits into bytes, so each of the 256 values decodes to some five trits), against
// random and extreme activations, AVX2 equal to the scalar specification.
TEST_F(Kernels, TernaryBlockSumsEveryByteValue) {
  std::mt19937 rng(31);
  for (int it = 0; it < 512; ++it) {
    BlockTQ1_0 t1{};
    BlockTQ2_0 t2{};
    for (size_t i = 0; i < sizeof t1.qs; ++i) t1.qs[i] = static_cast<uint8_t>(it + 7 * i);
    for (size_t i = 0; i < sizeof t1.qh; ++i) t1.qh[i] = static_cast<uint8_t>(it * 3 + 11 * i);
    for (size_t i = 0; i < sizeof t2.qs; ++i) t2.qs[i] = static_cast<uint8_t>(it + 5 * i);
    BlockQ8_K y = random_q8k(rng);
    if (it % 8 == 0)
      for (int8_t& q : y.qs) q = it % 16 == 0 ? 127 : -127;
    ASSERT_EQ(scalar::block_isum_tq1_0(t1, y), avx2::block_isum_tq1_0(t1, y)) << it;
    ASSERT_EQ(scalar::block_isum_tq2_0(t2, y), avx2::block_isum_tq2_0(t2, y)) << it;
  }
}

// IQ4_XS block sums: every nibble in every position, every 6-bit scale of every block,
// against random and extreme activations.
TEST_F(Kernels, Iq4XsBlockSumsEveryNibbleAndScale) {
  std::mt19937 rng(37);
  for (int it = 0; it < 256; ++it) {
    BlockIQ4_XS x{};
    x.d = fp32_to_fp16(0.5f);
    for (size_t i = 0; i < sizeof x.qs; ++i) x.qs[i] = static_cast<uint8_t>(it + 3 * i);
    for (size_t i = 0; i < sizeof x.scales_l; ++i) x.scales_l[i] = static_cast<uint8_t>(it * 7 + 29 * i);
    x.scales_h = static_cast<uint16_t>(it * 0x1357 + 0x2468);
    BlockQ8_K y = random_q8k(rng);
    if (it % 8 == 0)
      for (int8_t& q : y.qs) q = it % 16 == 0 ? 127 : -127;
    ASSERT_EQ(scalar::block_isum_iq4_xs(x, y), avx2::block_isum_iq4_xs(x, y)) << it;
    if (active_isa() >= Isa::Avx512) ASSERT_EQ(scalar::block_isum_iq4_xs(x, y), avx512::block_isum_iq4_xs(x, y)) << it;
  }
}

}  // namespace
}  // namespace hearth::kernels

namespace hearth::kernels {
namespace {

// The multi-row GEMV kernels against one dot() per row: same rows written, values within
// the rounding bound (n * eps * sum |w a|), remainders of fewer than four rows included.
TEST_F(Kernels, MultiRowGemvMatchesDotPerRow) {
  std::mt19937 rng(8);
  std::normal_distribution<float> g(0.f, 1.f);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    const GemvFn fast = gemv_fn(t, Isa::Avx512);
    ASSERT_NE(fast, nullptr);
    for (int64_t rows : {1, 3, 4, 7, 64}) {
      const int64_t n = 1024;
      std::vector<float> w(rows * n), x(n);
      for (auto& v : w) v = g(rng) * 0.02f;
      for (auto& v : x) v = g(rng);
      const size_t rb = gguf::type_bytes(t, n, "w").value();
      std::vector<uint8_t> wq(rb * rows), aq(activation_bytes(GgmlType::Q8_0, n));
      ASSERT_TRUE(quantize_rows(t, w.data(), wq.data(), rows, n, nullptr).ok());
      quantize_activations(GgmlType::Q8_0, x.data(), n, aq.data());
      std::vector<float> y(rows + 2, std::nanf(""));
      fast(wq.data(), rb, n, aq.data(), 0, rows, y.data() + 1);
      EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[rows + 1])) << "wrote outside its rows";
      for (int64_t r = 0; r < rows; ++r) {
        const float want = kernel_traits(t)->dot[0](n, wq.data() + r * rb, aq.data());
        std::vector<float> wd(n), ad(n);
        ASSERT_TRUE(dequantize(t, wq.data() + r * rb, wd.data(), n).ok());
        ASSERT_TRUE(dequantize(GgmlType::Q8_0, aq.data(), ad.data(), n).ok());
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wd[i]) * ad[i]);
        EXPECT_NEAR(y[r + 1], want, n * std::numeric_limits<float>::epsilon() * mag) << gguf::type_info(t).name << " row " << r;
      }
    }
  }
}

}  // namespace
}  // namespace hearth::kernels

namespace hearth::kernels {
namespace {

// Both range splitters visit every index exactly once, whatever the split, including
// fewer items than slices and an empty range.
TEST(Threads, SplittersCoverTheRangeOnce) {
  for (int64_t n : {0, 1, 2, 7, 16, 1000}) {
    for (int threads : {1, 2, 3}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      parallel_chunks(n, threads, 8, [&](int64_t b, int64_t e) {
        EXPECT_LT(b, e);
        for (int64_t i = b; i < e; ++i) ++seen[i];
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << "chunks n " << n << " threads " << threads << " i " << i;
      std::vector<std::atomic<int>> rows(static_cast<size_t>(n));
      parallel_rows(n, threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) ++rows[i];
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(rows[i].load(), 1) << "rows n " << n << " threads " << threads << " i " << i;
      // Stealing: the same, with one thread made slow so that the others take pieces of
      // its range (checked: some pieces ran on a thread other than their range's owner).
      for (int pieces : {1, 4, 8}) {
        std::vector<std::atomic<int>> stolen(static_cast<size_t>(n));
        std::atomic<int> foreign{0};
        parallel_rows_stealing(n, threads, pieces, [&](int64_t b, int64_t e) {
          EXPECT_LT(b, e);
          int owner = 0;  // the range [n t / threads, n (t + 1) / threads) holding b
          while (owner + 1 < threads && n * (owner + 1) / threads <= b) ++owner;
          if (threads > 1 && owner != omp_get_thread_num()) ++foreign;
          if (omp_get_thread_num() == 0 && threads > 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
          for (int64_t i = b; i < e; ++i) ++stolen[i];
        });
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_EQ(stolen[i].load(), 1) << "stealing n " << n << " threads " << threads << " pieces " << pieces << " i " << i;
        }
        if (n == 1000 && threads > 1 && pieces == 8) {
          EXPECT_GT(foreign.load(), 0) << "threads " << threads;
        }
      }
    }
  }
}

}  // namespace
}  // namespace hearth::kernels
