// Modelfiles (Ollama's grammar, ../shared/reference/ollama-api.md §7.2) and the typed
// model options they and /api/create carry (§7.3).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/result.h"
#include "server/gotemplate.h"

namespace hearth::server {

struct ModelfileCommand {
  std::string name;  // lower-case instruction; for PARAMETER the parameter's name
  std::string args;  // the value, quotes removed
  std::string role;  // MESSAGE only
  bool parameter = false;
  int line = 0;
};

struct Modelfile {
  std::vector<ModelfileCommand> commands;
};

// Errors read like Ollama's: `(line N): command must be one of …`, `no FROM line`,
// `unexpected EOF`. UTF-8 and UTF-16 byte-order marks are accepted.
Result<Modelfile> parse_modelfile(std::string_view text);

// PARAMETER values typed by the option they set: a JSON object, `stop` as a list (repeated
// lines accumulate). `unknown parameter 'x'`, `invalid float value [x]`, … name what is wrong.
// Deprecated options are skipped, their names reported in `skipped`.
Result<tmpl::Value> format_params(const std::vector<std::pair<std::string, std::string>>& params,
                                  std::vector<std::string>* skipped = nullptr);

// Whether `key` is an option /api/create or a request's `options` accepts.
bool known_option(std::string_view key);

}  // namespace hearth::server
