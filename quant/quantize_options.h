// llama-quantize's per-tensor and metadata controls, parsed from their command-line forms:
// --tensor-type REGEX=TYPE, --override-kv KEY=TYPE:VALUE, --prune-layers L0,L1,… and the
// imatrix filters --include-weights / --exclude-weights. Errors name the argument.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/result.h"
#include "quant/imatrix.h"

namespace hearth::quant {

// A quantizable tensor whose name `pattern` finds (an ECMAScript regular expression,
// searched, lower-cased as llama-quantize lower-cases it) takes `type` instead of the mix's.
struct TensorTypeRule {
  std::string pattern;
  gguf::GgmlType type;
};
Result<TensorTypeRule> parse_tensor_type_rule(std::string_view arg);

// A metadata key set on the output: int values are written as uint32 of their magnitude,
// floats as float32, as llama-quantize writes them.
struct KvOverride {
  std::string key;
  gguf::Value value;
};
Result<KvOverride> parse_kv_override(std::string_view arg);

// "3,1,1": the layer numbers, sorted, without duplicates.
Result<std::vector<int>> parse_layer_list(std::string_view arg);

// Keeps the entries whose name contains one of `include` (when given), then drops those
// that contain one of `exclude`, as llama-quantize's filters.
void filter_imatrix(Imatrix& m, const std::vector<std::string>& include, const std::vector<std::string>& exclude);

}  // namespace hearth::quant
