#include "model/weight.h"

#include "kernels/kernels.h"
#include "quant/quant.h"

namespace hearth::model {
namespace {

std::string shape_str(std::initializer_list<int64_t> s) {
  std::string r = "[";
  for (int64_t v : s) r += (r.size() > 1 ? ", " : "") + std::to_string(v);
  return r + "]";
}

}  // namespace

Status bind(const gguf::GgufFile& f, const std::string& name, std::initializer_list<int64_t> shape, Weight& w, bool optional,
            bool rows_only) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) return optional ? Status{} : Error{f.name() + ": tensor '" + name + "' is missing (expected shape " + shape_str(shape) + ")"};
  bool ok = t->n_dims == static_cast<int>(shape.size());
  int d = 0;
  for (int64_t s : shape) ok = ok && static_cast<int64_t>(t->ne[d++]) == s;
  if (!ok) {
    std::string got = "[";
    for (int k = 0; k < t->n_dims; ++k) got += (k ? ", " : "") + std::to_string(t->ne[k]);
    return Error{f.name() + ": tensor '" + name + "' has shape " + got + "], expected " + shape_str(shape)};
  }
  if (!quant::quant_traits(t->type))
    return Error{f.name() + ": tensor '" + name + "' has type " + std::string(gguf::type_info(t->type).name) +
                 ", which Hearth cannot compute with yet"};
  if (shape.size() == 2 && !rows_only && !kernels::kernel_traits(t->type))
    return Error{f.name() + ": tensor '" + name + "' has type " + std::string(gguf::type_info(t->type).name) +
                 ", which has no matmul kernel yet"};
  w.info = t;
  w.data = f.tensor_data(*t).data();
  w.row_bytes = gguf::type_bytes(t->type, t->ne[0], name).value();
  return {};
}

Status need_f32(const gguf::GgufFile& f, std::initializer_list<const Weight*> ws) {
  for (const Weight* w : ws)
    if (w->info && w->info->type != gguf::GgmlType::F32) return Error{f.name() + ": tensor '" + w->info->name + "' must be f32"};
  return {};
}

}  // namespace hearth::model
