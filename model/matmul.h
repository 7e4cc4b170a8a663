// Products of weight matrices with rows of activations, threaded: the one place the
// forward passes (decoder and encoder) call the matmul kernels from. Not thread-safe: it
// owns the scratch of the activations quantized for the current product.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/weight.h"

namespace hearth::model {

class MatMul {
 public:
  explicit MatMul(int threads) : threads_(std::max(1, threads)) {}
  // Y[j] = W X[j] for the B rows of X (n = W.cols() apart) into the B rows of Y (W.rows() apart).
  void one(const Weight& w, const float* x, float* y, int B);
  // The same for several matrices of input X at once (one activation quantization, one
  // parallel region), each into its own Y.
  struct Job {
    const Weight* w;
    float* y;
  };
  void operator()(std::span<const Job> jobs, const float* x, int B);
  int threads() const { return threads_; }
  // Called before each product with every matrix's input rows (x: B rows of w.cols()),
  // on the caller's thread; an imatrix collects them. Empty: nothing is called.
  using Observer = std::function<void(const Weight& w, const float* x, int B)>;
  void observe(Observer o) { observer_ = std::move(o); }

 private:
  void product(std::span<const Job> jobs, const float* x, int B);
  int threads_;
  Observer observer_;
  std::vector<uint8_t> act_;       // activations quantized for the current product
  std::vector<uint8_t> prepared_;  // and rearranged for a repacked GEMM that wants it
};

}  // namespace hearth::model
