// `hearth run NAME [PROMPT]` as `ollama run`: a client of the server that loads the model
// (with a spinner), then answers one prompt (PROMPT and/or piped stdin) or chats
// interactively; `hearth stop NAME`; `hearth --version`.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "server/api.h"
#include "server/json_writer.h"
#include "tools/client.h"
#include "tools/commands.h"

namespace hearth::cli {
namespace {

using server::JsonWriter;
using server::tmpl::Value;

// Go's time.Duration.String(): "1.5s", "12.345ms", "800µs", "2m3.5s".
std::string go_duration(int64_t ns) {
  auto trim = [](std::string s) {
    if (s.find('.') != std::string::npos) {
      while (s.back() == '0') s.pop_back();
      if (s.back() == '.') s.pop_back();
    }
    return s;
  };
  char buf[64];
  if (ns < 1000) return std::to_string(ns) + "ns";
  if (ns < 1000000) {
    std::snprintf(buf, sizeof buf, "%.3f", ns / 1e3);
    return trim(buf) + "\xC2\xB5s";
  }
  if (ns < 1000000000) {
    std::snprintf(buf, sizeof buf, "%.6f", ns / 1e6);
    return trim(buf) + "ms";
  }
  std::string out;
  int64_t s = ns / 1000000000;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s >= 60) out += std::to_string(s / 60 % 60) + "m";
  std::snprintf(buf, sizeof buf, "%.9f", static_cast<double>(s % 60) + static_cast<double>(ns % 1000000000) / 1e9);
  return out + trim(buf) + "s";
}

// Ollama's Metrics.Summary, on stderr.
void print_metrics(const Value& m) {
  auto i = [&](const char* k) { return m.field(k).kind == Value::Kind::Int ? m.field(k).i : int64_t{0}; };
  if (i("total_duration")) std::fprintf(stderr, "total duration:       %s\n", go_duration(i("total_duration")).c_str());
  if (i("load_duration")) std::fprintf(stderr, "load duration:        %s\n", go_duration(i("load_duration")).c_str());
  if (i("prompt_eval_count")) std::fprintf(stderr, "prompt eval count:    %lld token(s)\n", static_cast<long long>(i("prompt_eval_count")));
  if (i("prompt_eval_duration")) {
    std::fprintf(stderr, "prompt eval duration: %s\n", go_duration(i("prompt_eval_duration")).c_str());
    std::fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", i("prompt_eval_count") / (i("prompt_eval_duration") / 1e9));
  }
  if (i("eval_count")) std::fprintf(stderr, "eval count:           %lld token(s)\n", static_cast<long long>(i("eval_count")));
  if (i("eval_duration")) {
    std::fprintf(stderr, "eval duration:        %s\n", go_duration(i("eval_duration")).c_str());
    std::fprintf(stderr, "eval rate:            %.2f tokens/s\n", i("eval_count") / (i("eval_duration") / 1e9));
  }
}

struct Session {
  Client client;
  std::string model;
  std::string format, keep_alive;        // as given on the command line ("" = not sent)
  bool verbose = false;
  std::map<std::string, Value> options;  // /set parameter
  std::vector<std::pair<std::string, std::string>> history;  // role, content
  std::string system;                    // /set system
};

void common_fields(JsonWriter& w, const Session& s) {
  w.key("model").str(s.model);
  if (!s.format.empty()) w.key("format").str(s.format);
  if (!s.keep_alive.empty()) {
    char* end = nullptr;
    const double secs = std::strtod(s.keep_alive.c_str(), &end);
    if (*end == 0) w.key("keep_alive").num(secs);
    else w.key("keep_alive").str(s.keep_alive);
  }
  if (!s.options.empty()) {
    w.key("options").begin_object();
    for (const auto& [k, v] : s.options) w.key(k).raw(server::tmpl::to_json(v));
    w.end_object();
  }
}

// Loads the model, with a spinner on a terminal.
Status load(Session& s) {
  std::atomic<bool> done{false};
  std::thread spinner;
  if (isatty(STDERR_FILENO))
    spinner = std::thread([&] {
      const char* frames[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
      for (int k = 0; !done; ++k) {
        std::fprintf(stderr, "\r%s ", frames[k % 10]);
        std::fflush(stderr);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      std::fprintf(stderr, "\r  \r");
    });
  JsonWriter w;
  w.begin_object();
  common_fields(w, s);
  const std::string body = w.end_object().text();
  auto r = s.client.http->Post("/api/generate", s.client.headers, body, "application/json");
  done = true;
  if (spinner.joinable()) spinner.join();
  if (!r || r->status != 200) return Error{describe(r, s.client)};
  return {};
}

// One chat turn: the history plus `prompt`, streamed to stdout; the answer joins the history.
Status turn(Session& s, const std::string& prompt) {
  JsonWriter w;
  w.begin_object();
  common_fields(w, s);
  w.key("messages").begin_array();
  if (!s.system.empty()) w.begin_object().key("role").str("system").key("content").str(s.system).end_object();
  for (const auto& [role, content] : s.history) w.begin_object().key("role").str(role).key("content").str(content).end_object();
  w.begin_object().key("role").str("user").key("content").str(prompt).end_object();
  w.end_array();
  const std::string body = w.end_object().text();
  std::string answer;
  Value last;
  Status st = stream_json(s.client, "/api/chat", body, [&](const Value& v) {
    const std::string& piece = v.field("message").field("content").s;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    answer += piece;
    if (v.field("done").b) last = v;
    return true;
  });
  std::printf("\n");
  std::fflush(stdout);  // before the timing lines on stderr
  if (!st) return st;
  s.history.emplace_back("user", prompt);
  s.history.emplace_back("assistant", answer);
  if (s.verbose) print_metrics(last);
  return {};
}

// A parameter value as typed: a number when it reads as one, else a string; `stop`
// accumulates a list as Ollama's /set parameter does.
void set_parameter(Session& s, const std::string& key, const std::string& value) {
  char* end = nullptr;
  const double d = std::strtod(value.c_str(), &end);
  Value v = !value.empty() && *end == 0 ? (value.find_first_of(".eE") == std::string::npos ? Value::integer(static_cast<int64_t>(d)) : Value::number(d))
                                        : Value::str(value);
  if (key == "stop") {
    Value& list = s.options["stop"];
    if (list.kind != Value::Kind::List) list = Value::of_list();
    list.list->push_back(Value::str(value));
    return;
  }
  s.options[key] = v;
}

void show_info(Session& s) {
  const std::string body = JsonWriter().begin_object().key("model").str(s.model).end_object().text();
  auto v = call_json("/api/show", &body);
  if (!v) {
    fail(v.message());
    return;
  }
  const Value& d = v.value().field("details");
  std::printf("  Model\n    architecture        %s\n    parameters          %s\n    quantization        %s\n",
              d.field("family").s.c_str(), d.field("parameter_size").s.c_str(), d.field("quantization_level").s.c_str());
  const Value& caps = v.value().field("capabilities");
  if (caps.kind == Value::Kind::List) {
    std::printf("\n  Capabilities\n");
    for (const Value& c : *caps.list) std::printf("    %s\n", c.s.c_str());
  }
  std::printf("\n");
}

constexpr const char* kHelp =
    "Available Commands:\n"
    "  /set parameter K V  Set a parameter (temperature, num_ctx, stop, ...)\n"
    "  /set system TEXT    Set the system message\n"
    "  /set verbose|quiet  Show or hide the timings after each answer\n"
    "  /show info          Show details for this model\n"
    "  /load NAME          Load another model\n"
    "  /clear              Clear the session context\n"
    "  /bye                Exit\n"
    "  /?, /help           Help for a command\n\n"
    "Use \"\"\" to begin a multi-line message.\n\n";

// The interactive loop: lines from stdin, `"""` for multi-line messages, slash commands.
int interactive(Session& s) {
  std::string line;
  for (;;) {
    std::printf(">>> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) {
      std::printf("\n");
      return 0;
    }
    if (line.rfind("\"\"\"", 0) == 0) {
      std::string text = line.substr(3), more;
      while (text.size() < 3 || text.compare(text.size() - 3, 3, "\"\"\"") != 0) {
        std::printf("... ");
        std::fflush(stdout);
        if (!std::getline(std::cin, more)) break;
        text += "\n" + more;
      }
      if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\"\"\"") == 0) text.resize(text.size() - 3);
      line = text;
    } else if (line.empty()) {
      continue;
    } else if (line[0] == '/') {
      std::istringstream in(line);
      std::string cmd, what;
      in >> cmd >> what;
      std::string rest;
      std::getline(in >> std::ws, rest);
      if (cmd == "/bye") return 0;
      if (cmd == "/?" || cmd == "/help") std::printf("%s", kHelp);
      else if (cmd == "/clear") {
        s.history.clear();
        std::printf("Cleared session context\n");
      } else if (cmd == "/set" && what == "parameter") {
        const size_t sp = rest.find(' ');
        if (sp == std::string::npos) std::printf("Usage: /set parameter <name> <value>\n");
        else {
          set_parameter(s, rest.substr(0, sp), rest.substr(sp + 1));
          std::printf("Set parameter '%s' to '%s'\n", rest.substr(0, sp).c_str(), rest.substr(sp + 1).c_str());
        }
      } else if (cmd == "/set" && what == "system") {
        s.system = rest;
        std::printf("Set system message.\n");
      } else if (cmd == "/set" && (what == "verbose" || what == "quiet")) {
        s.verbose = what == "verbose";
        std::printf("Set '%s' mode.\n", what.c_str());
      } else if (cmd == "/show" && what == "info") {
        show_info(s);
      } else if (cmd == "/load" && !what.empty()) {
        std::printf("Loading model '%s'\n", what.c_str());
        const std::string before = s.model;
        s.model = what;
        if (Status st = load(s); !st) {
          fail(st.message());
          s.model = before;
        } else {
          s.history.clear();
        }
      } else {
        std::printf("Unknown command '%s'. Type /? for help\n", cmd.c_str());
      }
      continue;
    }
    if (Status st = turn(s, line); !st) fail(st.message());
  }
}

}  // namespace

int cmd_run_server(const Args& args) {
  Session s;
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    if (a == "--verbose") s.verbose = true;
    else if (a == "--nowordwrap") {  // text is printed as it comes, never wrapped
    } else if (a == "--format" || a == "--keepalive") {
      const std::string* v = value();
      if (!v) return fail(a + " needs a value");
      (a == "--format" ? s.format : s.keep_alive) = *v;
    } else if (a.size() > 1 && a[0] == '-') {
      return fail("unknown flag: " + a);
    } else {
      pos.push_back(a);
    }
  }
  if (pos.empty()) return fail("usage: hearth run MODEL [PROMPT] [--verbose] [--format json] [--keepalive D] [--nowordwrap]");
  auto c = connect();
  if (!c) return fail(c.message());
  s.client = std::move(c.value());
  s.model = pos[0];
  if (Status st = load(s); !st) return fail(st.message());
  // As ollama run: piped stdin comes first, then the words of PROMPT.
  std::string prompt;
  if (!isatty(STDIN_FILENO)) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  for (size_t i = 1; i < pos.size(); ++i) prompt += (prompt.empty() ? "" : " ") + pos[i];
  if (pos.size() > 1 || !isatty(STDIN_FILENO)) {
    if (prompt.empty()) return 0;
    Status st = turn(s, prompt);
    return st ? 0 : fail(st.message());
  }
  return interactive(s);
}

int cmd_stop(const Args& args) {
  if (args.size() != 1) return fail("usage: hearth stop MODEL");
  const std::string body = JsonWriter().begin_object().key("model").str(args[0]).key("keep_alive").num(int64_t{0}).end_object().text();
  auto v = call_json("/api/generate", &body);
  return v ? 0 : fail(v.message());
}

int cmd_version() {
  auto v = call_json("/api/version");
  if (!v) {
    std::printf("Warning: could not connect to a running Hearth/Ollama server\nWarning: client version is %s\n",
                server::kOllamaApiVersion);
    return 0;
  }
  std::printf("hearth version is %s\n", v.value().field("version").s.c_str());
  if (v.value().field("version").s != server::kOllamaApiVersion)
    std::printf("Warning: client version is %s\n", server::kOllamaApiVersion);
  return 0;
}

}  // namespace hearth::cli
