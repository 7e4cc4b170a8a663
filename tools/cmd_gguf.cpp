#include <cstdio>
#include <iostream>

#include "gguf/dump.h"
#include "gguf/gguf.h"
#include "tools/commands.h"

namespace hearth::cli {
namespace {

constexpr const char* kUsage =
    "usage: hearth gguf info FILE [--json] [--tensors]\n"
    "\n"
    "  info FILE    print the header, every metadata key with its type and value, and a\n"
    "               summary of the tensors; reads only the header (the data is mapped, not read)\n"
    "  --tensors    also print the tensor table (name, type, shape, offset, bytes)\n"
    "  --json       print everything as JSON: version, tensor_count, kv_count, alignment,\n"
    "               data_offset, kv (file order, full values), tensors (file order)\n";

}  // namespace

int cmd_gguf(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args[0] != "info") {
    std::fprintf(stderr, "hearth gguf: unknown subcommand '%s'\n\n%s", args[0].c_str(), kUsage);
    return 2;
  }
  std::string file;
  bool json = false, tensors = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    else if (args[i] == "--tensors") tensors = true;
    else if (!args[i].empty() && args[i][0] == '-' && args[i] != "-") {
      std::fprintf(stderr, "hearth gguf info: unknown option '%s'\n\n%s", args[i].c_str(), kUsage);
      return 2;
    } else if (file.empty()) file = args[i];
    else {
      std::fprintf(stderr, "hearth gguf info: more than one FILE given ('%s', '%s')\n", file.c_str(), args[i].c_str());
      return 2;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "hearth gguf info: missing FILE\n\n%s", kUsage);
    return 2;
  }
  auto f = gguf::GgufFile::open(file);
  if (!f) {
    std::fprintf(stderr, "hearth gguf info: %s\n", f.message().c_str());
    return 1;
  }
  std::ios::sync_with_stdio(false);
  if (json) gguf::write_json(f.value(), std::cout);
  else gguf::write_text(f.value(), std::cout, tensors);
  std::cout.flush();
  return std::cout ? 0 : 1;
}

}  // namespace hearth::cli
