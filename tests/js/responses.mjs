// hearth serve's /v1/responses (OpenAI's Responses API, stateless) driven by the real npm
// `openai` client: responses.create streamed and not, the SDK's stream helper accumulating
// the typed events, input items with function calls and their outputs, tools and
// tool_choice, text.format json_schema (validated by ajv), reasoning items, errors as the
// SDK's typed classes, the SSE framing on the wire, and greedy text equal to
// /v1/chat/completions' for the same conversation.
//
// usage: node responses.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, upload, testdata, toolTemplate } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node responses.mjs HEARTH_BIN');

let server, ollama, openai;

// A qwen3-like template: the new turn opens inside <think> when think is on.
const kThinkTemplate = `{{- range $i, $_ := .Messages }}{{- if eq .Role "user" }}User: {{ .Content }}
{{ else if eq .Role "assistant" }}Assistant: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}
{{ end }}{{ end }}Assistant:{{ if .Think }} <think>{{ end }}`;

before(async () => {
  server = await startServer(bin);
  ollama = new Ollama({ host: server.host });
  openai = new OpenAI({ baseURL: `${server.host}/v1`, apiKey: 'unused', maxRetries: 0 });
  const digest = await upload(server.host, join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': digest }, template: toolTemplate({ system: true }) });
  await ollama.create({ model: 'thinker', from: 'tiny', template: kThinkTemplate });
});

after(() => server.stop());

const greedy = { temperature: 0, max_output_tokens: 12 };
const chatText = async (messages, max_tokens = 12) =>
  (await openai.chat.completions.create({ model: 'tiny', messages, max_tokens, temperature: 0 })).choices[0].message.content;

test('a string input: output_text, incomplete at max_output_tokens, usage; the text of /v1/chat/completions', async () => {
  const r = await openai.responses.create({ model: 'tiny', input: 'Once upon a time', ...greedy });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.output.length, 1);
  assert.equal(r.output[0].type, 'message');
  assert.equal(r.output[0].role, 'assistant');
  assert.equal(r.output_text, await chatText([{ role: 'user', content: 'Once upon a time' }]));
  assert.equal(r.usage.output_tokens, 12);
  assert.ok(r.usage.input_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + 12);
  assert.equal(r.max_output_tokens, 12);
  assert.equal(r.temperature, 0);
});

test('instructions and input items: messages, a function call and its output, as the same chat', async () => {
  const tools = [{ type: 'function', name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const r = await openai.responses.create({
    model: 'tiny', ...greedy, instructions: 'Tell a story.', tools,
    input: [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Once upon ' }, { type: 'input_text', text: 'a time' }] },
    ],
  });
  const chat = await openai.chat.completions.create({
    model: 'tiny', max_tokens: 12, temperature: 0,
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: tools[0].parameters } }],
    messages: [
      { role: 'system', content: 'Tell a story.' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      { role: 'user', content: [{ type: 'text', text: 'Once upon ' }, { type: 'text', text: 'a time' }] },
    ],
  });
  assert.equal(r.output_text, chat.choices[0].message.content);
  assert.equal(r.usage.input_tokens, chat.usage.prompt_tokens);
  assert.equal(r.instructions, 'Tell a story.');
  assert.equal(r.tools[0].name, 'get_weather');
});

test('streamed: the SDK helper accumulates the events into the same response; sequence numbers count up', async () => {
  const whole = await openai.responses.create({ model: 'tiny', input: 'Once upon a time', ...greedy });
  const stream = openai.responses.stream({ model: 'tiny', input: 'Once upon a time', ...greedy });
  const types = [];
  let deltas = '';
  stream.on('event', (e) => {
    assert.equal(e.sequence_number, types.length);
    types.push(e.type);
  });
  stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, whole.output_text);
  assert.equal(deltas, whole.output_text);
  assert.equal(final.status, 'incomplete');
  assert.equal(final.usage.output_tokens, 12);
  const head = ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'];
  const tail = ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete'];
  assert.deepEqual(types.slice(0, 4), head);
  assert.deepEqual(types.slice(-4), tail);
  assert.ok(types.slice(4, -4).every((t) => t === 'response.output_text.delta'), types.join());
});

test('the SSE framing on the wire: event lines naming each data object\'s type', async () => {
  const r = await fetch(`${server.host}/v1/responses`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', input: 'Once upon a time', stream: true, ...greedy }),
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const text = await r.text();
  assert.ok(text.endsWith('\n\n'));
  const blocks = text.slice(0, -2).split('\n\n');
  assert.ok(blocks.length > 8);
  for (const [i, b] of blocks.entries()) {
    const m = b.match(/^event: (\S+)\ndata: (\{.*\})$/s);
    assert.ok(m, b);
    const data = JSON.parse(m[2]);
    assert.equal(data.type, m[1]);
    assert.equal(data.sequence_number, i);
  }
});

test('tools: tool_choice required makes a function_call item, streamed and not; a named one; none sends no tools', async () => {
  const tools = [
    { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'] } },
    { type: 'function', name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } },
  ];
  const r = await openai.responses.create({ model: 'tiny', input: 'Once upon a time', tools, tool_choice: 'required', temperature: 1, max_output_tokens: 200 });
  assert.equal(r.status, 'completed');
  const calls = r.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(r.output));
  assert.ok(['get_weather', 'get_time'].includes(calls[0].name));
  assert.match(calls[0].call_id, /^call_/);
  assert.equal(typeof JSON.parse(calls[0].arguments), 'object');
  const named = await openai.responses.create({ model: 'tiny', input: 'Once upon a time', tools, tool_choice: { type: 'function', name: 'get_time' }, temperature: 1, max_output_tokens: 200 });
  const call = named.output.find((o) => o.type === 'function_call');
  assert.equal(call.name, 'get_time');
  assert.ok(['UTC', 'CET'].includes(JSON.parse(call.arguments).zone));
  const stream = openai.responses.stream({ model: 'tiny', input: 'Once upon a time', tools, tool_choice: { type: 'function', name: 'get_time' }, temperature: 1, max_output_tokens: 200 });
  let argsDone = null;
  stream.on('response.function_call_arguments.done', (e) => { argsDone = e.arguments; });
  const final = await stream.finalResponse();
  const fc = final.output.find((o) => o.type === 'function_call');
  assert.equal(fc.name, 'get_time');
  assert.equal(fc.status, 'completed');
  assert.equal(argsDone, fc.arguments);
  const none = await openai.responses.create({ model: 'tiny', input: 'Once upon a time', tools, tool_choice: 'none', ...greedy });
  assert.equal(none.output_text, await chatText([{ role: 'user', content: 'Once upon a time' }]));
});

test('text.format json_schema: a document of the schema', async () => {
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 1, maximum: 99 } }, required: ['name', 'age'], additionalProperties: false };
  const r = await openai.responses.create({
    model: 'tiny', input: 'Once upon a time', temperature: 1, max_output_tokens: 400,
    text: { format: { type: 'json_schema', name: 'person', schema, strict: true } },
  });
  assert.equal(r.status, 'completed');
  assert.ok(new Ajv2020({ strict: false }).compile(schema)(JSON.parse(r.output_text)), r.output_text);
  assert.equal(r.text.format.name, 'person');
});

test('reasoning: a reasoning item with the summary, streamed as summary deltas; effort none turns it off', async () => {
  const ask = { model: 'thinker', input: 'Once upon a time', temperature: 0, max_output_tokens: 16, reasoning: { effort: 'high' } };
  const r = await openai.responses.create(ask);
  // The story model never closes </think>: everything it writes is reasoning.
  assert.deepEqual(r.output.map((o) => o.type), ['reasoning']);
  const summary = r.output[0].summary[0].text;
  assert.ok(summary.length > 10);
  assert.deepEqual(r.reasoning, { effort: 'high' });
  const native = await ollama.chat({ model: 'thinker', messages: [{ role: 'user', content: 'Once upon a time' }], think: 'high', options: { temperature: 0, num_predict: 16 } });
  assert.equal(summary, native.message.thinking);
  const stream = openai.responses.stream(ask);
  let deltas = '';
  stream.on('response.reasoning_summary_text.delta', (e) => { deltas += e.delta; });
  const final = await stream.finalResponse();
  assert.equal(deltas, summary);
  assert.equal(final.output[0].summary[0].text, summary);
  // Sent back as an input item, the reasoning goes with the assistant message after it.
  const again = await openai.responses.create({ model: 'thinker', ...greedy, reasoning: { effort: 'none' },
    input: ['Once upon a time', ...final.output, { role: 'assistant', content: 'The end.' }, { role: 'user', content: 'More' }].map((x) => typeof x === 'string' ? { role: 'user', content: x } : x) });
  assert.equal(again.output[0].type, 'message');
  assert.ok(again.output_text.length > 0);
});

test('errors as the SDK\'s typed classes', async () => {
  await assert.rejects(openai.responses.create({ model: 'nosuch', input: 'x' }), (e) => e instanceof OpenAI.NotFoundError && /nosuch/.test(e.message));
  await assert.rejects(openai.responses.create({ model: 'tiny', input: 'x', previous_response_id: 'resp_1' }),
    (e) => e instanceof OpenAI.BadRequestError && /stateless/.test(e.message));
  await assert.rejects(openai.responses.create({ model: 'tiny' }), (e) => e instanceof OpenAI.BadRequestError && /input is required/.test(e.message));
  await assert.rejects(openai.responses.create({ model: 'tiny', input: 'x', tools: [{ type: 'web_search' }] }),
    (e) => e instanceof OpenAI.BadRequestError && /web_search/.test(e.message));
  await assert.rejects(openai.responses.create({ model: 'tiny', input: [{ type: 'bogus' }] }),
    (e) => e instanceof OpenAI.BadRequestError && /input\[0\]: unknown input item type/.test(e.message));
  await assert.rejects(openai.responses.create({ model: 'tiny', input: 'x', reasoning: { effort: 'huge' } }), (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(openai.responses.create({ model: 'tiny', input: 'x', text: { format: { type: 'json_schema' } } }),
    (e) => e instanceof OpenAI.BadRequestError && /schema/.test(e.message));
});
