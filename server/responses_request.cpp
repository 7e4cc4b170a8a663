// /v1/responses requests as /v1/chat/completions requests (server/responses.h).
#include <simdjson.h>

#include <optional>
#include <vector>

#include "server/json_writer.h"
#include "server/responses.h"

namespace hearth::server {

namespace {

using simdjson::dom::element;
using simdjson::dom::object;

// One chat message being built from input items.
struct ChatMsg {
  std::string role;
  std::vector<std::string> parts;  // chat content parts, as JSON
  std::optional<std::string> text; // string content (a function_call_output's)
  std::string reasoning, tool_call_id;
  std::vector<std::string> calls;  // tool_calls entries, as JSON
};

// Content parts (input_text, output_text, input_image) as chat parts; `what` names the item.
Status parts_of(element content, std::vector<std::string>& out, const std::string& what) {
  std::string_view s;
  if (!content.get_string().get(s)) {
    out.push_back(JsonWriter().begin_object().key("type").str("text").key("text").str(s).end_object().text());
    return {};
  }
  simdjson::dom::array parts;
  if (content.get_array().get(parts)) return Error{what + ": content must be a string or an array of parts"};
  size_t i = 0;
  for (element part : parts) {
    const std::string where = what + ".content[" + std::to_string(i++) + "]";
    std::string_view type, text, url;
    if (part["type"].get_string().get(type)) return Error{where + ": a part needs a \"type\""};
    if (type == "input_text" || type == "output_text" || type == "refusal") {
      if (part[type == "refusal" ? "refusal" : "text"].get_string().get(text)) return Error{where + ": a " + std::string(type) + " part needs its text"};
      out.push_back(JsonWriter().begin_object().key("type").str("text").key("text").str(text).end_object().text());
    } else if (type == "input_image") {
      if (part["image_url"].get_string().get(url)) return Error{where + ": input_image needs an image_url (file_id is not supported)"};
      JsonWriter w;
      w.begin_object().key("type").str("image_url").key("image_url").begin_object().key("url").str(url).end_object().end_object();
      out.push_back(w.text());
    } else if (type == "input_file") {
      return Error{where + ": file inputs are not supported"};
    } else {
      return Error{where + ": unknown content type: " + std::string(type)};
    }
  }
  return {};
}

// A reasoning item's text: its summary texts, else its reasoning_text content.
std::string reasoning_of(object item) {
  std::string text;
  for (const char* field : {"summary", "content"}) {
    simdjson::dom::array parts;
    if (item[field].get_array().get(parts)) continue;
    for (element p : parts)
      if (std::string_view t; !p["text"].get_string().get(t)) text += t;
    if (!text.empty()) break;
  }
  return text;
}

// The input items as chat messages: a function_call joins the assistant message before it
// (or starts one), a reasoning item goes with the next assistant message.
Status messages_of(simdjson::dom::array items, std::vector<ChatMsg>& msgs) {
  std::string pending;  // reasoning waiting for its assistant message
  size_t i = 0;
  for (element it : items) {
    const std::string where = "input[" + std::to_string(i++) + "]";
    object item;
    if (it.get_object().get(item)) return Error{where + ": an input item must be an object"};
    std::string_view type, role;
    const bool has_role = !item["role"].get_string().get(role);
    if (item["type"].get_string().get(type)) {
      if (!has_role) return Error{where + ": input item missing required 'type' field"};
      type = "message";
    }
    if (type == "message") {
      if (!has_role) return Error{where + ": a message needs a \"role\""};
      if (role != "user" && role != "system" && role != "developer" && role != "assistant")
        return Error{where + ": invalid role \"" + std::string(role) + "\" (user, system, developer or assistant)"};
      ChatMsg m;
      m.role = role == "developer" ? "system" : std::string(role);
      element content;
      if (!item["content"].get(content) && !content.is_null())
        if (Status s = parts_of(content, m.parts, where); !s) return s;
      if (m.role == "assistant") m.reasoning = std::exchange(pending, "");
      msgs.push_back(std::move(m));
    } else if (type == "function_call") {
      std::string_view call_id, name, args;
      if (item["name"].get_string().get(name) || name.empty()) return Error{where + ": a function_call needs a \"name\""};
      if (item["call_id"].get_string().get(call_id)) return Error{where + ": a function_call needs a \"call_id\""};
      if (item["arguments"].get_string().get(args) || args.empty()) args = "{}";
      JsonWriter w;
      w.begin_object().key("id").str(call_id).key("type").str("function").key("function").begin_object();
      w.key("name").str(name).key("arguments").str(args).end_object().end_object();
      if (msgs.empty() || msgs.back().role != "assistant") msgs.push_back({"assistant", {}, std::nullopt, "", "", {}});
      if (!pending.empty()) msgs.back().reasoning = std::exchange(pending, "");
      msgs.back().calls.push_back(w.text());
    } else if (type == "function_call_output") {
      std::string_view call_id, out;
      if (item["call_id"].get_string().get(call_id)) return Error{where + ": a function_call_output needs a \"call_id\""};
      ChatMsg m;
      m.role = "tool";
      m.tool_call_id = call_id;
      element output;
      if (item["output"].get(output) || output.is_null()) m.text = "";
      else if (!output.get_string().get(out)) m.text = std::string(out);
      else if (Status s = parts_of(output, m.parts, where); !s) return s;
      msgs.push_back(std::move(m));
    } else if (type == "reasoning") {
      pending += reasoning_of(item);
    } else if (type == "item_reference") {
      return Error{where + ": item references are not supported: /v1/responses is stateless, nothing is stored"};
    } else {
      return Error{where + ": unknown input item type: \"" + std::string(type) + "\""};
    }
  }
  if (!pending.empty()) msgs.push_back({"assistant", {}, std::nullopt, pending, "", {}});
  return {};
}

void write_message(JsonWriter& w, const ChatMsg& m) {
  w.begin_object().key("role").str(m.role).key("content");
  if (m.text) {
    w.str(*m.text);
  } else if (m.parts.empty()) {
    w.str("");
  } else {
    w.begin_array();
    for (const std::string& p : m.parts) w.raw(p);
    w.end_array();
  }
  if (!m.reasoning.empty()) w.key("reasoning").str(m.reasoning);
  if (!m.tool_call_id.empty()) w.key("tool_call_id").str(m.tool_call_id);
  if (!m.calls.empty()) {
    w.key("tool_calls").begin_array();
    for (const std::string& c : m.calls) w.raw(c);
    w.end_array();
  }
  w.end_object();
}

// Responses' flat function tools as chat tools; other tool types are refused.
Status tools_of(simdjson::dom::array tools, JsonWriter& w) {
  w.key("tools").begin_array();
  size_t i = 0;
  for (element t : tools) {
    const std::string where = "tools[" + std::to_string(i++) + "]";
    std::string_view type, name, description;
    if (t["type"].get_string().get(type)) return Error{where + ": a tool needs a \"type\""};
    if (type != "function") return Error{where + ": tool type \"" + std::string(type) + "\" is not supported (only function tools)"};
    if (t["name"].get_string().get(name) || name.empty()) return Error{where + ": a function tool needs a \"name\""};
    w.begin_object().key("type").str("function").key("function").begin_object().key("name").str(name);
    if (!t["description"].get_string().get(description)) w.key("description").str(description);
    element params;
    if (!t["parameters"].get(params) && !params.is_null()) w.key("parameters").raw(simdjson::minify(params));
    w.end_object().end_object();
  }
  w.end_array();
  return {};
}

// tool_choice: "auto", "none", "required", or {"type":"function","name"}.
Status tool_choice_of(element choice, JsonWriter& w) {
  std::string_view s, type, name;
  if (!choice.get_string().get(s)) {
    w.key("tool_choice").str(s);  // checked by the chat translation
    return {};
  }
  if (choice["type"].get_string().get(type) || type != "function" || choice["name"].get_string().get(name))
    return Error{"invalid tool_choice: \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": …}"};
  w.key("tool_choice").begin_object().key("type").str("function").key("function").begin_object().key("name").str(name);
  w.end_object().end_object();
  return {};
}

// text.format as response_format: text (nothing), json_object, json_schema.
Status format_of(object format, JsonWriter& w) {
  std::string_view type, name;
  if (format["type"].get_string().get(type)) return Error{"invalid text.format: it needs a \"type\""};
  if (type == "text") return {};
  if (type == "json_object") {
    w.key("response_format").begin_object().key("type").str("json_object").end_object();
    return {};
  }
  if (type != "json_schema") return Error{"invalid text.format type: " + std::string(type) + " (text, json_object or json_schema)"};
  element schema;
  if (format["schema"].get(schema) || schema.is_null()) return Error{"text.format json_schema needs a \"schema\""};
  w.key("response_format").begin_object().key("type").str("json_schema").key("json_schema").begin_object();
  if (!format["name"].get_string().get(name)) w.key("name").str(name);
  w.key("schema").raw(simdjson::minify(schema)).end_object().end_object();
  return {};
}

// Fields that need stored state, which a stateless server refuses rather than ignores.
Status stateless(object req) {
  for (const char* field : {"previous_response_id", "conversation"}) {
    element v;
    if (!req[field].get(v) && !v.is_null())
      return Error{std::string(field) + " is not supported: /v1/responses is stateless, nothing is stored; send the whole conversation as input"};
  }
  if (bool b; !req["background"].get_bool().get(b) && b) return Error{"background responses are not supported"};
  return {};
}

}  // namespace

Result<ResponsesRequest> responses_request(std::string_view body) {
  simdjson::dom::parser parser;
  object req;
  if (parser.parse(body.data(), body.size()).get_object().get(req)) return Error{"invalid request: the body must be a JSON object"};
  ResponsesRequest out;
  std::string_view model, s;
  if (req["model"].get_string().get(model) || model.empty()) return Error{"model is required"};
  out.model = model;
  if (Status st = stateless(req); !st) return st.error();
  std::vector<ChatMsg> msgs;
  if (!req["instructions"].get_string().get(s) && !s.empty()) {
    msgs.push_back({"system", {}, std::string(s), "", "", {}});
    out.echo.instructions = tmpl::json_quote(s);
  }
  element input;
  simdjson::dom::array items;
  if (req["input"].get(input) || input.is_null()) return Error{"input is required"};
  if (!input.get_string().get(s)) msgs.push_back({"user", {}, std::string(s), "", "", {}});
  else if (!input.get_array().get(items)) {
    if (Status st = messages_of(items, msgs); !st) return st.error();
  } else {
    return Error{"input must be a string or an array of items"};
  }
  if (msgs.empty()) return Error{"input has no messages"};

  JsonWriter w;
  w.begin_object().key("model").str(model).key("messages").begin_array();
  for (const ChatMsg& m : msgs) write_message(w, m);
  w.end_array();
  bool flag;
  if (!req["stream"].get_bool().get(flag)) out.stream = flag;
  w.key("stream").boolean(out.stream);
  double d;
  if (!req["temperature"].get_double().get(d)) w.key("temperature").num(out.echo.temperature = d);
  if (!req["top_p"].get_double().get(d)) w.key("top_p").num(out.echo.top_p = d);
  if (int64_t n; !req["max_output_tokens"].get_int64().get(n)) {
    if (n < 1) return Error{"max_output_tokens must be at least 1"};
    w.key("max_tokens").num(n);
    out.echo.max_output_tokens = std::to_string(n);
  }
  simdjson::dom::array tools;
  if (!req["tools"].get_array().get(tools)) {
    if (Status st = tools_of(tools, w); !st) return st.error();
    out.echo.tools = simdjson::minify(tools);
  }
  element choice;
  if (!req["tool_choice"].get(choice) && !choice.is_null()) {
    if (Status st = tool_choice_of(choice, w); !st) return st.error();
    out.echo.tool_choice = simdjson::minify(choice);
  }
  object format;
  if (!req["text"]["format"].get_object().get(format)) {
    if (Status st = format_of(format, w); !st) return st.error();
    out.echo.text_format = simdjson::minify(format);
  }
  object reasoning;
  if (!req["reasoning"].get_object().get(reasoning)) {
    if (!reasoning["effort"].get_string().get(s)) w.key("reasoning_effort").str(s);
    out.echo.reasoning = simdjson::minify(reasoning);
  }
  out.chat_body = w.end_object().text();
  return out;
}

}  // namespace hearth::server
