#include "gguf/writer.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // sync_file_range
#endif
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_set>

namespace hearth::gguf {
namespace {

// Buffered sink over a file descriptor; the first error sticks and names the path.
class FdSink : public ByteSink {
 public:
  using ByteSink::write;
  FdSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) { buf_.reserve(kBuf); }
  Status write(const void* data, size_t n) override {
    const auto* p = static_cast<const uint8_t*>(data);
    if (buf_.size() + n > kBuf) {
      if (Status s = flush(); !s) return s;
      if (n >= kBuf) return raw(p, n);
    }
    buf_.insert(buf_.end(), p, p + n);
    return {};
  }
  Status flush() {
    Status s = raw(buf_.data(), buf_.size());
    buf_.clear();
    return s;
  }
  // Starts writeback of what has been written so far without waiting, so that the
  // final fsync finds little left to do (Linux; elsewhere fsync does it all).
  void start_writeback() {
#ifdef __linux__
    if (written_ > synced_) {
      ::sync_file_range(fd_, static_cast<off_t>(synced_), static_cast<off_t>(written_ - synced_), SYNC_FILE_RANGE_WRITE);
      synced_ = written_;
    }
#endif
  }

 private:
  static constexpr size_t kBuf = size_t{1} << 20;
  Status raw(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Error{"writing '" + path_ + "': " + std::strerror(errno)};
      }
      p += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
    if (written_ - synced_ >= (uint64_t{64} << 20)) start_writeback();
    return {};
  }
  uint64_t written_ = 0, synced_ = 0;
  int fd_;
  std::string path_;
  std::vector<uint8_t> buf_;
};

// Counts what a producer writes so a short or long tensor is an error, not a corrupt file.
class CountingSink : public ByteSink {
 public:
  using ByteSink::write;
  explicit CountingSink(ByteSink& out) : out_(out) {}
  Status write(const void* data, size_t n) override {
    count += n;
    return out_.write(data, n);
  }
  uint64_t count = 0;

 private:
  ByteSink& out_;
};

template <class T> Status put(ByteSink& s, T v) { return s.write(&v, sizeof v); }

Status put_str(ByteSink& s, const std::string& str) {
  if (Status st = put<uint64_t>(s, str.size()); !st) return st;
  return s.write(str.data(), str.size());
}

Status put_value(ByteSink& s, const Value& v);

Status put_array(ByteSink& s, const Array& a) {
  if (Status st = put<uint32_t>(s, static_cast<uint32_t>(a.elem)); !st) return st;
  if (Status st = put<uint64_t>(s, a.count); !st) return st;
  if (a.elem == ValueType::STRING) {
    for (const std::string& str : a.strings)
      if (Status st = put_str(s, str); !st) return st;
    return {};
  }
  if (a.elem == ValueType::ARRAY) {
    for (const Value& sub : a.arrays)
      if (Status st = put_array(s, sub.arr()); !st) return st;
    return {};
  }
  return s.write(a.raw.data(), a.raw.size());
}

Status put_value(ByteSink& s, const Value& v) {
  switch (v.type()) {
    case ValueType::STRING: return put_str(s, v.str());
    case ValueType::ARRAY: return put_array(s, v.arr());
    default: {
      uint64_t bits = v.raw_bits();
      return s.write(&bits, scalar_size(v.type()));
    }
  }
}

Status pad(ByteSink& s, uint64_t n, uint64_t alignment) {
  static constexpr uint8_t kZeros[256] = {};
  uint64_t p = (alignment - n % alignment) % alignment;
  while (p > 0) {
    size_t k = p < sizeof kZeros ? static_cast<size_t>(p) : sizeof kZeros;
    if (Status st = s.write(kZeros, k); !st) return st;
    p -= k;
  }
  return {};
}

}  // namespace

Status VectorSink::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  bytes.insert(bytes.end(), p, p + n);
  return {};
}

GgufWriter::GgufWriter(Metadata metadata, uint32_t version) : md_(std::move(metadata)), version_(version) {}

Status GgufWriter::check_new(const std::string& name, GgmlType type, std::span<const uint64_t> shape,
                             TensorInfo& t) const {
  for (const TensorInfo& o : infos_)
    if (o.name == name) return Error{"duplicate tensor name '" + name + "'"};
  if (shape.size() > static_cast<size_t>(kMaxDims))
    return Error{"tensor '" + name + "' has " + std::to_string(shape.size()) + " dimensions, at most 4 allowed"};
  const TypeInfo* ti = type_info(static_cast<uint32_t>(type));
  if (!ti) return Error{"tensor '" + name + "' has unknown type id " + std::to_string(static_cast<uint32_t>(type))};
  t.name = name;
  t.type = type;
  t.n_dims = static_cast<int>(shape.size());
  uint64_t n = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    t.ne[d] = shape[d];
    if (__builtin_mul_overflow(n, shape[d], &n) || n > static_cast<uint64_t>(INT64_MAX))
      return Error{"tensor '" + name + "' element count overflows"};
  }
  if (t.ne[0] % ti->block_size != 0)
    return Error{"tensor '" + name + "' row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                 std::string(ti->name) + " block size " + std::to_string(ti->block_size)};
  t.n_elements = n;
  auto bytes = type_bytes(type, n, "tensor '" + name + "'");
  if (!bytes) return bytes.error();
  t.n_bytes = bytes.value();
  return {};
}

Status GgufWriter::add_tensor(std::string name, GgmlType type, std::span<const uint64_t> shape,
                              std::span<const uint8_t> data) {
  TensorInfo t;
  if (Status s = check_new(name, type, shape, t); !s) return s;
  if (data.size() != t.n_bytes)
    return Error{"tensor '" + name + "' data is " + std::to_string(data.size()) + " bytes, expected " +
                 std::to_string(t.n_bytes)};
  infos_.push_back(std::move(t));
  producers_.push_back([data](ByteSink& s) { return s.write(data); });
  return {};
}

Status GgufWriter::add_tensor(std::string name, GgmlType type, std::span<const uint64_t> shape, Producer produce) {
  TensorInfo t;
  if (Status s = check_new(name, type, shape, t); !s) return s;
  infos_.push_back(std::move(t));
  producers_.push_back(std::move(produce));
  return {};
}

Result<uint64_t> GgufWriter::alignment() const {
  const Value* a = md_.find("general.alignment");
  if (!a) return uint64_t{kDefaultAlignment};
  if (a->type() != ValueType::U32) return Error{"key 'general.alignment' must be uint32"};
  uint32_t al = a->as<uint32_t>();
  if (al == 0 || (al & (al - 1)) != 0)
    return Error{"key 'general.alignment' is " + std::to_string(al) + ", not a power of two"};
  return uint64_t{al};
}

Status GgufWriter::write_to(ByteSink& sink) const {
  auto al = alignment();
  if (!al) return al.error();
  const uint64_t alignment = al.value();
  CountingSink s(sink);  // s.count is the file position

  Status st = put<uint32_t>(s, kMagic);
  if (st) st = put<uint32_t>(s, version_);
  if (st) st = put<uint64_t>(s, infos_.size());
  if (st) st = put<uint64_t>(s, md_.size());
  for (const KeyValue& kv : md_.entries()) {
    if (st) st = put_str(s, kv.key);
    if (st) st = put<uint32_t>(s, static_cast<uint32_t>(kv.value.type()));
    if (st) st = put_value(s, kv.value);
  }
  // Tensors are laid out in order, each at the next multiple of the alignment.
  uint64_t offset = 0;
  for (const TensorInfo& t : infos_) {
    if (st) st = put_str(s, t.name);
    if (st) st = put<uint32_t>(s, static_cast<uint32_t>(t.n_dims));
    for (int d = 0; d < t.n_dims && st; ++d) st = put<uint64_t>(s, t.ne[d]);
    if (st) st = put<uint32_t>(s, static_cast<uint32_t>(t.type));
    if (st) st = put<uint64_t>(s, offset);
    offset += (t.n_bytes + alignment - 1) / alignment * alignment;
  }
  if (!st) return st;
  if (infos_.empty()) return {};  // no data section, no padding (as ggml and gguf-py write it)
  if (st = pad(s, s.count, alignment); !st) return st;

  for (size_t i = 0; i < infos_.size(); ++i) {
    const TensorInfo& t = infos_[i];
    uint64_t before = s.count;
    if (st = producers_[i](s); !st) return Error{"tensor '" + t.name + "': " + st.message()};
    if (s.count - before != t.n_bytes)
      return Error{"tensor '" + t.name + "': producer wrote " + std::to_string(s.count - before) +
                   " bytes, expected " + std::to_string(t.n_bytes)};
    if (st = pad(s, t.n_bytes, alignment); !st) return st;
  }
  return {};
}

Result<std::string> GgufWriter::write_unpublished(const std::string& path) const {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmpl = dir.string();  // built piecewise: gcc 12 warns (falsely) on one long concatenation
  tmpl += "/.";
  tmpl += target.filename().string();
  tmpl += ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) return Error{"cannot create a temporary file in '" + dir.string() + "': " + std::strerror(errno)};
  std::string tmp(name.data());
  ::fchmod(fd, 0644);

  auto fail = [&](Status s) -> Error {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s.error();
  };
  FdSink sink(fd, path);
  if (Status s = write_to(sink); !s) return fail(s);
  if (Status s = sink.flush(); !s) return fail(s);
  if (::fsync(fd) != 0) return fail(Error{"syncing '" + path + "': " + std::strerror(errno)});
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Error{"closing '" + path + "': " + std::strerror(errno)};
  }
  return tmp;
}

Status GgufWriter::publish(const std::string& temp, const std::string& path) {
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(temp.c_str());
    return Error{"renaming the finished file to '" + path + "': " + std::strerror(e)};
  }
  return {};
}

void GgufWriter::discard(const std::string& temp) { ::unlink(temp.c_str()); }

Status GgufWriter::write(const std::string& path) const {
  auto tmp = write_unpublished(path);
  if (!tmp) return tmp.error();
  return publish(tmp.value(), path);
}

}  // namespace hearth::gguf
