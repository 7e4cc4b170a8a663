// The client verbs that talk to a running server over HTTP, as the ollama CLI does:
// create, list, show, cp, rm, ps. The server is OLLAMA_HOST / HEARTH_HOST
// (default 127.0.0.1:11434); HEARTH_API_KEY is sent as a bearer token.
#include <httplib.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>

#include "server/api.h"
#include "server/gotemplate.h"
#include "server/modelfile.h"
#include "server/store.h"
#include "tools/client.h"
#include "tools/commands.h"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;
using server::tmpl::Value;

std::string ago(const std::string& rfc3339) {
  std::tm tm{};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return rfc3339;
  // The offset after the seconds (Z or ±hh:mm).
  long off = 0;
  const size_t z = rfc3339.find_first_of("Z+-", 19);
  if (z != std::string::npos && rfc3339[z] != 'Z') {
    int hh = 0, mm = 0;
    std::sscanf(rfc3339.c_str() + z + 1, "%d:%d", &hh, &mm);
    off = (rfc3339[z] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
  }
  const std::time_t then = timegm(&tm) - off;
  const long s = static_cast<long>(std::difftime(std::time(nullptr), then));
  auto unit = [](long n, const char* one) { return std::to_string(n) + " " + one + (n == 1 ? "" : "s") + " ago"; };
  if (s < 60) return s <= 1 ? "Less than a second ago" : unit(s, "second");
  if (s < 3600) return unit(s / 60, "minute");
  if (s < 86400) return unit(s / 3600, "hour");
  if (s < 86400 * 30) return unit(s / 86400, "day");
  return unit(s / (86400 * 30), "month");
}

// ollama ps's UNTIL column: "4 minutes from now", "Forever" (keep-alive negative).
std::string until(const std::string& rfc3339) {
  std::tm tm{};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return rfc3339;
  const long s = static_cast<long>(std::difftime(timegm(&tm), std::time(nullptr)));
  if (s > 100L * 365 * 86400) return "Forever";
  if (s < 60) return "Less than a minute from now";
  const long n = s < 3600 ? s / 60 : s < 86400 ? s / 3600 : s / 86400;
  const char* unit = s < 3600 ? "minute" : s < 86400 ? "hour" : "day";
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s") + " from now";
}

void progress_bar(const std::string& label, uint64_t done, uint64_t total) {
  const int width = 30;
  const double f = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int filled = static_cast<int>(f * width);
  std::fprintf(stderr, "\r%s %3.0f%% [%s%s] %s/%s", label.c_str(), f * 100, std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), human_bytes(static_cast<double>(done)).c_str(),
               human_bytes(static_cast<double>(total)).c_str());
  std::fflush(stderr);
}

// Uploads a local file as a blob unless the server has it (HEAD first); returns its digest.
Result<std::string> upload(Client& c, const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{"cannot read " + file.string()};
  server::Sha256 sha;
  std::vector<char> buf(size_t{1} << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) sha.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  const std::string digest = "sha256:" + sha.hex();
  auto head = c.http->Head(("/api/blobs/" + digest).c_str(), c.headers);
  if (!head) return Error{describe(head, c)};
  if (head->status == 200) return digest;
  const uint64_t size = fs::file_size(file);
  std::ifstream data(file, std::ios::binary);
  const std::string label = "copying file " + digest.substr(7, 12);
  auto r = c.http->Post(
      ("/api/blobs/" + digest).c_str(), c.headers, size,
      [&](size_t offset, size_t length, httplib::DataSink& sink) {
        std::vector<char> chunk(std::min<size_t>(length, size_t{1} << 20));
        data.seekg(static_cast<std::streamoff>(offset));
        data.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        const size_t n = static_cast<size_t>(data.gcount());
        if (n == 0) return false;
        sink.write(chunk.data(), n);
        progress_bar(label, offset + n, size);
        return true;
      },
      "application/octet-stream");
  std::fputc('\n', stderr);
  if (!r || (r->status != 200 && r->status != 201)) return Error{describe(r, c)};
  return digest;
}

fs::path expand(const std::string& p, const fs::path& base) {
  fs::path out;
  if (p == "~" || p.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    out = fs::path(home ? home : "");
    if (p.size() > 2) out /= fs::path(p).lexically_relative("~");
  } else {
    out = p;
  }
  return out.is_absolute() ? out : base / out;
}

int cmd_create(const Args& args) {
  std::string name, modelfile = "Modelfile", quantize;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "-f" || args[i] == "--file") && i + 1 < args.size()) modelfile = args[++i];
    else if ((args[i] == "-q" || args[i] == "--quantize") && i + 1 < args.size()) quantize = args[++i];
    else if (args[i].rfind("-", 0) != 0 && name.empty()) name = args[i];
    else return fail("unexpected argument '" + args[i] + "'\nusage: hearth create NAME [-f Modelfile] [-q TYPE]");
  }
  if (name.empty()) return fail("usage: hearth create NAME [-f Modelfile] [-q TYPE]");
  std::ifstream in(modelfile, std::ios::binary);
  if (!in) return fail("cannot read the Modelfile '" + modelfile + "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto mf = server::parse_modelfile(text);
  if (!mf) return fail(mf.message());
  auto c = connect();
  if (!c) return fail(c.message());
  const fs::path base = fs::absolute(fs::path(modelfile)).parent_path();

  std::string from;
  std::map<std::string, std::string> files, adapters;
  std::vector<std::pair<std::string, std::string>> params;
  std::string tmpl_text, system;
  bool has_template = false, has_system = false;
  std::vector<std::string> licenses;
  std::string messages;
  std::map<std::string, std::string> extra;  // renderer, parser, requires
  auto add_files = [&](const fs::path& p, std::map<std::string, std::string>& into) -> Status {
    std::vector<fs::path> list;
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.path().extension() == ".gguf") list.push_back(e.path());
      if (list.empty()) return Error{"no GGUF files in " + p.string()};
    } else {
      list.push_back(p);
    }
    for (const fs::path& f : list) {
      auto d = upload(c.value(), f);
      if (!d) return d.error();
      into[f.filename().string()] = d.value();
    }
    return {};
  };
  for (const server::ModelfileCommand& cmd : mf.value().commands) {
    if (cmd.parameter) {
      params.emplace_back(cmd.name, cmd.args);
      continue;
    }
    if (cmd.name == "from" || cmd.name == "adapter") {
      const fs::path p = expand(cmd.args, base);
      std::error_code ec;
      if (fs::exists(p, ec)) {
        if (Status s = add_files(p, cmd.name == "from" ? files : adapters); !s) return fail(s.message());
      } else if (cmd.name == "adapter") {
        return fail("adapter file " + p.string() + " does not exist");
      } else {
        from = cmd.args;
      }
    } else if (cmd.name == "template") {
      tmpl_text = cmd.args;
      has_template = true;
    } else if (cmd.name == "system") {
      system = cmd.args;
      has_system = true;
    } else if (cmd.name == "license") {
      licenses.push_back(cmd.args);
    } else if (cmd.name == "message") {
      messages += (messages.empty() ? "" : ",") + std::string("{\"role\":") + jstr(cmd.role) + ",\"content\":" + jstr(cmd.args) + "}";
    } else {
      extra[cmd.name] = cmd.args;
    }
  }
  std::vector<std::string> skipped;
  auto typed = server::format_params(params, &skipped);
  if (!typed) return fail(typed.message());
  for (const std::string& s : skipped) std::fprintf(stderr, "warning: parameter %s is deprecated and ignored\n", s.c_str());

  std::string body = "{\"model\":" + jstr(name);
  if (!from.empty()) body += ",\"from\":" + jstr(from);
  auto map_json = [](const std::map<std::string, std::string>& m) {
    std::string o = "{";
    for (const auto& [k, v] : m) {
      if (o.size() > 1) o += ',';
      o += jstr(k);
      o += ':';
      o += jstr(v);
    }
    return o + "}";
  };
  if (!files.empty()) body += ",\"files\":" + map_json(files);
  if (!adapters.empty()) body += ",\"adapters\":" + map_json(adapters);
  if (has_template) body += ",\"template\":" + jstr(tmpl_text);
  if (has_system) body += ",\"system\":" + jstr(system);
  if (!licenses.empty()) {
    body += ",\"license\":[";
    for (size_t i = 0; i < licenses.size(); ++i) body += (i ? "," : "") + jstr(licenses[i]);
    body += "]";
  }
  if (!typed.value().map->empty()) body += ",\"parameters\":" + server::tmpl::to_json(typed.value());
  if (!messages.empty()) body += ",\"messages\":[" + messages + "]";
  if (!quantize.empty()) body += ",\"quantize\":" + jstr(quantize);
  for (const auto& [k, v] : extra) body += "," + jstr(k) + ":" + jstr(v);
  body += "}";

  // Progress lines as they come; the last says success or carries the error.
  std::string last_status;
  Status st = stream_json(c.value(), "/api/create", body, [&](const Value& v) {
    const std::string status = v.field("status").s;
    const Value& total = v.field("total");
    if (total.kind == Value::Kind::Int && total.i > 0) {
      progress_bar(status, static_cast<uint64_t>(v.field("completed").i), static_cast<uint64_t>(total.i));
    } else {
      if (last_status.find("quantizing") == 0 && status != last_status) std::fputc('\n', stderr);
      std::fprintf(stderr, "%s\n", status.c_str());
    }
    last_status = status;
    return true;
  });
  if (!st) return fail(st.message());
  if (last_status != "success") return fail("the server ended the stream without success");
  return 0;
}

int cmd_list(const Args& args) {
  if (!args.empty()) return fail("usage: hearth list");
  auto v = call_json("/api/tags");
  if (!v) return fail(v.message());
  std::printf("%-40s %-14s %-10s %s\n", "NAME", "ID", "SIZE", "MODIFIED");
  const Value& models = v.value().field("models");
  if (models.kind == Value::Kind::List)
    for (const Value& m : *models.list) {
      const Value& size = m.field("size");
      std::printf("%-40s %-14s %-10s %s\n", m.field("name").s.c_str(), m.field("digest").s.substr(0, 12).c_str(),
                  human_bytes(size.kind == Value::Kind::Int ? static_cast<double>(size.i) : size.f).c_str(),
                  ago(m.field("modified_at").s).c_str());
    }
  return 0;
}

int cmd_ps(const Args& args) {
  if (!args.empty()) return fail("usage: hearth ps");
  auto v = call_json("/api/ps");
  if (!v) return fail(v.message());
  std::printf("%-40s %-14s %-10s %-10s %-9s %s\n", "NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL");
  const Value& models = v.value().field("models");
  if (models.kind == Value::Kind::List)
    for (const Value& m : *models.list) {
      const Value& size = m.field("size");
      std::printf("%-40s %-14s %-10s %-10s %-9lld %s\n", m.field("name").s.c_str(), m.field("digest").s.substr(0, 12).c_str(),
                  human_bytes(size.kind == Value::Kind::Int ? static_cast<double>(size.i) : size.f).c_str(), "100% CPU",
                  static_cast<long long>(m.field("context_length").i), until(m.field("expires_at").s).c_str());
    }
  return 0;
}

int cmd_show(const Args& args) {
  std::string name, only;
  bool verbose = false;
  for (const std::string& a : args) {
    if (a == "--modelfile" || a == "--template" || a == "--parameters" || a == "--license" || a == "--system") only = a.substr(2);
    else if (a == "-v" || a == "--verbose") verbose = true;
    else if (a.rfind("-", 0) != 0 && name.empty()) name = a;
    else return fail("usage: hearth show NAME [--modelfile|--template|--parameters|--license|--system] [-v]");
  }
  if (name.empty()) return fail("usage: hearth show NAME [--modelfile|--template|--parameters|--license|--system] [-v]");
  const std::string body = "{\"model\":" + jstr(name) + (verbose ? ",\"verbose\":true}" : "}");
  auto v = call_json("/api/show", &body);
  if (!v) return fail(v.message());
  const Value& s = v.value();
  if (!only.empty()) {
    const std::string text = s.field(only).s;
    std::fputs(text.c_str(), stdout);
    if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
    return 0;
  }
  const Value& info = s.field("model_info");
  const std::string arch = info.field("general.architecture").s;
  auto num = [&](const std::string& k) {
    const Value& x = info.field(k);
    return x.kind == Value::Kind::Int ? std::to_string(x.i) : x.kind == Value::Kind::Float ? server::tmpl::format(x) : std::string();
  };
  std::printf("  Model\n");
  std::printf("    %-20s %s\n", "architecture", arch.c_str());
  std::printf("    %-20s %s\n", "parameters", s.field("details").field("parameter_size").s.c_str());
  if (!num(arch + ".context_length").empty()) std::printf("    %-20s %s\n", "context length", num(arch + ".context_length").c_str());
  if (!num(arch + ".embedding_length").empty()) std::printf("    %-20s %s\n", "embedding length", num(arch + ".embedding_length").c_str());
  std::printf("    %-20s %s\n\n", "quantization", s.field("details").field("quantization_level").s.c_str());
  const Value& caps = s.field("capabilities");
  if (caps.kind == Value::Kind::List && !caps.list->empty()) {
    std::printf("  Capabilities\n");
    for (const Value& x : *caps.list) std::printf("    %s\n", x.s.c_str());
    std::printf("\n");
  }
  auto block = [](const char* title, const std::string& text) {
    if (text.empty()) return;
    std::printf("  %s\n", title);
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::printf("    %s\n", text.substr(start, end - start).c_str());
      start = end + 1;
    }
    std::printf("\n");
  };
  block("Parameters", s.field("parameters").s);
  block("System", s.field("system").s);
  block("License", s.field("license").s);
  return 0;
}

int cmd_cp(const Args& args) {
  if (args.size() != 2) return fail("usage: hearth cp SOURCE DESTINATION");
  auto c = connect();
  if (!c) return fail(c.message());
  auto r = c.value().http->Post("/api/copy", c.value().headers,
                                "{\"source\":" + jstr(args[0]) + ",\"destination\":" + jstr(args[1]) + "}", "application/json");
  if (!r || r->status != 200) return fail(describe(r, c.value()));
  std::printf("copied '%s' to '%s'\n", args[0].c_str(), args[1].c_str());
  return 0;
}

int cmd_rm(const Args& args) {
  if (args.empty()) return fail("usage: hearth rm NAME [NAME...]");
  auto c = connect();
  if (!c) return fail(c.message());
  for (const std::string& name : args) {
    auto r = c.value().http->Delete("/api/delete", c.value().headers, "{\"model\":" + jstr(name) + "}", "application/json");
    if (!r || r->status != 200) return fail(describe(r, c.value()));
    std::printf("deleted '%s'\n", name.c_str());
  }
  return 0;
}

}  // namespace

int cmd_client(const std::string& verb, const Args& args) {
  if (verb == "create") return cmd_create(args);
  if (verb == "list" || verb == "ls") return cmd_list(args);
  if (verb == "ps") return cmd_ps(args);
  if (verb == "show") return cmd_show(args);
  if (verb == "cp") return cmd_cp(args);
  if (verb == "rm") return cmd_rm(args);
  return fail("unknown client verb " + verb);
}

}  // namespace hearth::cli
