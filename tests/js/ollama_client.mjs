// hearth serve driven by the real npm `ollama` client (and `openai` on /v1): upload a
// model from ../shared/testdata as a blob, create, list, show, copy, quantize through
// create, delete, and the error cases, asserting what the client sees.
//
// usage: node ollama_client.mjs HEARTH_BIN   (HEARTH_TESTDATA, HEARTH_REFERENCE as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { startServer, upload as uploadTo, testdata, reference } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node ollama_client.mjs HEARTH_BIN');

let server, host, ollama, store;

before(async () => {
  server = await startServer(bin);
  ({ host, store } = server);
  ollama = new Ollama({ host });
});

after(() => server.stop());

const upload = (path) => uploadTo(host, path);

test('version, empty list, ps', async () => {
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual((await ollama.list()).models, []);
  assert.deepEqual((await ollama.ps()).models, []);
});

test('create from an uploaded GGUF, list, show, copy, delete', async () => {
  const digest = await upload(join(testdata, 'models/stories260K.gguf'));
  const progress = await ollama.create({
    model: 'stories', files: { 'stories260K.gguf': digest }, stream: true,
    template: '{{ .System }}\nUser: {{ .Prompt }}\nAssistant:', system: 'You tell short stories.',
    parameters: { temperature: 0.6, stop: ['User:'] }, license: 'MIT',
  });
  const statuses = [];
  for await (const p of progress) statuses.push(p.status);
  assert.equal(statuses[0], 'parsing GGUF');
  assert.equal(statuses.at(-1), 'success');
  assert.ok(statuses.includes('writing manifest'));

  const list = await ollama.list();
  assert.equal(list.models.length, 1);
  const m = list.models[0];
  assert.equal(m.name, 'stories:latest');
  assert.equal(m.details.family, 'llama');
  assert.equal(m.details.format, 'gguf');
  assert.equal(m.details.parameter_size, '293K');
  assert.equal(m.details.quantization_level, 'F32');
  assert.ok(!isNaN(Date.parse(m.modified_at)), m.modified_at);  // RFC 3339
  assert.match(m.digest, /^[0-9a-f]{64}$/);

  const show = await ollama.show({ model: 'stories' });
  assert.equal(show.system, 'You tell short stories.');
  assert.equal(show.template, '{{ .System }}\nUser: {{ .Prompt }}\nAssistant:');
  assert.equal(show.license, 'MIT');
  assert.match(show.parameters, /^stop\s+"User:"\ntemperature\s+0\.6$/);
  assert.equal(show.model_info['general.architecture'], 'llama');
  assert.equal(show.model_info['llama.context_length'], 2048);
  assert.ok(show.modelfile.includes('FROM '));

  // A derived model: same weights, new system prompt; the blob is shared.
  const child = await ollama.create({ model: 'teller:v2', from: 'stories', system: 'Be terse.', stream: false });
  assert.equal(child.status, 'success');
  assert.equal((await ollama.show({ model: 'teller:v2' })).system, 'Be terse.');
  assert.equal((await ollama.show({ model: 'teller:v2' })).details.parent_model, 'stories:latest');

  assert.equal((await ollama.copy({ source: 'stories', destination: 'copy-of-stories' })).status, 'success');
  assert.deepEqual((await ollama.list()).models.map((x) => x.name).sort(),
    ['copy-of-stories:latest', 'stories:latest', 'teller:v2']);
  assert.equal((await ollama.delete({ model: 'copy-of-stories' })).status, 'success');
  assert.equal((await ollama.delete({ model: 'stories' })).status, 'success');
  // teller:v2 still uses the GGUF blob, so it is still there.
  const head = await fetch(`${host}/api/blobs/${digest}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.deepEqual((await ollama.list()).models.map((x) => x.name), ['teller:v2']);
});

test('quantize through create gives llama-quantize\'s bytes', async () => {
  const digest = await upload(join(reference, 'quant/synth-q-256/synth-q-256.f32.gguf'));
  const statuses = [];
  for await (const p of await ollama.create({ model: 'synth:q8', files: { 'synth.gguf': digest }, quantize: 'q8_0', stream: true })) {
    statuses.push(p.status);
  }
  assert.ok(statuses.includes('quantizing F32 model to Q8_0'), statuses.join(' | '));
  assert.equal(statuses.at(-1), 'success');
  const m = (await ollama.list()).models.find((x) => x.name === 'synth:q8');
  assert.equal(m.details.quantization_level, 'Q8_0');
  const sums = readFileSync(join(reference, 'quant/synth-q-256/SHA256SUMS'), 'utf8');
  const want = sums.split('\n').find((l) => l.endsWith('  synth-q-256.Q8_0.gguf')).slice(0, 64);
  const blobs = readdirSync(join(store, 'blobs'));
  assert.ok(blobs.includes(`sha256-${want}`), 'the quantized model blob is byte-identical to llama-quantize Q8_0');
});

test('errors reach the client with Ollama\'s status codes and messages', async () => {
  const err = async (p) => {
    try {
      await p;
    } catch (e) {
      return e;
    }
    assert.fail('expected an error');
  };
  let e = await err(ollama.show({ model: 'nosuch' }));
  assert.equal(e.status_code, 404);
  assert.equal(e.error, "model 'nosuch:latest' not found");
  e = await err(ollama.create({ model: 'x', stream: false }));
  assert.equal(e.status_code, 400);
  assert.equal(e.error, "neither 'from' or 'files' was specified");
  e = await err(ollama.create({ model: 'x', from: 'teller:v2', template: '{{ if }}', stream: false }));
  assert.equal(e.status_code, 400);
  assert.match(e.error, /^template error: template: :1: /);
  e = await err(ollama.create({ model: 'x', from: 'synth:q8', quantize: 'q4_0', stream: true }));
  assert.equal(e.status_code, 400);
  assert.equal(e.error, 'quantization is only supported for F16, BF16 and F32 models');
  // Rows of 172 fit no 32-value block: as today's llama-quantize, those tensors fall back to
  // f16 and the build succeeds, its progress streamed.
  const seen = [];
  for await (const p of await ollama.create({ model: 'x', from: 'teller:v2', quantize: 'q4_0', stream: true })) seen.push(p.status);
  assert.equal(seen[0], 'quantizing F32 model to Q4_0');
  assert.equal(seen.at(-1), 'success');
  await ollama.delete({ model: 'x' });
  assert.ok(!(await ollama.list()).models.some((m) => m.name === 'x:latest'));
  e = await err(ollama.delete({ model: 'nosuch' }));
  assert.equal(e.status_code, 404);
  e = await err(ollama.copy({ source: 'nosuch', destination: 'y' }));
  assert.equal(e.status_code, 404);
  const bad = await fetch(`${host}/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'POST', body: 'not what the digest says' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /^digest mismatch/);
  const dots = await fetch(`${host}/api/blobs/sha256:..`, { method: 'POST', body: 'x' });
  assert.equal(dots.status, 400);
  assert.equal((await dots.json()).error, 'invalid digest format');
  // An encoded slash decodes into a path no route matches.
  const trav = await fetch(`${host}/api/blobs/sha256:..%2F..%2Fetc%2Fpasswd`, { method: 'POST', body: 'x' });
  assert.equal(trav.status, 404);
  assert.deepEqual(readdirSync(join(store, 'blobs')).filter((f) => !/^sha256-[0-9a-f]{64}$/.test(f)), []);
});

test('the openai client lists and retrieves models on /v1', async () => {
  const openai = new OpenAI({ baseURL: `${host}/v1`, apiKey: 'unused' });
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('teller:v2'), ids.join(','));
  const one = await openai.models.retrieve('teller:v2');
  assert.equal(one.id, 'teller:v2');
  assert.equal(one.owned_by, 'library');
  await assert.rejects(openai.models.retrieve('nosuch'), (e) => e.status === 404);
});

test('generate and chat through the ollama client: streamed, not, concurrent, abort, ps', async () => {
  const digest = await upload(join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'talker', files: { 'stories260K.gguf': digest } });
  const options = { temperature: 0, num_predict: 24 };
  const whole = await ollama.generate({ model: 'talker', prompt: 'Once upon a time', options });
  assert.equal(whole.done, true);
  assert.equal(whole.done_reason, 'length');
  assert.equal(whole.eval_count, 24);
  assert.ok(whole.response.length > 10);
  assert.ok(Array.isArray(whole.context));
  let streamed = '';
  let last;
  for await (const part of await ollama.generate({ model: 'talker', prompt: 'Once upon a time', options, stream: true })) {
    streamed += part.response;
    last = part;
  }
  assert.equal(streamed, whole.response);
  assert.equal(last.done, true);
  // The same seed gives the same text at a temperature above zero.
  const seeded = { temperature: 1.0, seed: 7, num_predict: 24 };
  const a = await ollama.generate({ model: 'talker', prompt: 'The dog', options: seeded });
  const b = await ollama.generate({ model: 'talker', prompt: 'The dog', options: seeded });
  assert.equal(a.response, b.response);
  // Chat, and eight clients at once each getting what they get alone.
  const chat = await ollama.chat({ model: 'talker', messages: [{ role: 'user', content: 'Once upon a time' }], options });
  assert.equal(chat.message.role, 'assistant');
  assert.equal(chat.message.content, whole.response);
  const prompts = ['Lily', 'The cat', 'One day', 'Tom had', 'The sun', 'A bird', 'Mom said', 'Ben ran'];
  const alone = [];
  for (const p of prompts) alone.push((await ollama.generate({ model: 'talker', prompt: p, options })).response);
  const together = await Promise.all(prompts.map((p) => ollama.generate({ model: 'talker', prompt: p, options })));
  assert.deepEqual(together.map((r) => r.response), alone);
  // Abort mid-stream: the server keeps answering.
  const endless = await ollama.generate({ model: 'talker', prompt: 'Once', stream: true, options: { num_predict: -1, stop: ['\u0001'] } });
  let n = 0;
  for await (const part of endless) { if (++n === 3) { endless.abort(); break; } }
  assert.equal((await ollama.generate({ model: 'talker', prompt: 'Once upon a time', options })).response, whole.response);
  const ps = await ollama.ps();
  assert.equal(ps.models.length, 1);
  assert.equal(ps.models[0].name, 'talker:latest');
  await assert.rejects(ollama.generate({ model: 'nosuch', prompt: 'x' }), (e) => e.status_code === 404 && /model 'nosuch' not found/.test(e.message));
  await assert.rejects(ollama.generate({ model: 'talker', prompt: 'x', options: { stop: 'x' } }),
    (e) => e.status_code === 400 && /option "stop" must be of type array/.test(e.message));
  const unload = await ollama.generate({ model: 'talker', prompt: '', keep_alive: 0 });
  assert.equal(unload.done_reason, 'unload');
  assert.deepEqual((await ollama.ps()).models, []);
});
