#include <gtest/gtest.h>

#include <map>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "testdata.h"

namespace hearth::gguf {
namespace {

using test::fs::path;

// Copies metadata and tensors of `f` into a writer (tensor data by reference).
GgufWriter copy_of(const GgufFile& f) {
  GgufWriter w(f.metadata, f.version);
  for (const TensorInfo& t : f.tensors) {
    Status s = w.add_tensor(t.name, t.type, t.shape(), f.tensor_data(t));
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return w;
}

size_t entries_in(const path& dir) {
  return static_cast<size_t>(std::distance(test::fs::directory_iterator(dir), test::fs::directory_iterator()));
}

TEST(GgufWriter, RoundTripIsByteIdenticalForEveryValidFile) {
  test::TempDir tmp;
  int n = 0;
  for (const path& root : {test::testdata_dir(), test::reference_dir()}) {
    for (const std::string& rel : test::gguf_files_under(root)) {
      auto f = GgufFile::open((root / rel).string());
      if (!f.ok()) continue;  // the invalid ones are covered by the reader tests
      path out = tmp.path() / "out.gguf";
      Status s = copy_of(f.value()).write(out.string());
      ASSERT_TRUE(s.ok()) << rel << ": " << s.message();
      auto a = test::read_bytes(root / rel);
      auto b = test::read_bytes(out);
      ASSERT_EQ(a.size(), b.size()) << rel;
      EXPECT_TRUE(a == b) << rel << " differs after a round trip";
      ++n;
    }
  }
  EXPECT_GE(n, 44);
  EXPECT_EQ(entries_in(tmp.path()), 1u) << "temporary files left behind";
}

TEST(GgufWriter, StreamsProducersAndAlignsToGeneralAlignment) {
  Metadata md;
  ASSERT_TRUE(md.add("general.architecture", Value::string("test")).ok());
  ASSERT_TRUE(md.add("general.alignment", Value::of<uint32_t>(64)).ok());
  GgufWriter w(md);
  const uint64_t shape_a[] = {3};
  const uint64_t shape_b[] = {64, 2};
  float a[3] = {1, 2, 3};
  ASSERT_TRUE(w.add_tensor("a", GgmlType::F32, shape_a, {reinterpret_cast<uint8_t*>(a), sizeof a}).ok());
  int calls = 0;
  ASSERT_TRUE(w.add_tensor("b", GgmlType::Q8_0, shape_b, [&](ByteSink& s) -> Status {
                 ++calls;
                 std::vector<uint8_t> block(34, 7);
                 for (int i = 0; i < 4; ++i)
                   if (Status st = s.write(block); !st) return st;
                 return {};
               }).ok());
  test::TempDir tmp;
  path out = tmp.path() / "x.gguf";
  ASSERT_TRUE(w.write(out.string()).ok());
  EXPECT_EQ(calls, 1);
  auto f = GgufFile::open(out.string());
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f.value().alignment, 64u);
  EXPECT_EQ(f.value().data_offset % 64, 0u);
  ASSERT_EQ(f.value().tensors.size(), 2u);
  EXPECT_EQ(f.value().tensors[1].offset, 64u);
  auto d = f.value().tensor_data(f.value().tensors[1]);
  ASSERT_EQ(d.size(), 136u);
  EXPECT_EQ(d[135], 7);
  EXPECT_EQ(f.value().file_size % 64, 0u);
}

TEST(GgufWriter, RejectsBadTensorsWhenAdded) {
  GgufWriter w{Metadata{}};
  const uint64_t s8[] = {8};
  const uint64_t s33[] = {33};
  const uint64_t s5d[] = {1, 1, 1, 1, 1};
  std::vector<uint8_t> d32(32);
  ASSERT_TRUE(w.add_tensor("t", GgmlType::F32, s8, d32).ok());
  Status dup = w.add_tensor("t", GgmlType::F32, s8, d32);
  EXPECT_EQ(dup.message(), "duplicate tensor name 't'");
  Status size = w.add_tensor("u", GgmlType::F32, s8, std::span<const uint8_t>(d32).first(31));
  EXPECT_EQ(size.message(), "tensor 'u' data is 31 bytes, expected 32");
  Status block = w.add_tensor("v", GgmlType::Q4_0, s33, d32);
  EXPECT_NE(block.message().find("not a multiple of the q4_0 block size 32"), std::string::npos) << block.message();
  Status dims = w.add_tensor("w", GgmlType::F32, s5d, d32);
  EXPECT_NE(dims.message().find("5 dimensions"), std::string::npos) << dims.message();
}

TEST(GgufWriter, FailedWriteLeavesTargetUntouchedAndNoTempFile) {
  test::TempDir tmp;
  path out = tmp.path() / "model.gguf";
  {
    std::ofstream(out) << "previous contents";
  }
  GgufWriter w{Metadata{}};
  const uint64_t s8[] = {8};
  ASSERT_TRUE(w.add_tensor("short", GgmlType::F32, s8, [](ByteSink& s) -> Status {
                 uint8_t b[8] = {};
                 return s.write(b, sizeof b);  // 8 of the 32 bytes
               }).ok());
  Status s = w.write(out.string());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "tensor 'short': producer wrote 8 bytes, expected 32");
  EXPECT_EQ(test::read_text(out), "previous contents");
  EXPECT_EQ(entries_in(tmp.path()), 1u);

  GgufWriter failing{Metadata{}};
  ASSERT_TRUE(failing.add_tensor("boom", GgmlType::F32, s8, [](ByteSink&) -> Status {
                       return Error{"source went away"};
                     }).ok());
  Status f = failing.write(out.string());
  EXPECT_EQ(f.message(), "tensor 'boom': source went away");
  EXPECT_EQ(test::read_text(out), "previous contents");
  EXPECT_EQ(entries_in(tmp.path()), 1u);
}

TEST(GgufWriter, ErrorsForBadAlignmentAndUnwritableDirectory) {
  Metadata md;
  md.set("general.alignment", Value::of<uint32_t>(48));
  GgufWriter w(md);
  VectorSink sink;
  Status s = w.write_to(sink);
  EXPECT_EQ(s.message(), "key 'general.alignment' is 48, not a power of two");
  GgufWriter ok{Metadata{}};
  Status d = ok.write("/nonexistent-dir/x.gguf");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.message().find("/nonexistent-dir"), std::string::npos) << d.message();
}

TEST(GgufMetadata, SetMovesKeyToTheEndAndAddRejectsDuplicates) {
  Metadata md;
  ASSERT_TRUE(md.add("a", Value::of<uint32_t>(1)).ok());
  ASSERT_TRUE(md.add("b", Value::of<uint32_t>(2)).ok());
  md.set("a", Value::of<uint32_t>(3));
  ASSERT_EQ(md.size(), 2u);
  EXPECT_EQ(md.entries()[0].key, "b");
  EXPECT_EQ(md.entries()[1].key, "a");
  EXPECT_EQ(md.get<uint32_t>("a").value(), 3u);
  EXPECT_EQ(md.add("b", Value::of<uint32_t>(9)).message(), "duplicate key 'b' (kv #0 and #2)");
  EXPECT_TRUE(md.erase("b"));
  EXPECT_FALSE(md.erase("b"));
  EXPECT_EQ(md.get<uint32_t>("a").value(), 3u);
}

}  // namespace
}  // namespace hearth::gguf
