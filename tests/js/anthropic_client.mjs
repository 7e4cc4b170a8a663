// hearth serve's Anthropic-compatible /v1/messages driven by the real npm
// `@anthropic-ai/sdk` client: messages streamed and not (the SDK's own stream helper),
// system prompts, stop sequences, tool_use / tool_result history, errors as the SDK's
// typed classes, x-api-key auth, and greedy text equal to /api/chat's.
//
// usage: node anthropic_client.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import Anthropic from '@anthropic-ai/sdk';
import { startServer, upload, testdata } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node anthropic_client.mjs HEARTH_BIN');

let server, ollama, anthropic;

const kTemplate = `{{- if .Tools }}Tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}
{{ end }}{{- if .System }}{{ .System }}
{{ end }}{{- range .Messages }}{{- if eq .Role "user" }}User: {{ .Content }}
{{ else if eq .Role "tool" }}Result of {{ .ToolName }}: {{ .Content }}
{{ else if eq .Role "assistant" }}Assistant: {{- if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}{{ else }}{{ .Content }}{{ end }}
{{ end }}{{ end }}Assistant:`;

before(async () => {
  server = await startServer(bin, { HEARTH_API_KEY: 'sekrit' });
  const headers = { Authorization: 'Bearer sekrit' };
  ollama = new Ollama({ host: server.host, headers });
  anthropic = new Anthropic({ baseURL: server.host, apiKey: 'sekrit', maxRetries: 0 });  // sent as x-api-key
  const sha = await upload(server.host, join(testdata, 'models/stories260K.gguf'), headers);
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': sha }, template: kTemplate });
});

after(() => server.stop());

const messages = [{ role: 'user', content: 'Once upon a time' }];

test('a message: text content, stop_reason, usage; the same greedy text as /api/chat', async () => {
  const m = await anthropic.messages.create({ model: 'tiny', max_tokens: 12, temperature: 0, messages });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.match(m.id, /^msg_[0-9a-f]{24}$/);
  assert.equal(m.stop_reason, 'max_tokens');
  assert.equal(m.content.length, 1);
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.usage.output_tokens, 12);
  assert.ok(m.usage.input_tokens > 0);
  const native = await ollama.chat({ model: 'tiny', messages, options: { temperature: 0, num_predict: 12 } });
  assert.equal(m.content[0].text, native.message.content);
});

test('streamed through the SDK\'s stream helper: the same message', async () => {
  const whole = await anthropic.messages.create({ model: 'tiny', max_tokens: 12, temperature: 0, messages });
  const stream = anthropic.messages.stream({ model: 'tiny', max_tokens: 12, temperature: 0, messages });
  const seen = [];
  stream.on('streamEvent', (e) => seen.push(e.type));
  let text = '';
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, whole.content[0].text);
  assert.equal(text, whole.content[0].text);
  assert.equal(final.stop_reason, 'max_tokens');
  assert.equal(seen[0], 'message_start');
  assert.equal(seen.at(-1), 'message_stop');
  assert.ok(seen.includes('content_block_delta'));
});

test('system prompt, stop sequences, tool_use and tool_result in the history', async () => {
  const sys = await anthropic.messages.create({ model: 'tiny', max_tokens: 12, temperature: 0, system: 'Lily was a girl.', messages });
  const native = await ollama.chat({ model: 'tiny', messages: [{ role: 'system', content: 'Lily was a girl.' }, ...messages], options: { temperature: 0, num_predict: 12 } });
  assert.equal(sys.content[0].text, native.message.content);
  const full = await anthropic.messages.create({ model: 'tiny', max_tokens: 30, temperature: 0, messages });
  const word = full.content[0].text.split(' ')[3];
  const stopped = await anthropic.messages.create({ model: 'tiny', max_tokens: 30, temperature: 0, messages, stop_sequences: [word] });
  assert.equal(stopped.stop_reason, 'end_turn');
  assert.ok(!stopped.content[0].text.includes(word));
  const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
  const withTools = await anthropic.messages.create({
    model: 'tiny', max_tokens: 5, temperature: 0, tools,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'Sunny' }] },
    ],
  });
  assert.equal(withTools.type, 'message');
  assert.equal(withTools.usage.output_tokens, 5);
});

test('count_tokens: the input tokens a message would take', async () => {
  const counted = await anthropic.messages.countTokens({ model: 'tiny', system: 'Lily was a girl.', messages });
  const m = await anthropic.messages.create({ model: 'tiny', max_tokens: 1, system: 'Lily was a girl.', messages });
  assert.equal(counted.input_tokens, m.usage.input_tokens);
  assert.ok(counted.input_tokens > 5);
});

test('errors as the SDK\'s typed classes; a wrong key is refused', async () => {
  await assert.rejects(anthropic.messages.create({ model: 'nosuch', max_tokens: 5, messages }), (e) => e instanceof Anthropic.NotFoundError);
  await assert.rejects(anthropic.messages.create({ model: 'tiny', max_tokens: 0, messages }), (e) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.message));
  await assert.rejects(anthropic.messages.create({ model: 'tiny', max_tokens: 5, messages: [] }), (e) => e instanceof Anthropic.BadRequestError);
  const wrong = new Anthropic({ baseURL: server.host, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(wrong.messages.create({ model: 'tiny', max_tokens: 5, messages }), (e) => e instanceof Anthropic.AuthenticationError);
});
