#include "server/modelfile.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "model/unicode.h"

namespace hearth::server {

namespace {

enum class OptKind { Int, Float, Bool, List };

const std::map<std::string, OptKind, std::less<>>& option_kinds() {
  static const std::map<std::string, OptKind, std::less<>> k = {
      {"num_ctx", OptKind::Int},          {"num_batch", OptKind::Int},        {"num_gpu", OptKind::Int},
      {"main_gpu", OptKind::Int},         {"use_mmap", OptKind::Bool},        {"num_thread", OptKind::Int},
      {"num_keep", OptKind::Int},         {"seed", OptKind::Int},             {"num_predict", OptKind::Int},
      {"top_k", OptKind::Int},            {"top_p", OptKind::Float},          {"min_p", OptKind::Float},
      {"typical_p", OptKind::Float},      {"repeat_last_n", OptKind::Int},    {"temperature", OptKind::Float},
      {"repeat_penalty", OptKind::Float}, {"presence_penalty", OptKind::Float}, {"frequency_penalty", OptKind::Float},
      {"stop", OptKind::List},            {"draft_num_predict", OptKind::Int}};
  return k;
}

const std::vector<std::string>& deprecated_options() {
  static const std::vector<std::string> d = {"penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only",
                                             "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta", "tfs_z", "numa"};
  return d;
}

// UTF-16 (with BOM) to UTF-8.
std::string utf16_to_utf8(std::string_view s, bool big_endian) {
  std::string o;
  auto unit = [&](size_t k) {
    const unsigned char a = static_cast<unsigned char>(s[k]), b = static_cast<unsigned char>(s[k + 1]);
    return static_cast<uint32_t>(big_endian ? (a << 8 | b) : (b << 8 | a));
  };
  for (size_t k = 2; k + 1 < s.size(); k += 2) {
    uint32_t cp = unit(k);
    if (cp >= 0xD800 && cp < 0xDC00 && k + 3 < s.size()) {
      const uint32_t lo = unit(k + 2);
      if (lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        k += 2;
      }
    }
    o += model::encode_utf8(cp);
  }
  return o;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && (blank(s[a]) || s[a] == '\n')) ++a;
  while (b > a && (blank(s[b - 1]) || s[b - 1] == '\n')) --b;
  return std::string(s.substr(a, b - a));
}

}  // namespace

bool known_option(std::string_view key) { return option_kinds().count(key) > 0; }

Result<Modelfile> parse_modelfile(std::string_view input) {
  std::string text;
  if (input.size() >= 2 && static_cast<unsigned char>(input[0]) == 0xFF && static_cast<unsigned char>(input[1]) == 0xFE)
    text = utf16_to_utf8(input, false);
  else if (input.size() >= 2 && static_cast<unsigned char>(input[0]) == 0xFE && static_cast<unsigned char>(input[1]) == 0xFF)
    text = utf16_to_utf8(input, true);
  else if (input.substr(0, 3) == "\xEF\xBB\xBF")
    text = std::string(input.substr(3));
  else
    text = std::string(input);

  static const std::vector<std::string> kCommands = {"from", "license", "template", "system", "adapter", "draft",
                                                     "renderer", "parser", "parameter", "message", "requires"};
  Modelfile mf;
  int line = 1;
  size_t p = 0;
  auto fail = [&](int at, const std::string& msg) { return Error{"(line " + std::to_string(at) + "): " + msg}; };
  while (p < text.size()) {
    const char c = text[p];
    if (c == '\n') { ++line; ++p; continue; }
    if (blank(c)) { ++p; continue; }
    if (c == '#') {  // a comment runs to the end of the line
      while (p < text.size() && text[p] != '\n') ++p;
      continue;
    }
    const int at = line;
    size_t q = p;
    while (q < text.size() && std::isalpha(static_cast<unsigned char>(text[q]))) ++q;
    std::string name = text.substr(p, q - p);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char x) { return static_cast<char>(std::tolower(x)); });
    if (name.empty() || std::find(kCommands.begin(), kCommands.end(), name) == kCommands.end() ||
        (q < text.size() && !blank(text[q]) && text[q] != '\n'))
      return fail(at, "command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", "
                      "\"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"");
    p = q;
    while (p < text.size() && blank(text[p])) ++p;
    ModelfileCommand cmd;
    cmd.name = name;
    cmd.line = at;
    if (name == "parameter" || name == "message") {
      q = p;
      while (q < text.size() && (std::isalnum(static_cast<unsigned char>(text[q])) || text[q] == '_')) ++q;
      std::string word = text.substr(p, q - p);
      if (word.empty() || q >= text.size() || !blank(text[q])) {
        if (q >= text.size()) return Error{"unexpected EOF"};
        return fail(at, name == "parameter" ? "invalid parameter name" : "missing message role");
      }
      if (name == "parameter") {
        cmd.parameter = true;
        cmd.name = word;
      } else {
        std::transform(word.begin(), word.end(), word.begin(), [](unsigned char x) { return static_cast<char>(std::tolower(x)); });
        if (word != "system" && word != "user" && word != "assistant")
          return fail(at, "message role must be one of \"system\", \"user\", or \"assistant\"");
        cmd.role = word;
      }
      p = q;
      while (p < text.size() && blank(text[p])) ++p;
    }
    // The value: to the end of the line, or through the closing quote of a "…" or """…"""
    // value (which may span lines), then to the end of that line.
    size_t end;
    std::string quote;
    if (text.compare(p, 3, "\"\"\"") == 0) quote = "\"\"\"";
    else if (p < text.size() && text[p] == '"') quote = "\"";
    if (!quote.empty()) {
      const size_t close = text.find(quote, p + quote.size());
      if (close == std::string::npos) return Error{"unexpected EOF"};
      end = text.find('\n', close + quote.size());
    } else {
      end = text.find('\n', p);
    }
    if (end == std::string::npos) end = text.size();
    std::string value = trim(std::string_view(text).substr(p, end - p));
    for (size_t k = p; k < end; ++k) line += text[k] == '\n';
    p = end;
    if (!quote.empty() && value.size() >= 2 * quote.size() && value.compare(value.size() - quote.size(), quote.size(), quote) == 0)
      value = value.substr(quote.size(), value.size() - 2 * quote.size());
    else if (!quote.empty())
      return fail(at, "unexpected text after the closing quote");
    if (value.empty() && quote.empty()) return fail(at, "missing value for " + name);
    cmd.args = value;
    mf.commands.push_back(std::move(cmd));
  }
  if (std::none_of(mf.commands.begin(), mf.commands.end(), [](const ModelfileCommand& c) { return !c.parameter && c.name == "from"; }))
    return Error{"no FROM line"};
  return mf;
}

Result<tmpl::Value> format_params(const std::vector<std::pair<std::string, std::string>>& params,
                                  std::vector<std::string>* skipped) {
  tmpl::Map out;
  for (const auto& [key, raw] : params) {
    auto it = option_kinds().find(key);
    if (it == option_kinds().end()) {
      if (std::find(deprecated_options().begin(), deprecated_options().end(), key) != deprecated_options().end()) {
        if (skipped) skipped->push_back(key);
        continue;
      }
      return Error{"unknown parameter '" + key + "'"};
    }
    const std::string bad = " value [" + raw + "]";
    switch (it->second) {
      case OptKind::List: {
        tmpl::Value& list = out[key];
        if (list.kind != tmpl::Value::Kind::List) list = tmpl::Value::of_list();
        list.list->push_back(tmpl::Value::str(raw));
        break;
      }
      case OptKind::Int: {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(raw.c_str(), &end, 10);
        if (raw.empty() || *end || errno) return Error{"invalid int" + bad};
        out[key] = tmpl::Value::integer(v);
        break;
      }
      case OptKind::Float: {
        errno = 0;
        char* end = nullptr;
        const double v = std::strtod(raw.c_str(), &end);
        if (raw.empty() || *end || errno) return Error{"invalid float" + bad};
        out[key] = tmpl::Value::number(v);
        break;
      }
      case OptKind::Bool: {
        // strconv.ParseBool's spellings.
        static const std::vector<std::string> t = {"1", "t", "T", "TRUE", "true", "True"};
        static const std::vector<std::string> f = {"0", "f", "F", "FALSE", "false", "False"};
        if (std::find(t.begin(), t.end(), raw) != t.end()) out[key] = tmpl::Value::boolean(true);
        else if (std::find(f.begin(), f.end(), raw) != f.end()) out[key] = tmpl::Value::boolean(false);
        else return Error{"invalid bool" + bad};
        break;
      }
    }
  }
  return tmpl::Value::of_map(std::move(out));
}

}  // namespace hearth::server
