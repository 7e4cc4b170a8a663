// Computing an importance matrix, as llama-imatrix does: for every weight matrix, the
// sums of the squared activations entering each of its columns (in float, in the order
// the rows arrive) and the number of rows seen. Merged with earlier files (--in-file) as
// llama-imatrix merges them, and written in either of its formats (quant/imatrix.h).
// Not thread-safe: one caller at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gguf/result.h"
#include "quant/imatrix.h"

namespace hearth::quant {

class ImatrixStats {
 public:
  struct Entry {
    std::vector<float> sums;      // n_mat × n columns
    std::vector<int64_t> counts;  // rows seen, per matrix
  };
  // chunk_size: tokens per chunk (llama-imatrix's -c), the unit of the chunk count and of
  // the legacy format's ncall.
  explicit ImatrixStats(int64_t chunk_size) : chunk_size_(chunk_size) {}

  // Adds `rows` rows of n activations (x, n apart) entering the dense matrix `name`.
  // Errors: a size that differs from the matrix's earlier rows; a sum that is no longer
  // finite (llama-imatrix's "non-finite values detected").
  Status add(const std::string& name, const float* x, int64_t n, int64_t rows);
  // Adds an earlier file's sums and counts, as llama-imatrix's --in-file: GGUF files as
  // they are; legacy ones rebuilt as sums × chunk_size and ncall × chunk_size. Errors name
  // the file and the entry whose size differs.
  Status merge(const ImatrixFile& f, const std::string& path);
  // The dataset names recorded (those of merged files first).
  void add_dataset(std::string name) { datasets_.push_back(std::move(name)); }

  const std::map<std::string, Entry>& entries() const { return entries_; }
  // Chunks seen: the largest count of any matrix over the chunk size.
  int64_t chunk_count() const;
  int64_t chunk_size() const { return chunk_size_; }

  // The GGUF imatrix (tensors in name order, keys general.type, imatrix.datasets,
  // imatrix.chunk_count, imatrix.chunk_size), written atomically.
  Status save_gguf(const std::string& path) const;
  // The legacy .dat (entries without data skipped), written atomically.
  Status save_dat(const std::string& path) const;

 private:
  std::map<std::string, Entry> entries_;
  std::vector<std::string> datasets_;
  int64_t chunk_size_;
};

}  // namespace hearth::quant
