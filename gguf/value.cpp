#include "gguf/value.h"

namespace hearth::gguf {

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view kNames[kValueTypeCount] = {
      "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
      "bool", "string", "array", "uint64", "int64", "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < kValueTypeCount ? kNames[i] : "invalid";
}

size_t scalar_size(ValueType t) {
  static constexpr size_t kSizes[kValueTypeCount] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  auto i = static_cast<uint32_t>(t);
  return i < kValueTypeCount ? kSizes[i] : 0;
}

Value Value::of_raw(ValueType t, uint64_t bits) {
  HEARTH_CHECK(scalar_size(t) != 0);
  Value v;
  v.type_ = t;
  v.bits_ = bits;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = ValueType::STRING;
  v.str_ = std::move(s);
  return v;
}

Value Value::array(Array a) {
  Value v;
  v.type_ = ValueType::ARRAY;
  v.arr_ = std::make_shared<const Array>(std::move(a));
  return v;
}

Value Value::strings(std::vector<std::string> items) {
  Array a;
  a.elem = ValueType::STRING;
  a.count = items.size();
  a.strings = std::move(items);
  return array(std::move(a));
}

const Value* Metadata::find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &kv_[it->second].value;
}

Status Metadata::add(std::string key, Value v) {
  if (auto it = index_.find(key); it != index_.end()) {
    return Error{"duplicate key '" + key + "' (kv #" + std::to_string(it->second) + " and #" +
                 std::to_string(kv_.size()) + ")"};
  }
  index_.emplace(key, kv_.size());
  kv_.push_back({std::move(key), std::move(v)});
  return {};
}

void Metadata::set(std::string key, Value v) {
  erase(key);
  index_.emplace(key, kv_.size());
  kv_.push_back({std::move(key), std::move(v)});
}

bool Metadata::erase(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  kv_.erase(kv_.begin() + static_cast<std::ptrdiff_t>(it->second));
  reindex();
  return true;
}

void Metadata::reindex() {
  index_.clear();
  for (size_t i = 0; i < kv_.size(); ++i) index_.emplace(kv_[i].key, i);
}

Result<const Value*> Metadata::lookup(std::string_view key, ValueType want) const {
  const Value* v = find(key);
  if (!v) return Error{"key '" + std::string(key) + "' not found"};
  if (v->type() != want) {
    return Error{"key '" + std::string(key) + "' has type " + std::string(value_type_name(v->type())) +
                 ", expected " + std::string(value_type_name(want))};
  }
  return v;
}

Result<std::string> Metadata::get_string(std::string_view key) const {
  auto v = lookup(key, ValueType::STRING);
  if (!v) return v.error();
  return v.value()->str();
}

Result<uint64_t> Metadata::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return Error{"key '" + std::string(key) + "' not found"};
  int64_t s = 0;
  switch (v->type()) {
    case ValueType::U8: return uint64_t{v->as<uint8_t>()};
    case ValueType::U16: return uint64_t{v->as<uint16_t>()};
    case ValueType::U32: return uint64_t{v->as<uint32_t>()};
    case ValueType::U64: return v->as<uint64_t>();
    case ValueType::I8: s = v->as<int8_t>(); break;
    case ValueType::I16: s = v->as<int16_t>(); break;
    case ValueType::I32: s = v->as<int32_t>(); break;
    case ValueType::I64: s = v->as<int64_t>(); break;
    default:
      return Error{"key '" + std::string(key) + "' has type " + std::string(value_type_name(v->type())) +
                   ", expected an integer"};
  }
  if (s < 0) return Error{"key '" + std::string(key) + "' is negative (" + std::to_string(s) + ")"};
  return static_cast<uint64_t>(s);
}

Result<const Array*> Metadata::get_array(std::string_view key, ValueType elem) const {
  auto v = lookup(key, ValueType::ARRAY);
  if (!v) return v.error();
  const Array& a = v.value()->arr();
  if (a.elem != elem) {
    return Error{"key '" + std::string(key) + "' is an array of " + std::string(value_type_name(a.elem)) +
                 ", expected an array of " + std::string(value_type_name(elem))};
  }
  return &a;
}

}  // namespace hearth::gguf
