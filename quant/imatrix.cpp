#include "quant/imatrix.h"

#include <cstring>

#include "gguf/gguf.h"

namespace hearth::quant {
namespace {

// Bounded little-endian reader over the legacy file.
struct Reader {
  std::span<const uint8_t> b;
  size_t pos = 0;
  bool get(void* out, size_t n) {
    if (n > b.size() - pos) return false;
    std::memcpy(out, b.data() + pos, n);
    pos += n;
    return true;
  }
  bool i32(int32_t& v) { return get(&v, 4); }
};

Result<ImatrixFile> read_legacy(const std::string& path, std::span<const uint8_t> bytes) {
  auto fail = [&](const std::string& what) { return Error{path + ": " + what}; };
  Reader r{bytes};
  ImatrixFile m;
  m.legacy = true;
  int32_t n_entries = 0;
  if (!r.i32(n_entries)) return fail("truncated: missing the entry count");
  if (n_entries < 1 || static_cast<uint64_t>(n_entries) > bytes.size() / 12)
    return fail("bad entry count " + std::to_string(n_entries) + " (not an imatrix file?)");
  for (int32_t e = 0; e < n_entries; ++e) {
    int32_t len = 0;
    if (!r.i32(len) || len <= 0 || static_cast<size_t>(len) > r.b.size() - r.pos)
      return fail("entry " + std::to_string(e) + ": bad name length " + std::to_string(len));
    std::string name(reinterpret_cast<const char*>(bytes.data() + r.pos), static_cast<size_t>(len));
    r.pos += static_cast<size_t>(len);
    int32_t ncall = 0, nval = 0;
    if (!r.i32(ncall) || !r.i32(nval) || nval < 1)
      return fail("entry '" + name + "': bad value count " + std::to_string(nval));
    if (static_cast<uint64_t>(nval) * 4 > r.b.size() - r.pos)
      return fail("entry '" + name + "': truncated: " + std::to_string(nval) + " values do not fit");
    ImatrixFile::Entry entry{std::vector<float>(static_cast<size_t>(nval)), {static_cast<float>(ncall)}};
    r.get(entry.sums.data(), entry.sums.size() * 4);
    if (!m.entries.emplace(name, std::move(entry)).second) return fail("duplicate entry '" + name + "'");
  }
  // Optional trailer: chunk count and dataset name.
  int32_t chunks = 0;
  if (r.i32(chunks)) {
    m.chunk_count = chunks;
    int32_t len = 0;
    if (r.i32(len) && len > 0 && static_cast<size_t>(len) <= r.b.size() - r.pos)
      m.datasets.emplace_back(reinterpret_cast<const char*>(bytes.data() + r.pos), static_cast<size_t>(len));
  }
  return m;
}

Result<ImatrixFile> read_gguf(const std::string& path, const gguf::GgufFile& f) {
  auto fail = [&](const std::string& what) { return Error{path + ": " + what}; };
  ImatrixFile m;
  if (const gguf::Value* d = f.metadata.find("imatrix.datasets"); d && d->type() == gguf::ValueType::ARRAY &&
                                                                  d->arr().elem == gguf::ValueType::STRING)
    m.datasets = d->arr().strings;
  if (auto c = f.metadata.get_uint("imatrix.chunk_count"); c.ok()) m.chunk_count = static_cast<int64_t>(c.value());
  if (auto c = f.metadata.get_uint("imatrix.chunk_size"); c.ok()) m.chunk_size = static_cast<int64_t>(c.value());
  const std::string sum_suffix = ".in_sum2", count_suffix = ".counts";
  for (const gguf::TensorInfo& t : f.tensors) {
    if (t.name.size() <= sum_suffix.size() || t.name.compare(t.name.size() - sum_suffix.size(), sum_suffix.size(), sum_suffix) != 0)
      continue;
    const std::string name = t.name.substr(0, t.name.size() - sum_suffix.size());
    const gguf::TensorInfo* c = f.find_tensor(name + count_suffix);
    if (!c) return fail("tensor '" + t.name + "' has no matching '" + name + count_suffix + "'");
    if (t.type != gguf::GgmlType::F32 || c->type != gguf::GgmlType::F32)
      return fail("imatrix tensors of '" + name + "' must be f32");
    const uint64_t ne0 = t.ne[0], n_mat = t.n_elements / (ne0 ? ne0 : 1);
    if (ne0 == 0 || c->n_elements != n_mat)
      return fail("'" + name + "': " + std::to_string(c->n_elements) + " counts for " + std::to_string(n_mat) + " matrices");
    ImatrixFile::Entry e{std::vector<float>(t.n_elements), std::vector<float>(c->n_elements)};
    std::memcpy(e.sums.data(), f.tensor_data(t).data(), t.n_bytes);
    std::memcpy(e.counts.data(), f.tensor_data(*c).data(), c->n_bytes);
    m.entries.emplace(name, std::move(e));
  }
  if (m.entries.empty()) return fail("no importance matrix entries (no '<tensor>.in_sum2' tensors)");
  return m;
}

}  // namespace

Result<ImatrixFile> read_imatrix_file(const std::string& path) {
  auto map = gguf::MappedFile::open(path);
  if (!map) return map.error();
  auto bytes = map.value()->bytes();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) {
    auto f = gguf::GgufFile::parse(bytes, path);
    if (!f) return f.error();
    return read_gguf(path, f.value());
  }
  return read_legacy(path, bytes);
}

Result<Imatrix> load_imatrix(const std::string& path) {
  auto f = read_imatrix_file(path);
  if (!f) return f.error();
  Imatrix m;
  m.legacy = f.value().legacy;
  m.datasets = std::move(f.value().datasets);
  m.chunk_count = static_cast<int>(f.value().chunk_count);
  for (auto& [name, e] : f.value().entries) {
    std::vector<float>& v = e.sums;
    if (m.legacy) {
      const float ncall = e.counts[0];
      if (ncall > 0)
        for (float& x : v) x = x / ncall;
    } else {
      const size_t n_mat = e.counts.size(), ne0 = v.size() / n_mat;
      for (size_t j = 0; j < n_mat; ++j)
        for (size_t i = 0; i < ne0; ++i) v[j * ne0 + i] = e.counts[j] > 0.0f ? v[j * ne0 + i] / e.counts[j] : 1.0f;
    }
    m.values.emplace(name, std::move(v));
  }
  return m;
}

}  // namespace hearth::quant
