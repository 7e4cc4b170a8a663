// Importance matrices, in both formats llama.cpp writes:
//  * the legacy .dat of llama-imatrix (int32 entry count; per entry a name, ncall,
//    nval and nval float32 sums; then the chunk count and the dataset name), and
//  * the GGUF imatrix (tensors <name>.in_sum2 [n, n_mat] and <name>.counts [1, n_mat];
//    keys imatrix.datasets, imatrix.chunk_count).
// Values are normalised as llama-quantize does before use: sums / ncall (legacy) or
// sums / count per matrix (GGUF, 1 where the count is zero).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/result.h"

namespace hearth::quant {

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

// Reads either format (told apart by the GGUF magic). Errors name the file and the
// entry or field at fault.
Result<Imatrix> load_imatrix(const std::string& path);

}  // namespace hearth::quant
