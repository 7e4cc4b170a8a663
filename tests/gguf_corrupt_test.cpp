// The corruption suite: one hand-made bad file per failure mode, truncation of real
// files at every header byte and at many points of the data, and random byte damage.
// Each must give an Error (never a signal; the suite also runs under ASan+UBSan).
#include <gtest/gtest.h>

#include <random>

#include "gguf/gguf.h"
#include "testdata.h"

namespace hearth::gguf {
namespace {

// Builds GGUF bytes field by field, so any field can be made wrong.
struct Raw {
  std::vector<uint8_t> b;
  Raw& u8(uint8_t v) { b.push_back(v); return *this; }
  Raw& u32(uint32_t v) { return put(&v, 4); }
  Raw& u64(uint64_t v) { return put(&v, 8); }
  Raw& str(std::string_view s) { u64(s.size()); return put(s.data(), s.size()); }
  Raw& put(const void* p, size_t n) {
    auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& kv_u32(std::string_view k, uint32_t v) { return str(k).u32(4).u32(v); }
  Raw& kv_str(std::string_view k, std::string_view v) { return str(k).u32(8).str(v); }
  Raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }
  Raw& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Raw& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

// The bytes are rejected with a message that names the file and contains `fragment`.
testing::AssertionResult Rejected(const Raw& r, std::string_view fragment) {
  auto f = GgufFile::parse(r.b, "bad.gguf");
  if (f.ok()) return testing::AssertionFailure() << "parsed, expected an error containing: " << fragment;
  const std::string& m = f.message();
  if (m.find(fragment) == std::string::npos || m.rfind("bad.gguf: ", 0) != 0)
    return testing::AssertionFailure() << "message: " << m << "\n  expected to contain: " << fragment;
  return testing::AssertionSuccess();
}

TEST(GgufCorrupt, AWellFormedHandMadeFileParses) {
  Raw r;
  r.header(1, 1).kv_str("general.architecture", "x").tensor("a", {8}, 0, 0).pad_to(32).zeros(32);
  auto f = GgufFile::parse(r.b, "ok.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f.value().tensors[0].n_bytes, 32u);
}

TEST(GgufCorrupt, HeaderFields) {
  EXPECT_TRUE(Rejected(Raw().u32(0x47475546).u32(3).u64(0).u64(0), "magic is 'FUGG'"));
  EXPECT_TRUE(Rejected(Raw().u8('G').u8('G'), "truncated: magic at offset 0 needs 4 bytes, 2 remain"));
  EXPECT_TRUE(Rejected(Raw().header(0, 0, 1), "unsupported version 1"));
  EXPECT_TRUE(Rejected(Raw().header(0, 0, 4), "unsupported version 4"));
  EXPECT_TRUE(Rejected(Raw().header(0, 0, 0x03000000), "big-endian"));
  EXPECT_TRUE(Rejected(Raw().header(0, uint64_t{1} << 60), "kv_count 1152921504606846976 cannot fit"));
  EXPECT_TRUE(Rejected(Raw().header(~uint64_t{0}, 0), "tensor_count 18446744073709551615 cannot fit"));
}

TEST(GgufCorrupt, KeysAndValues) {
  EXPECT_TRUE(Rejected(Raw().header(0, 1).u64(1 << 20).zeros(64), "kv #0 key length 1048576 exceeds the limit"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).u64(100).zeros(20), "truncated: kv #0 key"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("dict1").u32(13).zeros(8), "key 'dict1' has invalid value type 13"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("s").u32(8).u64(~uint64_t{0}).zeros(8), "key 's': string value length"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("s").u32(8).u64(1000).zeros(8), "key 's': truncated: string value"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("b").u32(7).u8(2), "key 'b': bool value is 2"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("v").u32(4).u8(1), "key 'v': truncated: value"));
  EXPECT_TRUE(Rejected(Raw().header(0, 2).kv_u32("k", 1).kv_u32("k", 2), "duplicate key 'k' (kv #0 and #1)"));
}

TEST(GgufCorrupt, Arrays) {
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("a").u32(9).u32(77).u64(0), "key 'a': array has invalid element type 77"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("a").u32(9).u32(4).u64(uint64_t{1} << 40).zeros(16),
                  "key 'a': array length 1099511627776 exceeds the limit"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("a").u32(9).u32(10).u64(1000).zeros(16),
                  "array length 1000 of uint64 cannot fit in the 16 bytes"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("a").u32(9).u32(8).u64(3).str("x"), "array length 3 of string cannot fit"));
  Raw nested;
  nested.header(0, 1).str("n").u32(9);
  for (int i = 0; i < 12; ++i) nested.u32(9).u64(1);
  nested.zeros(32);
  EXPECT_TRUE(Rejected(nested, "arrays nested deeper than 8 levels"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("a").u32(9).u32(7).u64(2).u8(1).u8(5), "bool array element 1 is 5"));
}

TEST(GgufCorrupt, Alignment) {
  EXPECT_TRUE(Rejected(Raw().header(0, 1).kv_u32("general.alignment", 48), "'general.alignment' is 48, not a power of two"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).kv_u32("general.alignment", 0), "'general.alignment' is 0"));
  EXPECT_TRUE(Rejected(Raw().header(0, 1).str("general.alignment").u32(10).u64(32),
                  "'general.alignment' has type uint64, expected uint32"));
}

TEST(GgufCorrupt, TensorInfos) {
  auto one = [](std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t off) {
    Raw r;
    r.header(1, 0).tensor(name, ne, type, off).pad_to(32).zeros(256);
    return r;
  };
  EXPECT_TRUE(Rejected(one("t5", {1, 1, 1, 1, 1}, 0, 0), "tensor 't5' has 5 dimensions, at most 4 allowed"));
  EXPECT_TRUE(Rejected(one("q42", {32}, 4, 0), "tensor 'q42' has unknown type id 4"));
  EXPECT_TRUE(Rejected(one("big", {99}, 1000, 0), "tensor 'big' has unknown type id 1000"));
  EXPECT_TRUE(Rejected(one("neg", {~uint64_t{0}}, 0, 0), "tensor 'neg' ne[0] = 18446744073709551615 is negative"));
  EXPECT_TRUE(Rejected(one("ovf", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0), "tensor 'ovf' element count overflows"));
  EXPECT_TRUE(Rejected(one("f64", {uint64_t{1} << 62}, 28, 0), "tensor 'f64': byte size"));
  EXPECT_TRUE(Rejected(one("row", {33, 2}, 2, 0), "tensor 'row' row length ne[0] = 33 is not a multiple of the q4_0 block size 32"));
  EXPECT_TRUE(Rejected(one("mis", {8}, 0, 4), "tensor 'mis' data offset 4 is not a multiple of the alignment 32"));
  EXPECT_TRUE(Rejected(one("far", {8}, 0, 1 << 20), "tensor 'far' data [1048576, +32)"));
  EXPECT_TRUE(Rejected(one("wrap", {8}, 0, ~uint64_t{31}), "lies outside the file"));
  EXPECT_TRUE(Rejected(one("huge", {uint64_t{1} << 40}, 0, 0), "lies outside the file"));
  Raw longname;
  longname.header(1, 0).u64(1 << 17).zeros(1 << 17);
  EXPECT_TRUE(Rejected(longname, "name of tensor #0 length 131072 exceeds the limit"));
  Raw dup;
  dup.header(2, 0).tensor("d", {8}, 0, 0).tensor("d", {8}, 0, 32).pad_to(32).zeros(64);
  EXPECT_TRUE(Rejected(dup, "duplicate tensor name 'd' (tensors #0 and #1)"));
  Raw overlap;
  overlap.header(2, 0).tensor("x", {16}, 0, 0).tensor("y", {8}, 0, 32).pad_to(32).zeros(128);
  EXPECT_TRUE(Rejected(overlap, "tensor 'x' data [0, 64) overlaps tensor 'y' at 32"));
  Raw trunc;
  trunc.header(1, 0).str("t").u32(4).u64(8).u64(8);
  EXPECT_TRUE(Rejected(trunc, "truncated: tensor 't' ne[2] at offset 53 needs 8 bytes, 0 remain"));
}

// Truncating a real file anywhere before its end must be an error: every byte of the
// header, and many points of the data section.
TEST(GgufCorrupt, TruncationOfRealFilesAlwaysFails) {
  for (const char* rel : {"models/stories260K.gguf", "models/TinyStories-656K-Q8_0.gguf"}) {
    auto bytes = test::read_bytes(test::testdata_dir() / rel);
    auto whole = GgufFile::parse(bytes, rel);
    ASSERT_TRUE(whole.ok()) << whole.message();
    const size_t header = whole.value().data_offset;
    for (size_t n = 0; n < header; ++n) {
      auto f = GgufFile::parse(std::span<const uint8_t>(bytes).first(n), rel);
      ASSERT_FALSE(f.ok()) << rel << " truncated to " << n << " bytes parsed";
    }
    for (size_t n = header; n < bytes.size(); n += 331) {
      auto f = GgufFile::parse(std::span<const uint8_t>(bytes).first(n), rel);
      ASSERT_FALSE(f.ok()) << rel << " truncated to " << n << " bytes parsed";
      EXPECT_NE(f.message().find("lies outside the file"), std::string::npos) << f.message();
    }
    EXPECT_FALSE(GgufFile::parse(std::span<const uint8_t>(bytes).first(bytes.size() - 1), rel).ok());
  }
}

// A vocabulary file has no tensors, so its header is the whole file: cut it at many places.
TEST(GgufCorrupt, TruncationOfALargeHeader) {
  auto bytes = test::read_bytes(test::testdata_dir() / "vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(GgufFile::parse(bytes, "gpt-2").ok());
  for (size_t n = 0; n < bytes.size(); n += 1 + n / 50)
    ASSERT_FALSE(GgufFile::parse(std::span<const uint8_t>(bytes).first(n), "gpt-2").ok()) << n;
}

// Random damage to the header: parse or error, and whatever parses is self-consistent.
TEST(GgufCorrupt, RandomHeaderDamageNeverCrashes) {
  auto bytes = test::read_bytes(test::testdata_dir() / "models/stories260K.gguf");
  const size_t header = 14176;
  std::mt19937_64 rng(20261122);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t at = rng() % header;
      b[at] = (rng() % 3 == 0) ? 0xff : static_cast<uint8_t>(b[at] ^ (1u << (rng() % 8)));
    }
    auto f = GgufFile::parse(b, "damaged");
    if (!f.ok()) {
      ++rejected;
      EXPECT_FALSE(f.message().empty());
      continue;
    }
    ++parsed;
    for (const TensorInfo& t : f.value().tensors) {
      ASSERT_LE(f.value().data_offset + t.offset + t.n_bytes, b.size());
    }
  }
  EXPECT_GT(rejected, 100);
  EXPECT_GT(parsed, 100);  // flips inside strings and floats leave a valid file
}

}  // namespace
}  // namespace hearth::gguf
