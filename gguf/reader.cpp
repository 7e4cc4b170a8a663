#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "gguf/gguf.h"

namespace hearth::gguf {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Reads little-endian fields from a bounded buffer. The first failure sticks: later
// reads return zeros and the first message is what the caller reports.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> b) : b_(b) {}
  bool ok() const { return err_.empty(); }
  const std::string& error() const { return err_; }
  size_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  void fail(std::string msg) {
    if (ok()) err_ = std::move(msg);
  }
  bool need(uint64_t n, std::string_view what) {
    if (!ok()) return false;
    if (n > remaining()) {
      fail("truncated: " + std::string(what) + " at offset " + std::to_string(pos_) + " needs " +
           std::to_string(n) + " bytes, " + std::to_string(remaining()) + " remain");
      return false;
    }
    return true;
  }
  template <class T> T get(std::string_view what) {
    T v{};
    if (need(sizeof(T), what)) {
      std::memcpy(&v, b_.data() + pos_, sizeof(T));
      pos_ += sizeof(T);
    }
    return v;
  }
  void bytes(void* dst, size_t n, std::string_view what) {
    if (need(n, what)) {
      if (n) std::memcpy(dst, b_.data() + pos_, n);
      pos_ += n;
    }
  }
  // A u64 length followed by that many bytes, capped at `cap`.
  std::string str(uint64_t cap, std::string_view what) {
    uint64_t n = get<uint64_t>(what);
    if (!ok()) return {};
    if (n > cap) {
      fail(std::string(what) + " length " + std::to_string(n) + " exceeds the limit of " +
           std::to_string(cap) + " bytes");
      return {};
    }
    if (!need(n, what)) return {};
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  std::string err_;
};

class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, const Limits& lim) : c_(bytes), lim_(lim), size_(bytes.size()) {}

  Status run(GgufFile& f) {
    uint32_t magic = c_.get<uint32_t>("magic");
    if (!c_.ok()) return Error{c_.error()};
    if (magic != kMagic) {
      char m[5] = {};
      std::memcpy(m, &magic, 4);
      for (char& ch : m) if (ch && (ch < 32 || ch > 126)) ch = '?';
      return Error{"not a GGUF file: magic is '" + std::string(m) + "' (" + hex32(magic) + "), expected 'GGUF'"};
    }
    f.version = c_.get<uint32_t>("version");
    if (!c_.ok()) return Error{c_.error()};
    if (f.version == 1) {
      return Error{"unsupported version 1: GGUF v1 is no longer supported (re-convert the model with a current converter)"};
    }
    if (f.version != 2 && f.version != 3) {
      std::string hint = (f.version & 0xffff) == 0 ? " (a big-endian file?)" : "";
      return Error{"unsupported version " + std::to_string(f.version) + hint + ": only GGUF v2 and v3 are read"};
    }
    uint64_t n_tensors = c_.get<uint64_t>("tensor_count");
    uint64_t n_kv = c_.get<uint64_t>("kv_count");
    if (!c_.ok()) return Error{c_.error()};
    // Smallest encodings: a kv is an 8-byte key length, a 4-byte type and a 1-byte
    // value; a tensor info is 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    if (n_kv > c_.remaining() / 13) {
      return Error{"kv_count " + std::to_string(n_kv) + " cannot fit in the " +
                   std::to_string(c_.remaining()) + " bytes that remain"};
    }
    if (n_tensors > c_.remaining() / 24) {
      return Error{"tensor_count " + std::to_string(n_tensors) + " cannot fit in the " +
                   std::to_string(c_.remaining()) + " bytes that remain"};
    }

    for (uint64_t i = 0; i < n_kv; ++i) {
      if (Status s = read_kv(f, i); !s) return s;
    }

    if (const Value* a = f.metadata.find("general.alignment")) {
      if (a->type() != ValueType::U32) {
        return Error{"key 'general.alignment' has type " + std::string(value_type_name(a->type())) +
                     ", expected uint32"};
      }
      uint32_t al = a->as<uint32_t>();
      if (al == 0 || (al & (al - 1)) != 0) {
        return Error{"key 'general.alignment' is " + std::to_string(al) + ", not a power of two"};
      }
      f.alignment = al;
    }

    f.tensors.reserve(n_tensors);
    std::unordered_map<std::string_view, uint64_t> names;
    names.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
      if (Status s = read_tensor_info(f, i); !s) return s;
      // Names are stable now: tensors was reserved, so no reallocation moves them.
      auto [it, fresh] = names.emplace(f.tensors.back().name, i);
      if (!fresh) {
        return Error{"duplicate tensor name '" + f.tensors.back().name + "' (tensors #" +
                     std::to_string(it->second) + " and #" + std::to_string(i) + ")"};
      }
    }

    uint64_t header_end = c_.pos();
    f.data_offset = (header_end + f.alignment - 1) / f.alignment * f.alignment;  // cannot overflow: header_end < 2^63
    return check_tensor_data(f);
  }

 private:
  Status read_kv(GgufFile& f, uint64_t i) {
    std::string ctx = "kv #" + std::to_string(i);
    std::string key = c_.str(lim_.max_key_bytes, ctx + " key");
    if (!c_.ok()) return Error{c_.error()};
    uint32_t type = c_.get<uint32_t>("type of key '" + key + "'");
    if (!c_.ok()) return Error{c_.error()};
    if (type >= kValueTypeCount) {
      return Error{"key '" + key + "' has invalid value type " + std::to_string(type)};
    }
    Value v = read_value(static_cast<ValueType>(type), key, 0);
    if (!c_.ok()) return Error{"key '" + key + "': " + c_.error()};
    return f.metadata.add(std::move(key), std::move(v));
  }

  Value read_value(ValueType t, const std::string& key, int depth) {
    if (t == ValueType::STRING) return Value::string(c_.str(lim_.max_string_bytes, "string value"));
    if (t != ValueType::ARRAY) {
      uint64_t bits = 0;
      c_.bytes(&bits, scalar_size(t), "value");
      if (t == ValueType::BOOL && bits > 1) {
        c_.fail("bool value is " + std::to_string(bits) + ", expected 0 or 1");
      }
      return Value::of_raw(t, bits);
    }
    if (depth >= lim_.max_array_depth) {
      c_.fail("arrays nested deeper than " + std::to_string(lim_.max_array_depth) + " levels");
      return {};
    }
    Array a;
    uint32_t et = c_.get<uint32_t>("array element type");
    a.count = c_.get<uint64_t>("array length");
    if (!c_.ok()) return {};
    if (et >= kValueTypeCount) {
      c_.fail("array has invalid element type " + std::to_string(et));
      return {};
    }
    a.elem = static_cast<ValueType>(et);
    if (a.count > lim_.max_array_elems) {
      c_.fail("array length " + std::to_string(a.count) + " exceeds the limit of " +
              std::to_string(lim_.max_array_elems));
      return {};
    }
    // Every element takes at least this many bytes, so the count is bounded by the
    // bytes that remain before anything is allocated.
    size_t min_elem = a.elem == ValueType::STRING ? 8 : a.elem == ValueType::ARRAY ? 12 : scalar_size(a.elem);
    if (a.count > c_.remaining() / min_elem) {
      c_.fail("array length " + std::to_string(a.count) + " of " + std::string(value_type_name(a.elem)) +
              " cannot fit in the " + std::to_string(c_.remaining()) + " bytes that remain");
      return {};
    }
    if (a.elem == ValueType::STRING) {
      a.strings.reserve(a.count);
      for (uint64_t j = 0; j < a.count && c_.ok(); ++j) a.strings.push_back(c_.str(lim_.max_string_bytes, "array string"));
    } else if (a.elem == ValueType::ARRAY) {
      a.arrays.reserve(a.count);
      for (uint64_t j = 0; j < a.count && c_.ok(); ++j) a.arrays.push_back(read_value(ValueType::ARRAY, key, depth + 1));
    } else {
      a.raw.resize(a.count * min_elem);
      c_.bytes(a.raw.data(), a.raw.size(), "array data");
      if (a.elem == ValueType::BOOL) {
        for (uint64_t j = 0; j < a.count && c_.ok(); ++j) {
          if (a.raw[j] > 1) c_.fail("bool array element " + std::to_string(j) + " is " + std::to_string(a.raw[j]));
        }
      }
    }
    if (!c_.ok()) return {};
    return Value::array(std::move(a));
  }

  Status read_tensor_info(GgufFile& f, uint64_t i) {
    TensorInfo t;
    t.name = c_.str(lim_.max_tensor_name_bytes, "name of tensor #" + std::to_string(i));
    if (!c_.ok()) return Error{c_.error()};
    std::string ctx = "tensor '" + t.name + "'";
    uint32_t n_dims = c_.get<uint32_t>(ctx + " n_dims");
    if (!c_.ok()) return Error{c_.error()};
    if (n_dims > static_cast<uint32_t>(kMaxDims)) {
      return Error{ctx + " has " + std::to_string(n_dims) + " dimensions, at most " + std::to_string(kMaxDims) + " allowed"};
    }
    t.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      t.ne[d] = c_.get<uint64_t>(ctx + " ne[" + std::to_string(d) + "]");
      if (c_.ok() && t.ne[d] > static_cast<uint64_t>(INT64_MAX)) {
        return Error{ctx + " ne[" + std::to_string(d) + "] = " + std::to_string(t.ne[d]) + " is negative as int64"};
      }
    }
    uint32_t type = c_.get<uint32_t>(ctx + " type");
    t.offset = c_.get<uint64_t>(ctx + " offset");
    if (!c_.ok()) return Error{c_.error()};
    const TypeInfo* ti = type_info(type);
    if (!ti) return Error{ctx + " has unknown type id " + std::to_string(type)};
    t.type = ti->type;

    uint64_t n = 1;
    for (int d = 0; d < kMaxDims; ++d) {
      if (__builtin_mul_overflow(n, t.ne[d], &n) || n > static_cast<uint64_t>(INT64_MAX)) {
        return Error{ctx + " element count overflows (shape " + shape_str(t) + ")"};
      }
    }
    t.n_elements = n;
    if (t.ne[0] % ti->block_size != 0) {
      return Error{ctx + " row length ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                   std::string(ti->name) + " block size " + std::to_string(ti->block_size)};
    }
    auto bytes = type_bytes(t.type, n, ctx);
    if (!bytes) return bytes.error();
    t.n_bytes = bytes.value();
    f.tensors.push_back(std::move(t));
    return {};
  }

  Status check_tensor_data(GgufFile& f) {
    for (const TensorInfo& t : f.tensors) {
      std::string ctx = "tensor '" + t.name + "'";
      if (t.offset % f.alignment != 0) {
        return Error{ctx + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                     std::to_string(f.alignment)};
      }
      uint64_t end = 0;
      if (__builtin_add_overflow(f.data_offset, t.offset, &end) || __builtin_add_overflow(end, t.n_bytes, &end) ||
          end > size_) {
        return Error{ctx + " data [" + std::to_string(t.offset) + ", +" + std::to_string(t.n_bytes) +
                     ") relative to data section at " + std::to_string(f.data_offset) +
                     " lies outside the file of " + std::to_string(size_) + " bytes"};
      }
    }
    std::vector<size_t> order(f.tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return f.tensors[a].offset < f.tensors[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo& a = f.tensors[order[k - 1]];
      const TensorInfo& b = f.tensors[order[k]];
      if (a.n_bytes > 0 && b.n_bytes > 0 && a.offset + a.n_bytes > b.offset) {
        return Error{"tensor '" + a.name + "' data [" + std::to_string(a.offset) + ", " +
                     std::to_string(a.offset + a.n_bytes) + ") overlaps tensor '" + b.name + "' at " +
                     std::to_string(b.offset)};
      }
    }
    return {};
  }

  static std::string shape_str(const TensorInfo& t) {
    std::string s = "[";
    for (int d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
  }

  Cursor c_;
  const Limits& lim_;
  uint64_t size_;
};

}  // namespace

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{"cannot open '" + path + "': " + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Error{"cannot stat '" + path + "': " + std::strerror(e)};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{"'" + path + "' is not a regular file"};
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Error{"cannot map '" + path + "': " + std::strerror(e)};
    }
    m->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, std::string name, const Limits& limits) {
  GgufFile f;
  f.name_ = std::move(name);
  f.bytes_ = bytes;
  f.file_size = bytes.size();
  Parser p(bytes, limits);
  if (Status s = p.run(f); !s) return Error{f.name_ + ": " + s.message()};
  return f;
}

Result<GgufFile> GgufFile::open(const std::string& path, const Limits& limits) {
  auto m = MappedFile::open(path);
  if (!m) return m.error();
  auto f = parse(m.value()->bytes(), path, limits);
  if (!f) return f.error();
  f.value().map_ = std::move(m.value());
  return f;
}

const TensorInfo* GgufFile::find_tensor(std::string_view n) const {
  for (const TensorInfo& t : tensors)
    if (t.name == n) return &t;
  return nullptr;
}

std::span<const uint8_t> GgufFile::tensor_data(const TensorInfo& t) const {
  return bytes_.subspan(data_offset + t.offset, t.n_bytes);
}

}  // namespace hearth::gguf
