#include <gtest/gtest.h>

#include <set>

#include "gguf/types.h"

namespace hearth::gguf {
namespace {

TEST(GgufTypes, EveryRowIsIndexedByItsOwnIdAndNamedUniquely) {
  std::set<std::string_view> names;
  int known = 0;
  for (uint32_t id = 0; id < kMaxTypeId; ++id) {
    const TypeInfo* t = type_info(id);
    if (!t) continue;
    ++known;
    EXPECT_EQ(static_cast<uint32_t>(t->type), id);
    EXPECT_TRUE(names.insert(t->name).second) << t->name;
    EXPECT_EQ(type_from_name(t->name), t->type);
    EXPECT_GT(t->block_size, 0u);
    EXPECT_GT(t->type_size, 0u);
  }
  EXPECT_EQ(known, 32);
}

TEST(GgufTypes, RetiredAndUnknownIdsAreRejected) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 41u, 1000u, 0xffffffffu})
    EXPECT_EQ(type_info(id), nullptr) << id;
}

TEST(GgufTypes, NamesMatchCaseInsensitively) {
  EXPECT_EQ(type_from_name("Q4_K"), GgmlType::Q4_K);
  EXPECT_EQ(type_from_name("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(type_from_name("BF16"), GgmlType::BF16);
  EXPECT_FALSE(type_from_name("q4_2").has_value());
  EXPECT_FALSE(type_from_name("").has_value());
}

// Block sizes re-derived from the block layouts (ggml-common.h): d/dmin are fp16
// (2 bytes) unless noted, QK_K = 256.
TEST(GgufTypes, BlockBytesFollowFromTheBlockLayouts) {
  struct Row { GgmlType t; uint32_t block, bytes; };
  const Row rows[] = {
      {GgmlType::Q4_0, 32, 2 + 16},
      {GgmlType::Q4_1, 32, 2 + 2 + 16},
      {GgmlType::Q5_0, 32, 2 + 4 + 16},
      {GgmlType::Q5_1, 32, 2 + 2 + 4 + 16},
      {GgmlType::Q8_0, 32, 2 + 32},
      {GgmlType::Q8_1, 32, 2 + 2 + 32},
      {GgmlType::Q2_K, 256, 16 + 64 + 2 + 2},             // scales, qs, d, dmin
      {GgmlType::Q3_K, 256, 32 + 64 + 12 + 2},            // hmask, qs, scales, d
      {GgmlType::Q4_K, 256, 2 + 2 + 12 + 128},            // d, dmin, scales, qs
      {GgmlType::Q5_K, 256, 2 + 2 + 12 + 32 + 128},       // + qh
      {GgmlType::Q6_K, 256, 128 + 64 + 16 + 2},           // ql, qh, scales, d
      {GgmlType::Q8_K, 256, 4 + 256 + 2 * 16},            // float d, qs, int16 bsums
      {GgmlType::IQ2_XXS, 256, 2 + 2 * 32},
      {GgmlType::IQ2_XS, 256, 2 + 2 * 32 + 8},
      {GgmlType::IQ3_XXS, 256, 2 + 3 * 256 / 8},
      {GgmlType::IQ1_S, 256, 2 + 32 + 2 * 8},
      {GgmlType::IQ4_NL, 32, 2 + 16},
      {GgmlType::IQ3_S, 256, 2 + 64 + 8 + 32 + 4},
      {GgmlType::IQ2_S, 256, 2 + 64 + 8 + 8},
      {GgmlType::IQ4_XS, 256, 2 + 2 + 4 + 128},
      {GgmlType::IQ1_M, 256, 32 + 16 + 8},
      {GgmlType::TQ1_0, 256, (256 - 4 * 256 / 64) / 5 + 256 / 64 + 2},
      {GgmlType::TQ2_0, 256, 64 + 2},
      {GgmlType::MXFP4, 32, 1 + 16},
      {GgmlType::F32, 1, 4}, {GgmlType::F16, 1, 2}, {GgmlType::BF16, 1, 2}, {GgmlType::F64, 1, 8},
      {GgmlType::I8, 1, 1}, {GgmlType::I16, 1, 2}, {GgmlType::I32, 1, 4}, {GgmlType::I64, 1, 8},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(type_info(r.t).block_size, r.block) << type_info(r.t).name;
    EXPECT_EQ(type_info(r.t).type_size, r.bytes) << type_info(r.t).name;
  }
}

TEST(GgufTypes, TypeBytesChecksBlocksAndOverflow) {
  EXPECT_EQ(type_bytes(GgmlType::Q4_K, 512, "t").value(), 288u);
  auto bad = type_bytes(GgmlType::Q4_0, 33, "tensor 'x'");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("tensor 'x'"), std::string::npos);
  EXPECT_NE(bad.message().find("33"), std::string::npos);
  auto big = type_bytes(GgmlType::F64, uint64_t{1} << 62, "t");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.message().find("overflows"), std::string::npos);
}

}  // namespace
}  // namespace hearth::gguf
