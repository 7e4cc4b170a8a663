// The reference quantizers against llama.cpp's own vectors
// (testdata/golden/llama.cpp-ref/quant-vectors.gguf: input.f32 [512 x 4], and for each
// type q.<t> = ggml_quantize_chunk(input) and dq.<t> = ggml's dequantization of q.<t>).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "gguf/gguf.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "testdata.h"

namespace hearth::quant {
namespace {

class QuantVectors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = gguf::GgufFile::open((test::testdata_dir() / "golden/llama.cpp-ref/quant-vectors.gguf").string());
    ASSERT_TRUE(f.ok()) << f.message();
    file_ = new gguf::GgufFile(std::move(f.value()));
  }
  static void TearDownTestSuite() {
    delete file_;
    file_ = nullptr;
  }
  static std::span<const uint8_t> tensor(const std::string& name) {
    const gguf::TensorInfo* t = file_->find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    return t ? file_->tensor_data(*t) : std::span<const uint8_t>{};
  }
  static std::vector<float> floats(const std::string& name) {
    auto b = tensor(name);
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), b.size());
    return v;
  }
  static gguf::GgufFile* file_;
};
gguf::GgufFile* QuantVectors::file_ = nullptr;

const GgmlType kTypes[] = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,
                           GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                           GgmlType::IQ4_NL};

std::string tname(GgmlType t) { return std::string(gguf::type_info(t).name); }

TEST_F(QuantVectors, QuantizeIsByteIdentical) {
  std::vector<float> input = floats("input.f32");
  ASSERT_EQ(input.size(), 2048u);
  for (GgmlType t : kTypes) {
    auto want = tensor("q." + tname(t));
    std::vector<uint8_t> got(want.size() + 64, 0xA5);  // poisoned, and a guard past the end
    auto n = quantize_rows(t, input.data(), got.data(), 4, 512, nullptr);
    ASSERT_TRUE(n.ok()) << n.message();
    ASSERT_EQ(n.value(), want.size()) << tname(t);
    size_t diff = 0;
    while (diff < want.size() && got[diff] == want[diff]) ++diff;
    EXPECT_EQ(diff, want.size()) << tname(t) << ": first differing byte " << diff << " of " << want.size();
    for (size_t k = want.size(); k < got.size(); ++k) ASSERT_EQ(got[k], 0xA5) << tname(t) << " wrote past its end";
  }
}

TEST_F(QuantVectors, DequantizeIsBitExact) {
  for (GgmlType t : kTypes) {
    auto q = tensor("q." + tname(t));
    std::vector<float> want = floats("dq." + tname(t));
    std::vector<float> got(want.size(), std::nanf(""));
    ASSERT_TRUE(dequantize(t, q.data(), got.data(), static_cast<int64_t>(got.size())).ok());
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (std::memcmp(&got[i], &want[i], 4) != 0) ++bad;
    EXPECT_EQ(bad, 0u) << tname(t) << ": " << bad << " of " << want.size() << " values differ";
  }
}

// llama.cpp's test-quantize-fns budget: on 4096 values 0.1 + 2 cos(i), the error
// sqrt(sum of squared differences) / n after a round trip stays below 0.002 (0.0075
// for 2-bit and 0.004 for 3-bit types).
TEST(QuantRoundTrip, ErrorWithinLlamaCppBudget) {
  const int n = 32 * 128;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = 0.1f + 2 * std::cos(static_cast<float>(i));
  for (GgmlType t : kTypes) {
    std::vector<uint8_t> q(gguf::type_bytes(t, n, "x").value());
    std::vector<float> y(n, std::nanf(""));
    ASSERT_TRUE(quantize_rows(t, x.data(), q.data(), 1, n, nullptr).ok());
    ASSERT_TRUE(dequantize(t, q.data(), y.data(), n).ok());
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    const double err = std::sqrt(sum) / n;
    const double budget = t == GgmlType::Q2_K ? 0.0075 : t == GgmlType::Q3_K ? 0.0040 : 0.002;
    EXPECT_LT(err, budget) << tname(t);
  }
}

TEST(Fp16, HalfToFloatAndBackIsTheIdentityOnEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(fp32_to_fp16(f), static_cast<uint16_t>((h & 0x8000) | 0x7e00));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

// Every float rounds to the nearer neighbouring half, ties to the even one: checked
// at each midpoint between consecutive halves and one float ulp either side of it.
TEST(Fp16, FloatToHalfRoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float lo = fp16_to_fp32(static_cast<uint16_t>(h));
    const float hi = fp16_to_fp32(static_cast<uint16_t>(h + 1));  // 0x7c00 is infinity: use 2^16
    const double mid_d = (static_cast<double>(lo) + (h + 1 == 0x7c00 ? 65536.0 : static_cast<double>(hi))) / 2;
    const float mid = static_cast<float>(mid_d);
    ASSERT_EQ(static_cast<double>(mid), mid_d) << "midpoint not representable";
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    ASSERT_EQ(fp32_to_fp16(mid), even) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.f)), h) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, INFINITY)), h + 1) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(-mid), even | 0x8000) << std::hex << h;
  }
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
}

TEST(Bf16, RoundsToNearestEvenAndQuietsNaN) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);  // signalling NaN made quiet
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
}

}  // namespace
}  // namespace hearth::quant

namespace hearth::quant {
namespace {

// Ternary types: values already in {-d, 0, d} (d a half) come back exactly, whatever the
// mix of signs and zeros in each block, including all-zero blocks; a block's scale is its
// largest magnitude.
TEST(QuantRoundTrip, TernaryValuesComeBackExactly) {
  std::mt19937 rng(5);
  const int64_t n = 256 * 6;
  std::vector<float> x(n);
  for (int64_t b = 0; b < n / 256; ++b) {
    const float d = fp16_to_fp32(fp32_to_fp16(0.01f * static_cast<float>(b + 1) * 1.37f));
    for (int64_t i = 0; i < 256; ++i) x[b * 256 + i] = b == 3 ? 0.0f : d * static_cast<float>(static_cast<int>(rng() % 3) - 1);
    if (b != 3) x[b * 256 + 7] = -d;  // at least one value of full magnitude
  }
  for (GgmlType t : {GgmlType::TQ1_0, GgmlType::TQ2_0}) {
    std::vector<uint8_t> q(gguf::type_bytes(t, n, "x").value());
    ASSERT_TRUE(quantize_rows(t, x.data(), q.data(), 1, n, nullptr).ok());
    std::vector<float> y(n);
    ASSERT_TRUE(dequantize(t, q.data(), y.data(), n).ok());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], x[i]) << tname(t) << " value " << i;
  }
}

// Real weights (every matrix of TinyStories-656K, 128 wide, and of the synthetic
// 256-wide model with its outlier and edge rows): round-trip error relative to the
// RMS of the tensor stays within a budget per bit width.
TEST(QuantRoundTrip, RealWeightsErrorWithinBudget) {
  struct Budget { GgmlType t; double rel; };
  const Budget budgets[] = {{GgmlType::Q8_0, 0.01}, {GgmlType::Q6_K, 0.03}, {GgmlType::Q5_0, 0.06},
                            {GgmlType::Q5_1, 0.06}, {GgmlType::Q5_K, 0.06}, {GgmlType::Q4_0, 0.12},
                            {GgmlType::Q4_1, 0.12}, {GgmlType::Q4_K, 0.12}, {GgmlType::IQ4_NL, 0.12},
                            {GgmlType::Q3_K, 0.25}, {GgmlType::Q2_K, 0.5}};
  int checked = 0;
  for (auto file : {test::testdata_dir() / "models/TinyStories-656K.f16.gguf",
                    test::reference_dir() / "quant/synth-q-256/synth-q-256.f32.gguf"}) {
    auto f = gguf::GgufFile::open(file.string());
    ASSERT_TRUE(f.ok()) << f.message();
    for (const gguf::TensorInfo& t : f.value().tensors) {
      if (t.n_dims != 2) continue;
      std::vector<float> x(t.n_elements);
      ASSERT_TRUE(dequantize(t.type, f.value().tensor_data(t).data(), x.data(), static_cast<int64_t>(x.size())).ok());
      double ss = 0;
      for (float v : x) ss += double(v) * v;
      const double rms = std::sqrt(ss / x.size());
      for (const Budget& b : budgets) {
        if (t.ne[0] % gguf::type_info(b.t).block_size != 0) continue;
        std::vector<uint8_t> q(gguf::type_bytes(b.t, t.n_elements, t.name).value());
        std::vector<float> y(x.size());
        ASSERT_TRUE(quantize_rows(b.t, x.data(), q.data(), static_cast<int64_t>(t.n_elements / t.ne[0]),
                                  static_cast<int64_t>(t.ne[0]), nullptr).ok());
        ASSERT_TRUE(dequantize(b.t, q.data(), y.data(), static_cast<int64_t>(y.size())).ok());
        double se = 0;
        for (size_t i = 0; i < x.size(); ++i) se += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        const double rel = std::sqrt(se / x.size()) / rms;
        EXPECT_LT(rel, b.rel) << file.filename() << " " << t.name << " as " << tname(b.t);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 150);
}

}  // namespace
}  // namespace hearth::quant
