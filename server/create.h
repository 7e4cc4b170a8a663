// /api/create: a model from uploaded GGUF blobs or an existing model, with template,
// system prompt, parameters, messages and licenses, optionally quantized by our own
// quantizer (../shared/reference/ollama-api.md §7.1). Validation happens before any
// output, so bad input is a 4xx with nothing written; the build then reports progress
// as Ollama's status lines.
#pragma once

#include "quant/compute_turns.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gguf/result.h"
#include "server/gotemplate.h"
#include "server/store.h"

namespace hearth::server {

struct CreateRequest {
  std::string model;
  std::string from;
  std::vector<std::pair<std::string, std::string>> files;     // file name -> "sha256:<hex>"
  std::vector<std::pair<std::string, std::string>> adapters;  // file name -> digest
  bool has_template = false, has_system = false, has_license = false;
  std::string template_text, system;
  std::vector<std::string> license;
  tmpl::Value parameters;  // a map, or Nil
  tmpl::Value messages;    // a list of {role, content}, or Nil
  std::string quantize;
  bool stream = true;
};

// Fields read as Ollama's JSON decoding reads them (keys case-insensitive; `name` for
// `model`, `quantization` for `quantize`). A wrong type is an error naming the field.
Result<CreateRequest> parse_create_request(std::string_view json);

struct CreateError {
  int status;
  std::string message;
};

// One line of progress, as JSON (without the newline).
using CreateProgress = std::function<void(const std::string& json)>;

class ModelCreator {
 public:
  // `templates`: a directory in Ollama's template/ layout (index.json, NAME.gotmpl,
  // NAME.json) used to detect a template from the GGUF's chat template; empty: no
  // detection.
  // `turns`, when given, is shared with the runners: quantization takes turns at the cores.
  ModelCreator(Store& store, std::filesystem::path templates, quant::ComputeTurns* turns = nullptr)
      : store_(store), templates_(std::move(templates)), turns_(turns) {}

  // Everything that can be checked before writing: names, digests, blobs, GGUF headers,
  // the template, the quantization type and source. An error carries its HTTP status.
  std::optional<CreateError> validate(const CreateRequest& r);
  // Builds the model (after validate()); errors are messages for the client.
  // `cancel` (may be null) stops a quantization between tensors, leaving nothing behind.
  Status run(const CreateRequest& r, const CreateProgress& progress, const std::atomic<bool>* cancel = nullptr);

 private:
  Store& store_;
  std::filesystem::path templates_;
  quant::ComputeTurns* turns_;
};

// Ollama's format.HumanNumber for parameter counts ("8B", "7.6B", "22.57M", "292K").
std::string human_number(uint64_t n);

// Levenshtein distance (bytes), for template detection.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace hearth::server
