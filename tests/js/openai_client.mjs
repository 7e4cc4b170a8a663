// hearth serve's OpenAI-compatible /v1/chat/completions driven by the real npm `openai`
// client: chat streamed and not, usage, logprobs, JSON mode and json_schema (validated by
// ajv), tools (a reply's tool_calls, streamed as deltas), errors as the SDK's typed classes,
// and greedy text equal to /api/chat's.
//
// usage: node openai_client.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, upload, testdata, toolTemplate } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node openai_client.mjs HEARTH_BIN');

let server, ollama, openai;


before(async () => {
  server = await startServer(bin);
  ollama = new Ollama({ host: server.host });
  openai = new OpenAI({ baseURL: `${server.host}/v1`, apiKey: 'unused', maxRetries: 0 });
  const digest = await upload(server.host, join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': digest }, template: toolTemplate() });
});

after(() => server.stop());

const messages = [{ role: 'user', content: 'Once upon a time' }];

test('chat completion: text, usage, finish_reason; the same greedy text as /api/chat', async () => {
  const r = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, 'tiny');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
  const native = await ollama.chat({ model: 'tiny', messages, options: { temperature: 0, num_predict: 12 } });
  assert.equal(r.choices[0].message.content, native.message.content);
});

test('streamed: role first, deltas, a finish chunk, the usage chunk, the same text', async () => {
  const whole = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
  const stream = await openai.chat.completions.create({
    model: 'tiny', messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '', first = true, finish = null, usage = null;
  const ids = new Set();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
    first = false;
    text += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(ids.size, 1);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 12);
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);  // all of the prompt, cached or not
});

test('logprobs with top alternatives', async () => {
  const r = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, 4);
  assert.equal(lp.map((x) => x.token).join(''), r.choices[0].message.content);
  for (const x of lp) {
    assert.ok(x.logprob <= 0);
    assert.equal(x.top_logprobs.length, 2);
    assert.equal(x.top_logprobs[0].token, x.token);  // greedy: the chosen one is the likeliest
    assert.deepEqual(x.bytes, [...Buffer.from(x.token)]);
  }
});

test('response_format: json_object and json_schema', async () => {
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 1, maximum: 99 } }, required: ['name', 'age'] };
  const r = await openai.chat.completions.create({
    model: 'tiny', messages, temperature: 1, seed: 4, max_tokens: 400,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
  });
  const doc = JSON.parse(r.choices[0].message.content);
  const validate = new Ajv2020({ strict: false }).compile(schema);
  assert.ok(validate(doc), r.choices[0].message.content);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const j = await openai.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 30, response_format: { type: 'json_object' } });
  assert.match(j.choices[0].message.content, /^\{/);
});

test('tools: tool_calls in the reply and as streamed deltas, finish_reason tool_calls, the result sent back', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  // The tiny model knows no tools: a schema makes its answer a call.
  const schema = { type: 'object', properties: { name: { const: 'get_weather' }, parameters: { type: 'object', properties: { city: { enum: ['Paris'] } }, required: ['city'] } }, required: ['name', 'parameters'] };
  const request = { model: 'tiny', messages: [{ role: 'user', content: 'Weather?' }], tools, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'call', schema } } };
  const r = await openai.chat.completions.create(request);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  const stream = await openai.chat.completions.create({ ...request, stream: true });
  const deltas = [];
  let finish;
  for await (const chunk of stream) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) deltas.push(tc);
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(deltas.length, 1);
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(deltas[0].function.arguments), { city: 'Paris' });
  // The call and its result go back; tool_choice none sends no tools.
  const next = await openai.chat.completions.create({
    model: 'tiny', tools, tool_choice: 'none', max_tokens: 5, temperature: 0,
    messages: [...request.messages, r.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'Sunny' }],
  });
  assert.equal(next.choices[0].finish_reason, 'length');
});

test('tool_choice required or named: the grammar forces a call of the allowed tools', async () => {
  const tools = [
    { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'] } } },
    { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } } },
  ];
  for (const seed of [1, 2, 3]) {
    const r = await openai.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: 'required', temperature: 1, seed, max_tokens: 200 });
    assert.equal(r.choices[0].finish_reason, 'tool_calls', JSON.stringify(r.choices[0].message));
    const call = r.choices[0].message.tool_calls[0];
    assert.ok(['get_weather', 'get_time'].includes(call.function.name));
    const args = JSON.parse(call.function.arguments);
    if (call.function.name === 'get_time') assert.ok(['UTC', 'CET'].includes(args.zone));
    else assert.equal(typeof args.city, 'string');
  }
  const named = await openai.chat.completions.create({ model: 'tiny', messages, tools, temperature: 1, seed: 5, max_tokens: 200,
    tool_choice: { type: 'function', function: { name: 'get_time' } } });
  assert.equal(named.choices[0].message.tool_calls[0].function.name, 'get_time');
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e) => e instanceof OpenAI.BadRequestError && /not one of the tools/.test(e.message));
});

test('errors as the SDK\'s typed classes', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'nosuch', messages }), (e) => e instanceof OpenAI.NotFoundError && /nosuch/.test(e.message));
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages: [] }), (e) => e instanceof OpenAI.BadRequestError && /too short/.test(e.message));
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } } } }),
    (e) => e instanceof OpenAI.BadRequestError && /uniqueItems/.test(e.message));
  for (const n of [0, 129, 1.5])
    await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, n }), (e) => e instanceof OpenAI.BadRequestError && /invalid n/.test(e.message));
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, reasoning_effort: 'huge' }), (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] }),
    (e) => e instanceof OpenAI.BadRequestError && /image URLs are not currently supported/.test(e.message));
});

test('n: several choices decoded in parallel, choice i drawn with seed + i, streamed and not', async () => {
  const ask = (extra) => openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, temperature: 1, seed: 7, ...extra });
  const r = await ask({ n: 3 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 24);  // every choice's tokens; the prompt once
  const single = [await ask({}), await ask({ seed: 8 }), await ask({ seed: 9 })];
  assert.equal(r.usage.prompt_tokens, single[0].usage.prompt_tokens);
  for (let i = 0; i < 3; ++i) {
    assert.equal(r.choices[i].message.content, single[i].choices[0].message.content, `choice ${i}`);
    assert.equal(r.choices[i].finish_reason, 'length');
  }
  assert.equal(new Set(r.choices.map((c) => c.message.content)).size, 3);  // different seeds, different stories
  const texts = ['', '', ''], roles = [0, 0, 0], finishes = [null, null, null];
  let usage = null;
  for await (const chunk of await ask({ n: 3, stream: true, stream_options: { include_usage: true } })) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) roles[c.index]++;
      texts[c.index] += c.delta.content ?? '';
      if (c.finish_reason) finishes[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual(texts, r.choices.map((c) => c.message.content));
  assert.deepEqual(roles, [1, 1, 1]);
  assert.deepEqual(finishes, ['length', 'length', 'length']);
  assert.equal(usage.completion_tokens, 24);
  const c = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, n: 2 });
  assert.deepEqual(c.choices.map((x) => x.index), [0, 1]);
  assert.equal(c.choices[0].text, c.choices[1].text);  // greedy: the same answer twice
  assert.equal(c.usage.completion_tokens, 12);
  const streamed = ['', ''];
  for await (const x of await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, n: 2, stream: true }))
    for (const ch of x.choices) streamed[ch.index] += ch.text;
  assert.deepEqual(streamed, c.choices.map((x) => x.text));
});

test('completions: text, streamed and not, logprobs in the completions format, echo, errors', async () => {
  const r = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 10);
  const native = await ollama.generate({ model: 'tiny', prompt: 'Once upon a time', options: { temperature: 0, num_predict: 10 } });
  assert.equal(r.choices[0].text, native.response);
  let text = '', finish;
  for await (const c of await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 10, temperature: 0, stream: true })) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(finish, 'length');
  const lp = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 2 });
  const l = lp.choices[0].logprobs;
  assert.equal(l.tokens.join(''), lp.choices[0].text);
  assert.equal(l.token_logprobs.length, 3);
  assert.equal(Object.keys(l.top_logprobs[0]).length, 2);
  assert.deepEqual(l.text_offset, [0, l.tokens[0].length, l.tokens[0].length + l.tokens[1].length]);
  // echo: the prompt starts the text, streamed and not, for every choice.
  const echo = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 10, temperature: 0, echo: true, n: 2 });
  assert.deepEqual(echo.choices.map((c) => c.text), ['Once upon a time' + r.choices[0].text, 'Once upon a time' + r.choices[0].text]);
  assert.equal(echo.usage.completion_tokens, 20);
  let echoed = '';
  for await (const c of await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 10, temperature: 0, echo: true, stream: true }))
    echoed += c.choices[0]?.text ?? '';
  assert.equal(echoed, echo.choices[0].text);
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: 'x', echo: true, logprobs: 1 }),
    (e) => e instanceof OpenAI.BadRequestError && /echo with logprobs/.test(e.message));
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: ['a', 'b'] }), (e) => e instanceof OpenAI.BadRequestError && /prompt must be a string/.test(e.message));
  await assert.rejects(openai.completions.create({ model: 'nosuch', prompt: 'x' }), (e) => e instanceof OpenAI.NotFoundError);
});
