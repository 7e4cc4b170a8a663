// The model options of a generation request (../shared/reference/ollama-api.md §7.3):
// today's Ollama defaults, then a model's parameters layer, then the request's
// `options`, each applied by one table of option names.
#pragma once

#include "gguf/result.h"
#include "model/generate.h"
#include "server/gotemplate.h"

namespace hearth::server {

struct ModelOptions {
  model::GenerateOptions gen;  // sampling and prediction options
  int num_ctx = 4096;          // Ollama's default for machines under 24 GiB of VRAM (none here)
  int num_batch = 512;
  int num_thread = 0;          // 0: every core
};

// Ollama's DefaultOptions at HEAD: temperature 0.8, top_k 40, top_p 0.9, min_p 0,
// typical_p 1, repeat_last_n 64, repeat_penalty 1.0, presence/frequency 0, seed -1 (random),
// num_predict -1, num_keep 4, num_ctx 4096, num_batch 512.
ModelOptions default_model_options();

// Applies an options object (a map) on top of `out`. Ints take any JSON number
// (truncated), floats any number, `stop` a list of strings; a value of the wrong type is
// an error naming the option (`option "stop" must be of type array`). Unknown and
// deprecated keys and null values are ignored, as Ollama does.
Status apply_options(const tmpl::Value& options, ModelOptions& out);

}  // namespace hearth::server
