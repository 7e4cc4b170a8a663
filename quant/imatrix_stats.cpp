#include "quant/imatrix_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "gguf/writer.h"

namespace hearth::quant {
namespace {

// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
Status write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::filesystem::path p(path);
  std::string temp = (p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path()).string() + "/." +
                     p.filename().string() + ".XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return Error{"cannot create a temporary file for '" + path + "': " + std::strerror(errno)};
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  const int err = done == bytes.size() ? (::fsync(fd) == 0 ? 0 : errno) : errno;
  ::close(fd);
  if (err != 0 || done != bytes.size() || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(err ? err : errno);
    ::unlink(temp.c_str());
    return Error{"cannot write '" + path + "': " + why};
  }
  return {};
}

template <class T> void put(std::vector<uint8_t>& out, T v) {
  const auto* b = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), b, b + sizeof v);
}

void put_str(std::vector<uint8_t>& out, const std::string& s) {
  put(out, static_cast<int32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

}  // namespace

Status ImatrixStats::add(const std::string& name, const float* x, int64_t n, int64_t rows) {
  Entry& e = entries_[name];
  if (e.sums.empty()) {
    e.sums.assign(static_cast<size_t>(n), 0.0f);
    e.counts.assign(1, 0);
  } else if (e.sums.size() != static_cast<size_t>(n)) {
    return Error{"imatrix: inconsistent size for " + name + " (" + std::to_string(e.sums.size()) + " vs " +
                 std::to_string(n) + ")"};
  }
  // A dense matrix keeps one count (merged files may have given it several equal ones).
  if (e.counts.size() > 1 && std::all_of(e.counts.begin(), e.counts.end(), [&](int64_t c) { return c == e.counts[0]; }))
    e.counts.resize(1);
  float* acc = e.sums.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    for (int64_t j = 0; j < n; ++j) acc[j] += xr[j] * xr[j];
  }
  for (int64_t j = 0; j < n; ++j)
    if (!std::isfinite(acc[j])) return Error{"imatrix: non-finite values detected in " + name};
  for (int64_t& c : e.counts) c += rows;
  return {};
}

Status ImatrixStats::merge(const ImatrixFile& f, const std::string& path) {
  // Counts are row counts: whole, not negative, and far below what int64 sums can hold.
  constexpr double kMaxCount = 1e15;
  for (const auto& [name, in] : f.entries)
    for (float c : in.counts)
      if (!(c >= 0 && c <= kMaxCount) || (f.legacy && in.sums.empty()))
        return Error{path + ": bad count " + std::to_string(c) + " for " + name};
  for (const auto& [name, in] : f.entries) {
    Entry& e = entries_[name];
    if (f.legacy) {
      if (e.sums.empty()) {
        e.sums.assign(in.sums.size(), 0.0f);
        e.counts.assign(1, 0);
      } else if (e.sums.size() != in.sums.size()) {
        return Error{path + ": mismatched sums size for " + name + ": " + std::to_string(in.sums.size()) +
                     " != " + std::to_string(e.sums.size())};
      }
      for (size_t j = 0; j < in.sums.size(); ++j) e.sums[j] += in.sums[j] * static_cast<float>(chunk_size_);
      for (int64_t& c : e.counts) c += static_cast<int64_t>(in.counts[0]) * chunk_size_;
      continue;
    }
    if (e.sums.empty()) {
      e.sums.assign(in.sums.size(), 0.0f);
    } else if (e.sums.size() != in.sums.size()) {
      return Error{path + ": mismatched sums size for " + name + ": " + std::to_string(in.sums.size()) + " != " +
                   std::to_string(e.sums.size())};
    }
    if (e.counts.empty()) {
      e.counts.assign(in.counts.size(), 0);
    } else if (e.counts.size() == 1 && in.counts.size() > 1) {
      e.counts.resize(in.counts.size(), e.counts[0]);
    } else if (e.counts.size() != in.counts.size()) {
      return Error{path + ": mismatched counts size for " + name + ": " + std::to_string(in.counts.size()) +
                   " != " + std::to_string(e.counts.size())};
    }
    for (size_t j = 0; j < in.sums.size(); ++j) e.sums[j] += in.sums[j];
    for (size_t j = 0; j < in.counts.size(); ++j) e.counts[j] += std::lround(in.counts[j]);
  }
  datasets_.insert(datasets_.end(), f.datasets.begin(), f.datasets.end());
  return {};
}

int64_t ImatrixStats::chunk_count() const {
  int64_t most = 0;
  for (const auto& [name, e] : entries_)
    for (int64_t c : e.counts) most = std::max(most, c);
  return most / chunk_size_;
}

Status ImatrixStats::save_gguf(const std::string& path) const {
  gguf::Metadata md;
  md.set("general.type", gguf::Value::string("imatrix"));
  md.set("imatrix.datasets", gguf::Value::strings(datasets_));
  md.set("imatrix.chunk_count", gguf::Value::of(static_cast<uint32_t>(chunk_count())));
  md.set("imatrix.chunk_size", gguf::Value::of(static_cast<uint32_t>(chunk_size_)));
  gguf::GgufWriter w(std::move(md));
  for (const auto& [name, e] : entries_) {
    const uint64_t n_mat = e.counts.size();
    if (e.sums.empty() || n_mat == 0) continue;
    const uint64_t n = e.sums.size() / n_mat;
    // Trailing dimensions of 1 are dropped, as ggml writes them.
    const std::vector<uint64_t> sum_shape = n_mat > 1 ? std::vector<uint64_t>{n, n_mat} : std::vector<uint64_t>{n};
    const std::vector<uint64_t> count_shape = n_mat > 1 ? std::vector<uint64_t>{1, n_mat} : std::vector<uint64_t>{1};
    const auto* sums = reinterpret_cast<const uint8_t*>(e.sums.data());
    if (Status s = w.add_tensor(name + ".in_sum2", gguf::GgmlType::F32, sum_shape, {sums, e.sums.size() * 4}); !s) return s;
    std::vector<float> counts(e.counts.begin(), e.counts.end());
    if (Status s = w.add_tensor(name + ".counts", gguf::GgmlType::F32, count_shape, [counts](gguf::ByteSink& out) {
          return out.write(counts.data(), counts.size() * 4);
        });
        !s)
      return s;
  }
  return w.write(path);
}

Status ImatrixStats::save_dat(const std::string& path) const {
  std::vector<const std::pair<const std::string, Entry>*> stored;
  for (const auto& kv : entries_)
    if (std::any_of(kv.second.counts.begin(), kv.second.counts.end(), [](int64_t c) { return c != 0; })) stored.push_back(&kv);
  std::vector<uint8_t> out;
  put(out, static_cast<int32_t>(stored.size()));
  for (const auto* kv : stored) {
    const Entry& e = kv->second;
    put_str(out, kv->first);
    // ncall: the chunks of the most-used matrix, rounded up so that no value is zero.
    const int64_t most = *std::max_element(e.counts.begin(), e.counts.end());
    const auto ncall = static_cast<int32_t>((most + chunk_size_ - 1) / chunk_size_);
    put(out, ncall);
    const auto nval = static_cast<int32_t>(e.sums.size());
    const size_t per_mat = e.sums.size() / e.counts.size();
    put(out, nval);
    for (size_t i = 0; i < e.sums.size(); ++i) {
      float count = static_cast<float>(e.counts[i / per_mat]), value = e.sums[i];
      if (count == 0.0f) value = count = 1.0f;  // a matrix without data: stored as 1
      put(out, (value / count) * static_cast<float>(ncall));
    }
  }
  put(out, static_cast<int32_t>(chunk_count()));
  put_str(out, datasets_.empty() ? std::string() : datasets_.back());
  return write_file_atomic(path, out);
}

}  // namespace hearth::quant
