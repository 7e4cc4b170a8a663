// libFuzzer target: any bytes must parse as a Modelfile or give an Error naming the line;
// the PARAMETER lines of a parsed one are typed as /api/create types them.
#include <cstdint>
#include <string_view>

#include "server/modelfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::server;
  auto mf = parse_modelfile(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!mf) {
    if (mf.message().empty()) __builtin_trap();  // every error says what is wrong
    return 0;
  }
  std::vector<std::pair<std::string, std::string>> params;
  for (const ModelfileCommand& c : mf.value().commands)
    if (c.parameter) params.emplace_back(c.name, c.args);
  (void)format_params(params);
  return 0;
}
