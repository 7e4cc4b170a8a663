// Human and machine descriptions of a GGUF file (`hearth gguf info`).
#pragma once

#include <ostream>
#include <string>

#include "gguf/gguf.h"

namespace hearth::gguf {

// The JSON schema of ../shared/reference/gguf/*.json, formatted the same way (one kv
// and one tensor per line, Python's shortest float repr, non-ASCII kept as UTF-8,
// invalid UTF-8 strings as {"invalid_utf8_hex": ...}), so dumps compare as text.
void write_json(const GgufFile& f, std::ostream& out);

// Text: header, every key with its type and value (long arrays summarised), a summary
// of tensor types, and with `tensors` the full tensor table.
void write_text(const GgufFile& f, std::ostream& out, bool tensors);

// Python's repr() of a double: shortest round-trip digits, exponent form when the
// decimal exponent is < -4 or >= 16 ("1e-05", "10000.0", "1e+16").
std::string py_float_repr(double v);
// JSON string literal as Python's json.dumps(ensure_ascii=False) writes it.
std::string json_quote(std::string_view s);
bool valid_utf8(std::string_view s);
// Bytes in binary units ("1.50 GiB"; whole bytes below 1 KiB) with `decimals` digits.
std::string human_bytes(uint64_t bytes, int decimals = 2);

}  // namespace hearth::gguf
