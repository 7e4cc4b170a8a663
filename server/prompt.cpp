#include "server/prompt.h"

namespace hearth::server {

using tmpl::Value;

Result<tmpl::Template> parse_model_template(std::string_view text) {
  auto t = tmpl::Template::parse(text);
  if (!t) return t;
  if (t.value().references("Messages") || t.value().references("Response")) return t;
  return tmpl::Template::parse(std::string(text) + "{{ .Response }}");
}

namespace {

Value message_value(const ChatMessage& m) {
  tmpl::Map f;
  f["Role"] = Value::str(m.role);
  f["Content"] = Value::str(m.content);
  f["Thinking"] = Value::str(m.thinking);
  f["ToolCalls"] = m.tool_calls;
  f["ToolName"] = Value::str(m.tool_name);
  f["Images"] = Value::of_list();
  return Value::of_map(std::move(f));
}

Value values(const std::string& system, const std::string& prompt, const std::string& response, Value messages,
             const Value& tools, const ThinkSetting& think) {
  tmpl::Map v;
  v["System"] = Value::str(system);
  v["Prompt"] = Value::str(prompt);
  v["Response"] = Value::str(response);
  v["Suffix"] = Value::str("");
  v["Messages"] = std::move(messages);
  v["Tools"] = tools;
  v["Think"] = Value::boolean(think.on);
  v["ThinkLevel"] = Value::str(think.level);
  v["IsThinkSet"] = Value::boolean(think.set);
  return Value::of_map(std::move(v));
}

}  // namespace

Result<std::string> render_chat(const tmpl::Template& t, const std::vector<ChatMessage>& messages,
                                const Value& tools, const ThinkSetting& think) {
  std::vector<ChatMessage> collated;
  std::string system;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") system += (system.empty() ? "" : "\n\n") + m.content;
    if (!collated.empty() && collated.back().role == m.role && m.role != "tool") {
      collated.back().content += "\n\n" + m.content;
      continue;
    }
    collated.push_back(m);
  }
  if (t.references("Messages")) {
    tmpl::List list;
    for (const ChatMessage& m : collated) list.push_back(message_value(m));
    return t.execute(values(system, "", "", Value::of_list(std::move(list)), tools, think));
  }
  // Legacy: one run per turn. The open last turn stops where .Response would be printed,
  // found with a sentinel that no message can contain.
  const std::string sentinel = std::string("\x01hearth-response\x02");
  std::string out, sys, prompt;
  auto turn = [&](const std::string& response, bool last) -> Status {
    auto r = t.execute(values(sys, prompt, last ? sentinel : response, Value::of_list(), tools, think));
    if (!r) return Error{r.message()};
    std::string s = r.value();
    if (last) {
      if (auto p = s.find(sentinel); p != std::string::npos) s.resize(p);
    }
    out += s;
    sys.clear();
    prompt.clear();
    return {};
  };
  for (size_t k = 0; k < collated.size(); ++k) {
    const ChatMessage& m = collated[k];
    if (m.role == "system") {
      if (!prompt.empty()) {
        if (Status st = turn("", false); !st) return Error{st.message()};
      }
      sys = m.content;
    } else if (m.role == "user" || m.role == "tool") {
      if (!prompt.empty()) {
        if (Status st = turn("", false); !st) return Error{st.message()};
      }
      prompt = m.content;
    } else if (m.role == "assistant") {
      if (k + 1 == collated.size()) {
        // A trailing assistant message is a prefill the model continues.
        auto r = t.execute(values(sys, prompt, m.content, Value::of_list(), tools, think));
        if (!r) return r;
        std::string s = r.value();
        auto probe = t.execute(values(sys, prompt, m.content + sentinel, Value::of_list(), tools, think));
        if (probe) {
          if (auto p = probe.value().find(sentinel); p != std::string::npos) s = probe.value().substr(0, p);
        }
        out += s;
        return out;
      }
      if (Status st = turn(m.content, false); !st) return Error{st.message()};
    }
  }
  if (Status st = turn("", true); !st) return Error{st.message()};
  return out;
}

}  // namespace hearth::server
