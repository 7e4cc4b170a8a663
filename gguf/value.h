// GGUF metadata values and the ordered key/value table.
//
// Scalars keep their exact little-endian bits, so a file read and written back is
// byte-identical (float NaN payloads included). Arrays are immutable once built and
// shared between copies of a Value.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "gguf/result.h"

namespace hearth::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
inline constexpr uint32_t kValueTypeCount = 13;

// "uint8", "int32", "float32", "bool", "string", "array", ... (gguf-py's names).
std::string_view value_type_name(ValueType t);
// Bytes of one scalar of type t; 0 for STRING and ARRAY.
size_t scalar_size(ValueType t);

// The C++ type that holds each scalar kind.
template <ValueType> struct ScalarOf;
template <> struct ScalarOf<ValueType::U8> { using type = uint8_t; };
template <> struct ScalarOf<ValueType::I8> { using type = int8_t; };
template <> struct ScalarOf<ValueType::U16> { using type = uint16_t; };
template <> struct ScalarOf<ValueType::I16> { using type = int16_t; };
template <> struct ScalarOf<ValueType::U32> { using type = uint32_t; };
template <> struct ScalarOf<ValueType::I32> { using type = int32_t; };
template <> struct ScalarOf<ValueType::F32> { using type = float; };
template <> struct ScalarOf<ValueType::BOOL> { using type = bool; };
template <> struct ScalarOf<ValueType::U64> { using type = uint64_t; };
template <> struct ScalarOf<ValueType::I64> { using type = int64_t; };
template <> struct ScalarOf<ValueType::F64> { using type = double; };

// The value type that holds C++ type T (uint32_t -> U32, ...).
template <class T> constexpr ValueType value_type_of() {
  if constexpr (std::is_same_v<T, uint8_t>) return ValueType::U8;
  else if constexpr (std::is_same_v<T, int8_t>) return ValueType::I8;
  else if constexpr (std::is_same_v<T, uint16_t>) return ValueType::U16;
  else if constexpr (std::is_same_v<T, int16_t>) return ValueType::I16;
  else if constexpr (std::is_same_v<T, uint32_t>) return ValueType::U32;
  else if constexpr (std::is_same_v<T, int32_t>) return ValueType::I32;
  else if constexpr (std::is_same_v<T, float>) return ValueType::F32;
  else if constexpr (std::is_same_v<T, bool>) return ValueType::BOOL;
  else if constexpr (std::is_same_v<T, uint64_t>) return ValueType::U64;
  else if constexpr (std::is_same_v<T, int64_t>) return ValueType::I64;
  else if constexpr (std::is_same_v<T, double>) return ValueType::F64;
  else static_assert(sizeof(T) == 0, "not a GGUF scalar type");
}

class Value;

// An array: element type, count, and the elements in one of three stores.
struct Array {
  ValueType elem = ValueType::U8;
  uint64_t count = 0;
  std::vector<uint8_t> raw;          // scalar elements, packed little-endian as in the file
  std::vector<std::string> strings;  // elem == STRING
  std::vector<Value> arrays;         // elem == ARRAY: each an ARRAY Value

  template <class T> T at(uint64_t i) const {
    HEARTH_CHECK(elem == value_type_of<T>() && i < count);
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    return v;
  }
};

class Value {
 public:
  Value() = default;
  template <class T>
    requires std::is_arithmetic_v<T>
  static Value of(T v) {
    Value out;
    out.type_ = value_type_of<T>();
    if constexpr (std::is_same_v<T, bool>) {
      out.bits_ = v ? 1 : 0;
    } else {
      std::memcpy(&out.bits_, &v, sizeof(T));
    }
    return out;
  }
  static Value of_raw(ValueType t, uint64_t bits);  // scalar from its file bits
  static Value string(std::string s);
  static Value array(Array a);
  template <class T> static Value array_of(std::span<const T> items);
  static Value strings(std::vector<std::string> items);

  ValueType type() const { return type_; }
  bool is_scalar() const { return type_ != ValueType::STRING && type_ != ValueType::ARRAY; }
  uint64_t raw_bits() const { return bits_; }  // scalar bits, zero-extended

  // Exact-type scalar access; the caller has checked type().
  template <class T> T as() const {
    HEARTH_CHECK(type_ == value_type_of<T>());
    if constexpr (std::is_same_v<T, bool>) {
      return bits_ != 0;
    } else {
      T v;
      std::memcpy(&v, &bits_, sizeof(T));
      return v;
    }
  }
  const std::string& str() const { HEARTH_CHECK(type_ == ValueType::STRING); return str_; }
  const Array& arr() const { HEARTH_CHECK(type_ == ValueType::ARRAY); return *arr_; }

 private:
  ValueType type_ = ValueType::U8;
  uint64_t bits_ = 0;
  std::string str_;
  std::shared_ptr<const Array> arr_;
};

template <class T> Value Value::array_of(std::span<const T> items) {
  Array a;
  a.elem = value_type_of<T>();
  a.count = items.size();
  a.raw.resize(items.size() * sizeof(T));
  if (!items.empty()) std::memcpy(a.raw.data(), items.data(), a.raw.size());
  return array(std::move(a));
}

struct KeyValue {
  std::string key;
  Value value;
};

// Ordered key/value table with unique keys and typed, checked getters.
class Metadata {
 public:
  const std::vector<KeyValue>& entries() const { return kv_; }
  size_t size() const { return kv_.size(); }
  const Value* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }

  // Appends; a key that is already present is an error naming it.
  Status add(std::string key, Value v);
  // Replaces: removes the key if present and appends it at the end (llama.cpp's
  // gguf_set_* order, which the quantizer's byte identity depends on).
  void set(std::string key, Value v);
  bool erase(std::string_view key);

  // Typed getters. Errors: key missing; stored type differs from the one asked for.
  template <class T> Result<T> get(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  // Any integer kind, converted if it is non-negative and fits in 64 bits.
  Result<uint64_t> get_uint(std::string_view key) const;
  // An array whose elements are of type elem.
  Result<const Array*> get_array(std::string_view key, ValueType elem) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  Result<const Value*> lookup(std::string_view key, ValueType want) const;
  void reindex();
  std::vector<KeyValue> kv_;
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> index_;
};

template <class T> Result<T> Metadata::get(std::string_view key) const {
  auto v = lookup(key, value_type_of<T>());
  if (!v) return v.error();
  return v.value()->template as<T>();
}

}  // namespace hearth::gguf
