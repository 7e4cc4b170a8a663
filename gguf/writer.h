// Writing GGUF v3 (or v2) files.
//
// Tensor data is streamed: each tensor is either a span the caller keeps alive until
// write() returns (e.g. a tensor of a mapped input file) or a producer called at write
// time, so a multi-GB model is never held in memory twice. The output goes to a
// temporary file in the target's directory, is fsync'd, and is renamed over the
// target only when complete; on any error the temporary file is removed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace hearth::gguf {

// Where a producer writes a tensor's bytes.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(const void* data, size_t n) = 0;
  Status write(std::span<const uint8_t> b) { return write(b.data(), b.size()); }
};

class GgufWriter {
 public:
  using Producer = std::function<Status(ByteSink&)>;

  // Alignment comes from general.alignment when present (it must be a uint32 power of
  // two, checked by write()), else 32.
  explicit GgufWriter(Metadata metadata, uint32_t version = 3);

  // Adds a tensor after the ones already added. Errors: duplicate name, more than 4
  // dimensions, a row not a multiple of the block size, data of the wrong size.
  Status add_tensor(std::string name, GgmlType type, std::span<const uint64_t> shape,
                    std::span<const uint8_t> data);
  // `produce` must write exactly the tensor's byte size; write() checks it.
  Status add_tensor(std::string name, GgmlType type, std::span<const uint64_t> shape, Producer produce);

  Metadata& metadata() { return md_; }
  const std::vector<TensorInfo>& tensors() const { return infos_; }

  // Writes the whole file atomically to `path`.
  Status write(const std::string& path) const;
  // The two halves of write(), for a set of files that must appear together: writes
  // and syncs a temporary file beside `path` and returns its name; publish() renames
  // it into place, discard() removes it.
  Result<std::string> write_unpublished(const std::string& path) const;
  static Status publish(const std::string& temp, const std::string& path);
  static void discard(const std::string& temp);
  // Writes the whole file to `sink` (no atomicity; for tests and in-memory use).
  Status write_to(ByteSink& sink) const;

 private:
  Result<uint64_t> alignment() const;
  Status check_new(const std::string& name, GgmlType type, std::span<const uint64_t> shape, TensorInfo& out) const;
  Metadata md_;
  uint32_t version_;
  std::vector<TensorInfo> infos_;  // offsets filled by write_to()
  std::vector<Producer> producers_;
};

// A sink that appends to a vector (tests, fuzzing, small files).
class VectorSink : public ByteSink {
 public:
  using ByteSink::write;
  Status write(const void* data, size_t n) override;
  std::vector<uint8_t> bytes;
};

}  // namespace hearth::gguf
