// Reading GGUF files (v2 and v3, little-endian).
//
// The reader treats every file as hostile: each read is bounded by the bytes that
// remain, every count and length is capped before anything is allocated, and every
// offset and size is checked for overflow and for lying inside the file. Any
// rejection is an Error naming the file, the field/key/tensor, and the bad value.
// Tensor data is never copied: tensor_data() points into the read-only mapping.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/result.h"
#include "gguf/types.h"
#include "gguf/value.h"

namespace hearth::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

// Caps on what a file may declare, beyond "fits in the bytes that remain".
struct Limits {
  uint64_t max_key_bytes = 65535;
  uint64_t max_tensor_name_bytes = 65535;
  uint64_t max_string_bytes = uint64_t{1} << 30;
  uint64_t max_array_elems = uint64_t{1} << 31;
  int max_array_depth = 8;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  int n_dims = 0;
  std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the contiguous dimension
  uint64_t offset = 0;                            // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;

  std::span<const uint64_t> shape() const { return {ne.data(), static_cast<size_t>(n_dims)}; }
};

// A read-only mapping of a whole file. Empty files map to an empty span.
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class GgufFile {
 public:
  // Maps `path` read-only and parses its header. Reads nothing past the tensor infos.
  static Result<GgufFile> open(const std::string& path, const Limits& limits = {});
  // Parses bytes the caller keeps alive (tests, fuzzing). `name` prefixes errors.
  static Result<GgufFile> parse(std::span<const uint8_t> bytes, std::string name,
                                const Limits& limits = {});

  uint32_t version = 3;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;  // absolute offset of the tensor data section
  uint64_t file_size = 0;
  Metadata metadata;
  std::vector<TensorInfo> tensors;  // file order

  const std::string& name() const { return name_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // The bytes of a tensor, in place in the mapping (validated at parse time).
  std::span<const uint8_t> tensor_data(const TensorInfo& t) const;

 private:
  std::string name_;
  std::span<const uint8_t> bytes_;
  std::shared_ptr<MappedFile> map_;  // keeps bytes_ alive when opened from a path
};

}  // namespace hearth::gguf
