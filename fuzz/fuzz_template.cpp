// libFuzzer target: any text must parse as a Go template or give an Error; a parsed one
// is executed on a fixed conversation (messages, tools, system) and must finish within
// the engine's limits or give an Error — never crash, hang or exhaust the stack.
#include <cstdint>
#include <string>
#include <string_view>

#include "server/gotemplate.h"
#include "server/prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::server;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = parse_model_template(text);
  if (!t) return 0;
  static const tmpl::Value tools = tmpl::from_json(
      R"([{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object",)"
      R"("required":["city"],"properties":{"city":{"type":"string","description":"c","enum":["a","b"]}}}}}])").value();
  const std::vector<ChatMessage> msgs = {{"system", "You are terse.", "", {}, ""},
                                         {"user", "Hi <b>&</b>", "", {}, ""},
                                         {"assistant", "Hello", "thinking", {}, ""},
                                         {"tool", "{\"t\":1}", "", {}, "get_weather"},
                                         {"user", "Again", "", {}, ""}};
  (void)render_chat(t.value(), msgs, tools);
  (void)t.value().execute(tmpl::Value::of_map({{"Prompt", tmpl::Value::str("p")}, {"Suffix", tmpl::Value::str("s")}}));
  return 0;
}
