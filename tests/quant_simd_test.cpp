// The SIMD scale searches against the scalar specification, bit for bit, on many
// kinds of blocks: normal, heavy-tailed, exact grid values (rounding ties), constant,
// all-zero, tiny (subnormal-scale) and huge.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "quant/cpu.h"
#include "quant/search.h"

namespace hearth::quant::detail {
namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

std::vector<float> make_block(std::mt19937& rng, int n, int kind) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) {
    switch (kind % 8) {
      case 0: x[i] = g(rng) * 0.02f; break;
      case 1: x[i] = g(rng) * (i % 7 == 3 ? 30.f : 1.f); break;                        // outliers
      case 2: x[i] = 0.25f * static_cast<float>(static_cast<int>(rng() % 16) - 8); break;  // exact grid, ties
      case 3: x[i] = 0.0123f; break;                                                  // max == min
      case 4: x[i] = 0.f; break;
      case 5: x[i] = g(rng) * 1e-7f; break;
      case 6: x[i] = std::fabs(g(rng)) * 1e3f; break;                                 // all positive, large
      default: x[i] = -std::fabs(u(rng)); break;                                      // all negative
    }
  }
  return x;
}

class SimdSearch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(static_cast<int>(cpu_isa()), static_cast<int>(Isa::Avx2)) << "this test needs an AVX2 CPU";
  }
};

}  // namespace
}  // namespace hearth::quant::detail

namespace hearth::quant::detail {
namespace {

// Eight blocks of one kind each (mixed kinds across lanes), transposed for the x8 searches.
struct Group {
  int n;
  std::vector<float> x, w, xt, wt;  // x/w: block-major; xt/wt: element-major
};
Group make_group(std::mt19937& rng, int n, int iter, bool abs_weights) {
  Group g{n, std::vector<float>(8 * n), std::vector<float>(8 * n), std::vector<float>(8 * n), std::vector<float>(8 * n)};
  for (int j = 0; j < 8; ++j) {
    auto b = make_block(rng, n, iter * 8 + j);
    for (int i = 0; i < n; ++i) {
      g.x[j * n + i] = b[i];
      g.w[j * n + i] = abs_weights ? std::fabs(b[i]) + 0.01f * (i % 5) : b[i] * b[i] + (i % 3 == 0 ? 0.f : 1e-3f);
      g.xt[i * 8 + j] = g.x[j * n + i];
      g.wt[i * 8 + j] = g.w[j * n + i];
    }
  }
  return g;
}

TEST_F(SimdSearch, EightLaneAsymmetricSearchMatchesScalar) {
  std::mt19937 rng(5);
  struct P { int n, nmax; float rmin, rdelta; int nstep; bool mad, qkx3; };
  const P params[] = {{16, 3, -0.5f, 0.1f, 15, true, false},  {32, 15, -1.f, 0.1f, 20, false, false},
                      {32, 31, -0.5f, 0.1f, 15, false, false}, {16, 3, -0.9f, 0.05f, 36, false, true},
                      {32, 15, -0.9f, 0.05f, 36, false, true}, {32, 31, -0.9f, 0.05f, 36, false, true}};
  for (int iter = 0; iter < 1200; ++iter) {
    const P& p = params[iter % 6];
    Group g = make_group(rng, p.n, iter, iter & 1);
    uint8_t Lt[256], aux[32];
    float sc[8], nm[8];
    make_qkx_quants_x8(p.n, p.nmax, g.xt.data(), g.wt.data(), Lt, sc, nm, p.rmin, p.rdelta, p.nstep, p.mad, p.qkx3);
    for (int j = 0; j < 8; ++j) {
      uint8_t L[32];
      float m = 0;
      float s = p.qkx3 ? make_qkx3_quants(p.n, p.nmax, &g.x[j * p.n], &g.w[j * p.n], L, &m, aux, p.rmin, p.rdelta, p.nstep, p.mad)
                       : make_qkx2_quants(p.n, p.nmax, &g.x[j * p.n], &g.w[j * p.n], L, &m, aux, p.rmin, p.rdelta, p.nstep, p.mad);
      ASSERT_TRUE(same_bits(s, sc[j]) && same_bits(m, nm[j])) << "iter " << iter << " lane " << j << ": " << s << "/" << m
                                                              << " vs " << sc[j] << "/" << nm[j];
      for (int i = 0; i < p.n; ++i) ASSERT_EQ(L[i], Lt[i * 8 + j]) << "iter " << iter << " lane " << j << " i " << i;
    }
  }
}

TEST_F(SimdSearch, EightLaneSymmetricSearchMatchesScalar) {
  std::mt19937 rng(9);
  const int nmaxes[] = {4, 8, 16, 32};
  for (int iter = 0; iter < 1200; ++iter) {
    const int n = (iter & 1) ? 16 : 32, nmax = nmaxes[iter % 4];
    Group g = make_group(rng, n, iter, false);
    int8_t Lt[256];
    float sc[8];
    make_qx_quants_x8(n, nmax, g.xt.data(), g.wt.data(), Lt, sc);
    for (int j = 0; j < 8; ++j) {
      int8_t L[32];
      float s = make_qx_quants(n, nmax, &g.x[j * n], L, 1, &g.w[j * n]);
      ASSERT_TRUE(same_bits(s, sc[j])) << "iter " << iter << " lane " << j << ": " << s << " vs " << sc[j];
      for (int i = 0; i < n; ++i) ASSERT_EQ(L[i], Lt[i * 8 + j]) << "iter " << iter << " lane " << j << " i " << i;
    }
  }
}

}  // namespace
}  // namespace hearth::quant::detail

namespace hearth::quant::detail {
namespace {

// The block helpers (eight at a time plus a scalar remainder) against plain loops.
TEST_F(SimdSearch, BlockHelpersMatchScalarIncludingRemainders) {
  std::mt19937 rng(3);
  for (int nsub : {1, 7, 8, 9, 16, 21}) {
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<float> x, w;
      for (int j = 0; j < nsub; ++j) {
        auto b = make_block(rng, 32, rep * 31 + j);
        for (float v : b) {
          x.push_back(v);
          w.push_back(std::fabs(v) + 0.5f);
        }
      }
      std::vector<uint8_t> La(32 * nsub), Lb(32 * nsub);
      std::vector<float> sa(nsub), sb(nsub), ma(nsub), mb(nsub);
      asym_blocks(nsub, 32, 15, x.data(), w.data(), La.data(), sa.data(), ma.data(), -0.9f, 0.05f, 36, false, true);
      uint8_t aux[32];
      for (int j = 0; j < nsub; ++j)
        sb[j] = make_qkx3_quants(32, 15, &x[32 * j], &w[32 * j], &Lb[32 * j], &mb[j], aux, -0.9f, 0.05f, 36, false);
      ASSERT_EQ(La, Lb) << nsub;
      ASSERT_EQ(0, std::memcmp(sa.data(), sb.data(), 4 * nsub));
      ASSERT_EQ(0, std::memcmp(ma.data(), mb.data(), 4 * nsub));
      std::vector<int8_t> Sa(32 * nsub), Sb(32 * nsub);
      sym_blocks(nsub, 32, 8, x.data(), w.data(), Sa.data(), sa.data());
      for (int j = 0; j < nsub; ++j) sb[j] = make_qx_quants(32, 8, &x[32 * j], &Sb[32 * j], 1, &w[32 * j]);
      ASSERT_EQ(Sa, Sb) << nsub;
      ASSERT_EQ(0, std::memcmp(sa.data(), sb.data(), 4 * nsub));
    }
  }
}

}  // namespace
}  // namespace hearth::quant::detail
