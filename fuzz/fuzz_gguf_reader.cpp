// libFuzzer target: any byte string must parse or give an Error, never crash, leak
// or read out of bounds. A parsed file is also dumped and written back, which must
// reproduce a file that parses to the same tables.
#include <cstdint>
#include <sstream>

#include "gguf/dump.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::gguf;
  auto f = GgufFile::parse({data, size}, "fuzz");
  if (!f) return 0;
  std::ostringstream js;
  write_json(f.value(), js);
  GgufWriter w(f.value().metadata, f.value().version);
  for (const TensorInfo& t : f.value().tensors) {
    if (!w.add_tensor(t.name, t.type, t.shape(), f.value().tensor_data(t))) __builtin_trap();
  }
  VectorSink out;
  if (!w.write_to(out)) __builtin_trap();
  auto g = GgufFile::parse(out.bytes, "fuzz-rewrite");
  if (!g || g.value().tensors.size() != f.value().tensors.size() ||
      g.value().metadata.size() != f.value().metadata.size())
    __builtin_trap();
  return 0;
}
