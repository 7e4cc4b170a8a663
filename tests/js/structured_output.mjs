// Structured output through the real npm `ollama` client: for every schema of
// schemas.json, 20 seeded generations by a tiny model sampled at temperature 1 must
// parse and validate against the schema. The validator is ajv (draft 2020-12, with
// ajv-formats), not Hearth's own code.
//
// usage: node structured_output.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ollama } from 'ollama';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, upload, testdata, toolTemplate } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node structured_output.mjs HEARTH_BIN');
const here = dirname(fileURLToPath(import.meta.url));
const corpus = JSON.parse(readFileSync(join(here, 'schemas.json'), 'utf8'));
const kSeeds = 20;

let server, ollama;

before(async () => {
  server = await startServer(bin);
  ollama = new Ollama({ host: server.host });
  const digest = await upload(server.host, join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': digest } });
});

after(() => server.stop());

function validator(schema) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

test(`the corpus has at least 30 schemas`, () => assert.ok(corpus.length >= 30, `${corpus.length}`));

for (const { name, schema } of corpus) {
  test(`schema: ${name}`, async () => {
    const validate = validator(schema);
    const runs = await Promise.all(Array.from({ length: kSeeds }, (_, seed) => ollama.generate({
      model: 'tiny', prompt: 'Once upon a time', format: schema,
      options: { seed, temperature: 1, top_k: 0, top_p: 1, num_predict: 4000 },
    })));
    const texts = new Set();
    for (const [seed, r] of runs.entries()) {
      assert.equal(r.done_reason, 'stop', `seed ${seed}: ${r.response}`);
      let doc;
      assert.doesNotThrow(() => { doc = JSON.parse(r.response); }, `seed ${seed}: not JSON: ${r.response}`);
      assert.ok(validate(doc), `seed ${seed}: ${r.response}\n${JSON.stringify(validate.errors)}`);
      texts.add(r.response);
    }
    // Seeds give different documents wherever the schema leaves room.
    if (!['const'].includes(name)) assert.ok(texts.size > 1, `${name}: all ${kSeeds} seeds wrote ${[...texts][0]}`);
  });
}

test('chat with a format, streamed and not: the same document', async () => {
  const options = { seed: 3, temperature: 1, num_predict: 4000 };
  const messages = [{ role: 'user', content: 'Tell me about a cat.' }];
  const format = corpus.find((c) => c.name === 'person').schema;
  const whole = await ollama.chat({ model: 'tiny', messages, format, options });
  assert.equal(whole.done_reason, 'stop');
  assert.ok(validator(format)(JSON.parse(whole.message.content)), whole.message.content);
  let streamed = '';
  for await (const part of await ollama.chat({ model: 'tiny', messages, format, options, stream: true })) streamed += part.message.content;
  assert.equal(streamed, whole.message.content);
});

test('format "json": an object from the first token on', async () => {
  // A story model fills JSON strings with stories and does not end a free-form object
  // within a short budget, so this checks the start and the streaming only; the grammar
  // test walks "json" documents to their end.
  const options = { seed: 5, temperature: 1, num_predict: 40 };
  const messages = [{ role: 'user', content: 'Tell me about a cat.' }];
  const whole = await ollama.chat({ model: 'tiny', messages, format: 'json', options });
  assert.match(whole.message.content, /^\{\s*("|\})/);
  let streamed = '';
  for await (const part of await ollama.chat({ model: 'tiny', messages, format: 'json', options, stream: true })) streamed += part.message.content;
  assert.equal(streamed, whole.message.content);
});

test('a schema Hearth cannot guarantee is a 400 naming the keyword', async () => {
  await assert.rejects(
    ollama.generate({ model: 'tiny', prompt: 'x', format: { type: 'array', uniqueItems: true } }),
    (e) => e.status_code === 400 && /unsupported JSON schema keyword "uniqueItems" at the schema's root/.test(e.message));
  await assert.rejects(
    ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], format: { type: 'object', properties: { a: { type: 'string', format: 'email' } } } }),
    (e) => e.status_code === 400 && /format "email" at \/properties\/a is not supported/.test(e.message));
  await assert.rejects(
    ollama.generate({ model: 'tiny', prompt: 'x', format: 'yaml' }),
    (e) => e.status_code === 400 && /invalid format: "yaml"; expected "json" or a valid JSON Schema object/.test(e.message));
});


const weather = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

test('tool calls: parsed into message.tool_calls, streamed and not, and sent back as role tool', async () => {
  await ollama.create({ model: 'tooly', from: 'tiny', template: toolTemplate() });
  assert.ok((await ollama.show({ model: 'tooly' })).capabilities.includes('tools'));
  // The tiny model knows no tools: a format makes its answer a call (and proves format and tools compose).
  const format = { type: 'object', properties: { name: { const: 'get_weather' }, parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] } }, required: ['city'] } }, required: ['name', 'parameters'] };
  const request = { model: 'tooly', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather], format, options: { seed: 1, temperature: 1 } };
  const whole = await ollama.chat(request);
  assert.equal(whole.message.content, '');
  assert.equal(whole.message.tool_calls.length, 1);
  const call = whole.message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.ok(['Paris', 'Oslo'].includes(call.function.arguments.city), JSON.stringify(call));
  assert.equal(call.function.index, 0);
  assert.match(call.id, /^call_[a-z0-9]{8}$/);
  const streamed = [];
  let text = '';
  for await (const part of await ollama.chat({ ...request, stream: true })) {
    text += part.message.content;
    if (part.message.tool_calls) streamed.push(...part.message.tool_calls);
  }
  assert.equal(text, '');
  assert.deepEqual(streamed.map((c) => c.function), whole.message.tool_calls.map((c) => c.function));
  // The result goes back as a tool message, rendered by the template with its name.
  const next = await ollama.chat({
    model: 'tooly', tools: [weather], options: { seed: 1, num_predict: 8 },
    messages: [request.messages[0], whole.message, { role: 'tool', tool_name: 'get_weather', content: 'Sunny, 21 C' }],
  });
  assert.equal(next.done, true);
  assert.ok(next.eval_count > 0);
  // Without tools in the request nothing is parsed: the same JSON is content.
  const plain = await ollama.chat({ ...request, tools: undefined });
  assert.equal(plain.message.tool_calls, undefined);
  assert.deepEqual(JSON.parse(plain.message.content), { name: 'get_weather', parameters: call.function.arguments });
});

// A qwen3-like template: the new turn opens inside <think> when think is on.
const kThinkTemplate = `{{- range $i, $_ := .Messages }}{{- if eq .Role "user" }}User: {{ .Content }}
{{ else if eq .Role "assistant" }}Assistant: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}
{{ end }}{{ end }}Assistant:{{ if .Think }} <think>{{ end }}`;

test('thinking: split into message.thinking / thinking, streamed and not; think false leaves it off', async () => {
  await ollama.create({ model: 'thinker', from: 'tiny', template: kThinkTemplate });
  assert.ok((await ollama.show({ model: 'thinker' })).capabilities.includes('thinking'));
  const options = { temperature: 0, num_predict: 24 };
  const messages = [{ role: 'user', content: 'Once upon a time' }];
  const on = await ollama.chat({ model: 'thinker', messages, think: true, options });
  // The story model never closes </think>: everything it writes is reasoning.
  assert.ok(on.message.thinking.length > 10, JSON.stringify(on.message));
  assert.equal(on.message.content, '');
  let thinking = '';
  for await (const part of await ollama.chat({ model: 'thinker', messages, think: true, options, stream: true })) thinking += part.message.thinking ?? '';
  assert.equal(thinking, on.message.thinking);
  // The same text as the raw continuation of the rendered prompt.
  const raw = await ollama.generate({ model: 'thinker', prompt: 'User: Once upon a time\nAssistant: <think>', raw: true, options });
  assert.equal(raw.response, on.message.thinking);
  const gen = await ollama.generate({ model: 'thinker', prompt: 'Once upon a time', think: true, options });
  assert.equal(gen.thinking, on.message.thinking);
  assert.equal(gen.response, '');
  const off = await ollama.chat({ model: 'thinker', messages, think: false, options });
  assert.equal(off.message.thinking, undefined);
  assert.ok(off.message.content.length > 10);
  // With a format, the reasoning is free and the document comes after </think> (which this
  // model never writes: it reasons to the end of its budget); with think false, the document at once.
  const format = corpus.find((c) => c.name === 'person').schema;
  const free = await ollama.chat({ model: 'thinker', messages, think: true, format, options });
  assert.equal(free.message.thinking, on.message.thinking);
  assert.equal(free.message.content, '');
  const direct = await ollama.chat({ model: 'thinker', messages, think: false, format, options: { ...options, num_predict: 400 } });
  assert.ok(validator(format)(JSON.parse(direct.message.content)), direct.message.content);
  // Past reasoning is rendered back inside the tags.
  const again = await ollama.chat({ model: 'thinker', think: false, options: { ...options, num_predict: 4 },
    messages: [...messages, { role: 'assistant', content: 'The end.', thinking: 'short' }, { role: 'user', content: 'More' }] });
  assert.equal(again.done, true);
});
