// Importance matrices, in both formats llama.cpp writes:
//  * the legacy .dat of llama-imatrix (int32 entry count; per entry a name, ncall,
//    nval and nval float32 values, each (sum / count) * ncall; then the chunk count and
//    the dataset name), and
//  * the GGUF imatrix (tensors <name>.in_sum2 [n, n_mat] and <name>.counts [1, n_mat];
//    keys imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size).
// read_imatrix_file() gives what a file stores; load_imatrix() the values normalised as
// llama-quantize uses them: values / ncall (legacy) or sums / count per matrix (GGUF, 1
// where the count is zero). Computing and writing them: quant/imatrix_stats.h.
#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/result.h"

namespace hearth::quant {

// An imatrix file as stored, before any normalisation.
struct ImatrixFile {
  struct Entry {
    std::vector<float> sums;    // legacy: the stored values; GGUF: in_sum2 (n × n_mat)
    std::vector<float> counts;  // legacy: {ncall}; GGUF: one count per matrix
  };
  std::map<std::string, Entry> entries;  // by tensor name
  std::vector<std::string> datasets;
  int64_t chunk_count = 0;
  int64_t chunk_size = 0;  // GGUF imatrix.chunk_size; 0 when absent (and for legacy files)
  bool legacy = false;
};

// Reads either format (told apart by the GGUF magic). Errors name the file and the entry
// or field at fault.
Result<ImatrixFile> read_imatrix_file(const std::string& path);

struct Imatrix {
  std::unordered_map<std::string, std::vector<float>> values;  // tensor name -> importance per column
  std::vector<std::string> datasets;
  int chunk_count = 0;
  bool legacy = false;

  const std::vector<float>* find(const std::string& tensor) const {
    auto it = values.find(tensor);
    return it == values.end() ? nullptr : &it->second;
  }
};

// read_imatrix_file(), normalised for the quantizer.
Result<Imatrix> load_imatrix(const std::string& path);

}  // namespace hearth::quant
