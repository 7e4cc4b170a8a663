// The model quantizer: a GGUF model in, a quantized GGUF model out, with the same
// per-tensor type choices, metadata and tensor order as llama-quantize, and the same
// bytes. Streams tensor by tensor: memory stays near the largest tensor (as f32 plus
// its output), whatever the model size.
#pragma once

#include "quant/compute_turns.h"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "quant/ftype.h"
#include "quant/imatrix.h"
#include "quant/quantize_options.h"

namespace hearth::quant {

// A model in one GGUF file or in llama.cpp's split format (NAME-00001-of-0000N.gguf,
// each shard with split.no, split.count and split.tensors.count; metadata in the first).
class InputModel {
 public:
  struct Tensor {
    const gguf::GgufFile* file;
    const gguf::TensorInfo* info;
    int shard;
  };
  // Opens `path`; a first shard brings its siblings, found by llama.cpp's naming.
  static Result<InputModel> open(const std::string& path);
  const gguf::Metadata& metadata() const { return shards_[0]->metadata; }
  const std::vector<Tensor>& tensors() const { return tensors_; }  // shard by shard, file order
  int shard_count() const { return static_cast<int>(shards_.size()); }
  const std::string& name() const { return shards_[0]->name(); }

 private:
  std::vector<std::unique_ptr<gguf::GgufFile>> shards_;
  std::vector<Tensor> tensors_;
};

// "prefix-%05d-of-%05d.gguf", shard numbers from 1 (llama_split_path).
std::string split_path(const std::string& prefix, int shard, int count);

struct QuantizeOptions {
  FileType ftype = FileType::Q4_K_M;
  int threads = 0;                                 // 0: all cores
  bool pure = false;                               // no mixes: every quantizable tensor gets the base type
  bool leave_output_tensor = false;                // output.weight keeps its input type
  bool allow_requantize = false;                   // accept already-quantized inputs
  bool keep_split = false;                         // a split input gives a split output, shard for shard
  std::optional<gguf::GgmlType> output_tensor_type;
  std::optional<gguf::GgmlType> token_embedding_type;
  std::vector<TensorTypeRule> tensor_types;        // --tensor-type, first match wins
  std::vector<int> prune_layers;                   // --prune-layers: sorted, unique
  std::vector<KvOverride> kv_overrides;            // --override-kv, in order
  const Imatrix* imatrix = nullptr;
  std::string imatrix_path;                        // recorded as quantize.imatrix.file, as typed
  const std::atomic<bool>* cancel = nullptr;       // set to stop between chunks (Ctrl-C)
  // When set, each group of chunks takes a turn at the cores (beside a server's runners).
  ComputeTurns* turns = nullptr;
};

// One tensor of the output, in output order.
struct TensorPlan {
  std::string name;                        // in the output (layers renumbered after pruning)
  const gguf::TensorInfo* info = nullptr;  // in the input
  const gguf::GgufFile* file = nullptr;
  int shard = 0;
  gguf::GgmlType from;
  gguf::GgmlType to;
  bool fallback = false;     // the mix's type did not fit the row length
  bool manual = false;       // a --tensor-type rule chose the type
  bool use_imatrix = false;
};

struct Progress {
  size_t index = 0, count = 0;  // tensor index (0-based) and total
  const TensorPlan* tensor = nullptr;
  uint64_t in_bytes = 0, out_bytes = 0;
  double seconds = 0;           // for this tensor
};

struct QuantizeSummary {
  std::vector<TensorPlan> tensors;
  uint64_t in_bytes = 0, out_bytes = 0;  // tensor data
  uint64_t n_elements = 0;
  double seconds = 0;
  int threads = 1;
};

// Which type each tensor gets, in output order (pruned layers left out, the later ones
// renumbered, as llama-quantize). Errors: an unsupported input or output type, a quantized
// input without allow_requantize, a missing imatrix where the mix needs one.
// Output order: llama.cpp's (tensors outside layers, then layer by layer, by name), or
// with keep_split shard by shard in file order.
Result<std::vector<TensorPlan>> plan_quantization(const InputModel& in, const QuantizeOptions& opt);

// The output metadata: the input's keys, then general.quantization_version and
// general.file_type (moved to the end), the --override-kv keys, the quantize.imatrix.* keys,
// and <arch>.block_count when layers were pruned (`n_layer`: the layers kept).
gguf::Metadata output_metadata(const gguf::Metadata& in, const QuantizeOptions& opt, int n_layer = -1);

// Quantizes `in_path` into `out_path` (written atomically; nothing is left on error).
// With keep_split and a split input, out_path is a prefix (".gguf" dropped) and the
// shards are written as split_path(prefix, i, n), all or none.
Result<QuantizeSummary> quantize_model(const std::string& in_path, const std::string& out_path,
                                       const QuantizeOptions& opt,
                                       const std::function<void(const Progress&)>& on_tensor = {});

}  // namespace hearth::quant
