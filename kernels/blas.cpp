#include "kernels/blas.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "kernels/threads.h"
#include "quant/quant.h"

namespace hearth::kernels {

void gemm_blas(gguf::GgmlType type, const void* W, size_t row_bytes, int64_t rows, int64_t n, const float* X, int B, float* Y,
               int64_t y_stride, int threads) {
  openblas_set_num_threads(std::max(1, threads));
  // Slices of rows small enough to stay in L2 as f32 while sgemm streams the tokens.
  const int64_t slice = type == gguf::GgmlType::F32 ? rows : std::max<int64_t>(16, std::min<int64_t>(rows, (int64_t{1} << 21) / std::max<int64_t>(n, 1)));
  std::vector<float> wf(static_cast<size_t>(slice * n));
  const auto* w = static_cast<const uint8_t*>(W);
  for (int64_t r0 = 0; r0 < rows; r0 += slice) {
    const int64_t m = std::min(slice, rows - r0);
    const float* wr = reinterpret_cast<const float*>(w + static_cast<size_t>(r0) * row_bytes);
    if (type != gguf::GgmlType::F32) {
      parallel_rows(m, threads, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r)
          (void)quant::dequantize(type, w + static_cast<size_t>(r0 + r) * row_bytes, &wf[static_cast<size_t>(r * n)], n);
      });
      wr = wf.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, static_cast<int>(m), static_cast<int>(n), 1.0f, X, static_cast<int>(n), wr,
                static_cast<int>(n), 0.0f, Y + r0, static_cast<int>(y_stride));
  }
}

}  // namespace hearth::kernels
