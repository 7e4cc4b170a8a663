// A weight tensor of a mapped model file, bound by name with its exact shape checked; the
// matrices and vectors every architecture's forward pass reads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "gguf/gguf.h"
#include "kernels/repack.h"

namespace hearth::model {

// A weight tensor in the mapped file: type, shape, and where its rows are.
struct Weight {
  const gguf::TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  const uint8_t* packed = nullptr;  // repacked eight rows at a time (kernels/repack.h), or null
  const kernels::RepackedTraits* repacked = nullptr;  // the kernels for `packed`
  int64_t cols() const { return static_cast<int64_t>(info->ne[0]); }
  int64_t rows() const { return static_cast<int64_t>(info->n_elements / info->ne[0]); }
};

// Binds a tensor by name, checking its exact shape (ne0 first) and that Hearth can
// compute with its type: a matrix (two dimensions) needs a matmul kernel unless it is
// only read row by row (`rows_only`: embedding tables). `optional` tensors may be absent.
Status bind(const gguf::GgufFile& f, const std::string& name, std::initializer_list<int64_t> shape, Weight& w,
            bool optional = false, bool rows_only = false);

// Checks that every bound vector of `ws` is f32 (norms and biases are read as floats).
Status need_f32(const gguf::GgufFile& f, std::initializer_list<const Weight*> ws);

inline const float* f32(const Weight& w) { return reinterpret_cast<const float*>(w.data); }

}  // namespace hearth::model
