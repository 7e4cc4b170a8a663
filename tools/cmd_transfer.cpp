// `hearth pull NAME` and `hearth push NAME`: clients of the server's /api/pull and
// /api/push, as the ollama CLI. Progress: one bar per layer (percent, bytes, speed, ETA),
// redrawn in place on a terminal; elsewhere one line per finished layer. Ctrl-C ends the
// process, the server sees the connection go and cancels; a later pull resumes.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "server/gotemplate.h"
#include "server/json_writer.h"
#include "tools/client.h"
#include "tools/commands.h"

namespace hearth::cli {

namespace {

using server::tmpl::Value;
using Clock = std::chrono::steady_clock;

struct Bar {
  std::string label;
  uint64_t total = 0, completed = 0, first = 0;
  Clock::time_point since;
  bool finished = false;
};

std::string eta_text(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "";
  const int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, s / 60 % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ds", s);
  return buf;
}

std::string render(const Bar& b) {
  const int width = 25;
  const double f = b.total ? static_cast<double>(b.completed) / static_cast<double>(b.total) : 1.0;
  const int filled = static_cast<int>(f * width);
  const double secs = std::chrono::duration<double>(Clock::now() - b.since).count();
  const double rate = secs > 0.2 ? static_cast<double>(b.completed - b.first) / secs : 0;
  std::string out = b.label + " " + std::to_string(static_cast<int>(f * 100)) + "% [" + std::string(filled, '#') +
                    std::string(width - filled, ' ') + "] " + human_bytes(static_cast<double>(b.completed)) + "/" +
                    human_bytes(static_cast<double>(b.total));
  if (rate > 0 && !b.finished) {
    out += "  " + human_bytes(rate) + "/s";
    const std::string eta = eta_text(static_cast<double>(b.total - b.completed) / rate);
    if (!eta.empty()) out += "  " + eta;
  }
  return out;
}

// Draws the status lines and bars of one transfer as they arrive.
class Display {
 public:
  Display() : tty_(::isatty(2) != 0) {}
  void line(const Value& v) {
    const std::string status = v.field("status").s, digest = v.field("digest").s;
    const Value& total = v.field("total");
    if (digest.empty() || total.kind != Value::Kind::Int) {
      std::fprintf(stderr, "%s\n", status.c_str());
      drawn_ = 0;
      return;
    }
    auto [it, fresh] = bars_.try_emplace(digest);
    Bar& b = it->second;
    const Value& done = v.field("completed");
    const uint64_t completed = done.kind == Value::Kind::Int ? static_cast<uint64_t>(done.i) : 0;
    if (fresh) {
      order_.push_back(digest);
      b.label = status;
      b.first = completed;
      b.since = Clock::now();
    }
    b.total = static_cast<uint64_t>(total.i);
    b.completed = completed;
    const bool now_finished = b.total > 0 && completed >= b.total;
    if (!tty_) {
      if (now_finished && !b.finished) std::fprintf(stderr, "%s\n", render(b).c_str());
      b.finished = now_finished;
      return;
    }
    b.finished = now_finished;
    redraw();
  }

 private:
  void redraw() {
    if (drawn_ > 0) std::fprintf(stderr, "\x1b[%zuA", drawn_);
    for (const std::string& d : order_) std::fprintf(stderr, "\r\x1b[K%s\n", render(bars_[d]).c_str());
    drawn_ = order_.size();
    std::fflush(stderr);
  }
  bool tty_;
  std::map<std::string, Bar> bars_;
  std::vector<std::string> order_;
  size_t drawn_ = 0;  // bar lines above the cursor
};

int transfer(const std::string& verb, const Args& args) {
  const std::string usage = "usage: hearth " + verb + " NAME [--insecure]";
  std::string name;
  bool insecure = false;
  for (const std::string& a : args) {
    if (a == "--insecure") insecure = true;
    else if (!a.empty() && a[0] == '-') return fail("unknown flag '" + a + "'\n" + usage);
    else if (name.empty()) name = a;
    else return fail("unexpected argument '" + a + "'\n" + usage);
  }
  if (name.empty()) return fail(usage);
  auto c = connect();
  if (!c) return fail(c.message());
  server::JsonWriter w;
  w.begin_object().key("model").str(name).key("insecure").boolean(insecure).key("stream").boolean(true).end_object();
  Display display;
  std::string last;
  Status st = stream_json(c.value(), "/api/" + verb, w.text(), [&](const Value& v) {
    display.line(v);
    last = v.field("status").s;
    return true;
  });
  if (!st) return fail(st.message());
  if (last != "success") return fail("the server ended the stream without success");
  return 0;
}

}  // namespace

int cmd_pull(const Args& args) { return transfer("pull", args); }
int cmd_push(const Args& args) { return transfer("push", args); }

}  // namespace hearth::cli
