// Q4_0 weights repacked eight rows at a time for decoding (GEMV): per block of 32
// columns, the eight rows' scales side by side (16 bytes) and then their nibbles
// interleaved four bytes per row (128 bytes), so that one 32-byte load feeds all eight
// rows and one vcvtph2ps converts their eight scales. Built once at load time; the
// gain is measured by `hearth bench model` (see the README).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gguf/types.h"
#include "quant/cpu.h"

namespace hearth::kernels {

inline constexpr int kRepackRows = 8;
inline constexpr size_t kQ4_0x8BlockBytes = 16 + 128;  // per group of 8 rows and block of 32

// Bytes of the repacked form of a rows x n q4_0 matrix (rows % 8 == 0, n % 32 == 0).
size_t q4_0x8_bytes(int64_t rows, int64_t n);
// Writes the repacked form of rows [0, rows) of W (row_bytes apart) to out.
void repack_q4_0x8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out);
// y[r] for rows of groups [g0, g1) (group g = rows 8g..8g+7) against q8_0 activations.
// AVX-512 VNNI; the caller checks the ISA.
void gemv_q4_0x8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y);

// Q8_0 the same way: per block of 32 columns, the eight rows' scales (16 bytes), each
// row's sum of quants as int16 (16 bytes), then the quants interleaved four bytes per row
// (256 bytes). The sums let the kernel feed vpdpbusd activations offset by +128 (unsigned)
// and subtract 128 * sum(w) afterwards.
inline constexpr size_t kQ8_0x8BlockBytes = 16 + 16 + 256;
size_t q8_0x8_bytes(int64_t rows, int64_t n);
void repack_q8_0x8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out);
void gemv_q8_0x8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y);

// GEMM over the repacked forms for prompt processing: groups [g0, g1) against B
// activation rows, into y (row j of Y at y + j * y_stride). `act` is not the rows
// themselves but what RepackedTraits::prepare made of them (gemm_input(): token pairs
// interleaved for the 512-bit kernels; act_bytes is unused). Each block of weights is
// unpacked once for up to 16 tokens; every result equals the GEMV's bit for bit.
// AVX-512 VNNI; the caller checks the ISA.
void gemm_q4_0x8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1, float* y,
                 int64_t y_stride);
void gemm_q8_0x8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1, float* y,
                 int64_t y_stride);

// Q4_K the same way, per group of eight rows and super-block of 256 columns: the rows'
// d and dmin as halves (16 + 16 bytes), their eight 6-bit scales and mins unpacked to a
// byte each, sub-block-major (64 + 64 bytes), then the nibbles interleaved four bytes per
// row (1024 bytes). Against Q8_K activations; the GEMV and GEMM do the same arithmetic
// per (row, token), so their results are equal bit for bit.
inline constexpr size_t kQ4_Kx8BlockBytes = 16 + 16 + 64 + 64 + 1024;
size_t q4_Kx8_bytes(int64_t rows, int64_t n);
void repack_q4_Kx8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out);
void gemv_q4_Kx8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y);
void gemm_q4_Kx8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1, float* y,
                 int64_t y_stride);

// Q5_K as Q4_K (the low four bits in the nibbles' place) followed by the fifth bits
// (256 bytes): per chunk c of 64 elements and quad q of k, byte 4r + e holds the bits of
// row r's elements 64c + 4k + e (bit 2kk) and 64c + 32 + 4k + e (bit 2kk + 1), k = 4q + kk.
// The tiles are Q4_K's with the bits or-ed in (levels 0..31 for vpdpbusd).
inline constexpr size_t kQ5_Kx8BlockBytes = kQ4_Kx8BlockBytes + 256;
size_t q5_Kx8_bytes(int64_t rows, int64_t n);
void repack_q5_Kx8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out);
void gemv_q5_Kx8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y);
void gemm_q5_Kx8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1, float* y,
                 int64_t y_stride);

// Q6_K in the same number of bytes, per group of eight rows and super-block: the rows' d
// (16 bytes), their sixteen int8 scales sub-block-major (128 bytes), the low four bits
// interleaved as Q4_K's nibbles (1024 bytes), then the high two bits, four 2-bit fields
// a byte in the same lanes (512 bytes). Quants stay unsigned (0..63) for vpdpbusd; the
// -32 offset comes back through the activations' 16-element sums.
inline constexpr size_t kQ6_Kx8BlockBytes = 16 + 128 + 1024 + 512;
size_t q6_Kx8_bytes(int64_t rows, int64_t n);
void repack_q6_Kx8(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out);
void gemv_q6_Kx8(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y);
void gemm_q6_Kx8(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1, float* y,
                 int64_t y_stride);

// One row per repacked weight type: what the engine and the benchmarks call.
struct RepackedTraits {
  gguf::GgmlType type;
  size_t (*bytes)(int64_t rows, int64_t n);
  void (*repack)(const void* W, size_t row_bytes, int64_t rows, int64_t n, void* out);
  void (*gemv)(const void* packed, int64_t n, const void* act, int64_t g0, int64_t g1, float* y);
  // B activation rows act_bytes apart, or for the types with a prepare step (q4_0, q8_0:
  // token pairs interleaved for their 512-bit kernels) what prepare made of them, once per
  // matmul: gemm_input() gives the right one.
  void (*gemm)(const void* packed, int64_t n, const void* act, size_t act_bytes, int B, int64_t g0, int64_t g1, float* y,
               int64_t y_stride);
  size_t (*prepared_bytes)(int64_t n, int B) = nullptr;
  void (*prepare)(int64_t n, const void* act, size_t act_bytes, int B, void* out) = nullptr;
};
// The repacked form for a weight type on `isa` (AVX-512 VNNI only), or nullptr.
const RepackedTraits* repacked_traits(gguf::GgmlType type, Isa isa);
// What t.gemm reads for B activation rows: the rows, or their prepared form made into
// `scratch` (once per matmul, before the threads split the rows).
const void* gemm_input(const RepackedTraits& t, int64_t n, const void* act, size_t act_bytes, int B, std::vector<uint8_t>& scratch);

}  // namespace hearth::kernels
