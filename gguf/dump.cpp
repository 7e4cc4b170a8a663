#include "gguf/dump.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>

namespace hearth::gguf {

std::string py_float_repr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // e.g. "-1.2345e-05", "1e+16"
  std::string out;
  size_t i = 0;
  if (sci[0] == '-') {
    out = "-";
    i = 1;
  }
  size_t e = sci.find('e');
  std::string digits;
  for (size_t k = i; k < e; ++k)
    if (sci[k] != '.') digits += sci[k];
  int exp10 = std::stoi(sci.substr(e + 1));
  int decpt = exp10 + 1;  // position of the decimal point relative to the digits
  if (decpt > 16 || decpt < -3) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    return out + eb;
  }
  if (decpt <= 0) return out + "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  if (static_cast<size_t>(decpt) >= digits.size())
    return out + digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
  return out + digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
}

bool valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::string json_quote(std::string_view s) {
  if (!valid_utf8(s)) {
    static const char* kHex = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) {
      h += kHex[c >> 4];
      h += kHex[c & 15];
    }
    return "{\"invalid_utf8_hex\":\"" + h + "\"}";
  }
  std::string o = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      case '\b': o += "\\b"; break;
      case '\f': o += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += ch;
        }
    }
  }
  return o + "\"";
}

namespace {

// One scalar as JSON; `bits` are its little-endian file bits.
std::string scalar_json(ValueType t, uint64_t bits) {
  switch (t) {
    case ValueType::U8: return std::to_string(static_cast<uint8_t>(bits));
    case ValueType::I8: return std::to_string(static_cast<int8_t>(bits));
    case ValueType::U16: return std::to_string(static_cast<uint16_t>(bits));
    case ValueType::I16: return std::to_string(static_cast<int16_t>(bits));
    case ValueType::U32: return std::to_string(static_cast<uint32_t>(bits));
    case ValueType::I32: return std::to_string(static_cast<int32_t>(bits));
    case ValueType::U64: return std::to_string(bits);
    case ValueType::I64: return std::to_string(static_cast<int64_t>(bits));
    case ValueType::BOOL: return bits ? "true" : "false";
    case ValueType::F32: {
      float f;
      auto b32 = static_cast<uint32_t>(bits);
      std::memcpy(&f, &b32, 4);
      return py_float_repr(f);
    }
    case ValueType::F64: {
      double d;
      std::memcpy(&d, &bits, 8);
      return py_float_repr(d);
    }
    default: return "null";
  }
}

uint64_t elem_bits(const Array& a, uint64_t i) {
  uint64_t bits = 0;
  size_t sz = scalar_size(a.elem);
  std::memcpy(&bits, a.raw.data() + i * sz, sz);
  return bits;
}

void array_json(const Array& a, std::string& o) {
  o += "{\"elem_type\":\"";
  o += value_type_name(a.elem);
  o += "\",\"values\":[";
  for (uint64_t i = 0; i < a.count; ++i) {
    if (i) o += ',';
    if (a.elem == ValueType::STRING) o += json_quote(a.strings[i]);
    else if (a.elem == ValueType::ARRAY) array_json(a.arrays[i].arr(), o);
    else o += scalar_json(a.elem, elem_bits(a, i));
  }
  o += "]}";
}

std::string value_json(const Value& v) {
  if (v.type() == ValueType::STRING) return json_quote(v.str());
  if (v.type() == ValueType::ARRAY) {
    std::string o;
    array_json(v.arr(), o);
    return o;
  }
  return scalar_json(v.type(), v.raw_bits());
}

std::string shape_text(const TensorInfo& t) {
  std::string s = "[";
  for (int d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}


// A value for the terminal: strings shown as JSON literals, arrays cut after a few items.
std::string value_text(const Value& v) {
  if (v.type() != ValueType::ARRAY) {
    std::string s = value_json(v);
    if (s.size() > 160) s = s.substr(0, 157) + "...";
    return s;
  }
  const Array& a = v.arr();
  constexpr uint64_t kShow = 6;
  std::string o = "[";
  for (uint64_t i = 0; i < a.count && i < kShow; ++i) {
    if (i) o += ", ";
    if (a.elem == ValueType::STRING) {
      std::string s = json_quote(a.strings[i]);
      o += s.size() > 40 ? s.substr(0, 37) + "..." : s;
    } else if (a.elem == ValueType::ARRAY) {
      o += "[array of " + std::to_string(a.arrays[i].arr().count) + "]";
    } else {
      o += scalar_json(a.elem, elem_bits(a, i));
    }
  }
  if (a.count > kShow) o += ", ... " + std::to_string(a.count - kShow) + " more";
  return o + "]";
}

std::string type_text(const Value& v) {
  if (v.type() != ValueType::ARRAY) return std::string(value_type_name(v.type()));
  return std::string(value_type_name(v.arr().elem)) + "[" + std::to_string(v.arr().count) + "]";
}

}  // namespace

void write_json(const GgufFile& f, std::ostream& out) {
  out << "{\n \"version\": " << f.version << ",\n \"tensor_count\": " << f.tensors.size()
      << ",\n \"kv_count\": " << f.metadata.size() << ",\n \"alignment\": " << f.alignment
      << ",\n \"data_offset\": " << f.data_offset << ",\n \"kv\": [\n";
  const auto& kvs = f.metadata.entries();
  for (size_t i = 0; i < kvs.size(); ++i) {
    out << "  {\"key\":" << json_quote(kvs[i].key) << ",\"type\":\"" << value_type_name(kvs[i].value.type())
        << "\",\"value\":" << value_json(kvs[i].value) << "}" << (i + 1 < kvs.size() ? ",\n" : "");
  }
  out << "\n ],\n \"tensors\": [\n";
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const TensorInfo& t = f.tensors[i];
    out << "  {\"name\":" << json_quote(t.name) << ",\"type\":\"" << type_info(t.type).name
        << "\",\"type_id\":" << static_cast<uint32_t>(t.type) << ",\"shape\":[";
    for (int d = 0; d < t.n_dims; ++d) out << (d ? "," : "") << t.ne[d];
    out << "],\"offset\":" << t.offset << ",\"nbytes\":" << t.n_bytes << "}" << (i + 1 < f.tensors.size() ? ",\n" : "");
  }
  out << "\n ]\n}\n";
}

void write_text(const GgufFile& f, std::ostream& out, bool tensors) {
  uint64_t params = 0, data_bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // name -> (count, bytes)
  for (const TensorInfo& t : f.tensors) {
    params += t.n_elements;
    data_bytes += t.n_bytes;
    auto& e = by_type[std::string(type_info(t.type).name)];
    e.first += 1;
    e.second += t.n_bytes;
  }
  out << "file:        " << f.name() << "\n"
      << "size:        " << f.file_size << " bytes (" << human_bytes(f.file_size) << ")\n"
      << "version:     " << f.version << "\n"
      << "alignment:   " << f.alignment << "\n"
      << "data offset: " << f.data_offset << "\n"
      << "metadata:    " << f.metadata.size() << " keys\n"
      << "tensors:     " << f.tensors.size() << " (" << params << " elements, " << human_bytes(data_bytes) << ")\n";
  if (!by_type.empty()) {
    out << "types:      ";
    for (const auto& [name, cb] : by_type) out << " " << name << " x" << cb.first << " (" << human_bytes(cb.second) << ")";
    out << "\n";
  }
  size_t kw = 0, tw = 0;
  for (const KeyValue& kv : f.metadata.entries()) {
    kw = std::max(kw, kv.key.size());
    tw = std::max(tw, type_text(kv.value).size());
  }
  out << "\nmetadata:\n";
  for (const KeyValue& kv : f.metadata.entries()) {
    std::string ty = type_text(kv.value);
    out << "  " << kv.key << std::string(kw - kv.key.size() + 2, ' ') << ty << std::string(tw - ty.size() + 2, ' ')
        << value_text(kv.value) << "\n";
  }
  if (tensors) {
    size_t nw = 4;
    for (const TensorInfo& t : f.tensors) nw = std::max(nw, t.name.size());
    out << "\ntensors:\n";
    char line[512];
    std::snprintf(line, sizeof line, "  %-5s %-*s  %-7s  %-24s  %14s  %12s\n", "#", static_cast<int>(nw), "name",
                  "type", "shape", "offset", "bytes");
    out << line;
    for (size_t i = 0; i < f.tensors.size(); ++i) {
      const TensorInfo& t = f.tensors[i];
      out << "  " << i << std::string(i < 10000 ? 6 - std::to_string(i).size() : 1, ' ') << t.name
          << std::string(nw - t.name.size() + 2, ' ');
      std::snprintf(line, sizeof line, "%-7s  %-24s  %14llu  %12llu\n", std::string(type_info(t.type).name).c_str(),
                    shape_text(t).c_str(), static_cast<unsigned long long>(t.offset),
                    static_cast<unsigned long long>(t.n_bytes));
      out << line;
    }
  }
}

std::string human_bytes(uint64_t b, int decimals) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f %s", u ? decimals : 0, v, units[u]);
  return buf;
}

}  // namespace hearth::gguf
