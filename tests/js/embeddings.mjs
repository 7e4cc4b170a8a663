// Embeddings through the real npm clients against `hearth serve`: ollama's embed (batch of
// 100 inputs, empty strings, truncation, dimensions) and legacy embeddings, openai's
// embeddings.create (float and base64), and the errors each client surfaces.
//
// usage: node embeddings.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { startServer, upload, testdata } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node embeddings.mjs HEARTH_BIN');

let server, ollama, openai;

before(async () => {
  server = await startServer(bin);
  ollama = new Ollama({ host: server.host });
  openai = new OpenAI({ baseURL: `${server.host}/v1`, apiKey: 'unused', maxRetries: 0 });
  const digest = await upload(server.host, join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': digest } });
});

after(() => server.stop());

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'far'];
const sentence = (i) => Array.from({ length: 3 + (i % 17) }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' ');

test('embed: a batch of 100 inputs, each normalised, each the same as embedded alone', async () => {
  const inputs = Array.from({ length: 100 }, (_, i) => sentence(i));
  const r = await ollama.embed({ model: 'tiny', input: inputs });
  assert.equal(r.model, 'tiny');
  assert.equal(r.embeddings.length, 100);
  for (const v of r.embeddings) {
    assert.equal(v.length, 64);
    assert.ok(Math.abs(norm(v) - 1) < 1e-5);
  }
  assert.ok(r.prompt_eval_count > 100);
  for (const i of [0, 37, 99]) {
    const alone = await ollama.embed({ model: 'tiny', input: inputs[i] });
    assert.ok(cosine(alone.embeddings[0], r.embeddings[i]) > 1 - 1e-5, `input ${i}`);
  }
  // Different inputs, different vectors.
  assert.ok(cosine(r.embeddings[0], r.embeddings[1]) < 0.9999);
});

test('embed: empty input loads the model and returns no vectors; legacy embeddings is raw', async () => {
  const empty = await ollama.embed({ model: 'tiny', input: '' });
  assert.deepEqual(empty.embeddings, []);
  const legacy = await ollama.embeddings({ model: 'tiny', prompt: 'The cat sat on the mat.' });
  assert.equal(legacy.embedding.length, 64);
  assert.ok(Math.abs(norm(legacy.embedding) - 1) > 1e-3, 'the legacy vector is not normalised');
  const normal = await ollama.embed({ model: 'tiny', input: 'The cat sat on the mat.' });
  assert.ok(cosine(legacy.embedding, normal.embeddings[0]) > 1 - 1e-6);
  const none = await ollama.embeddings({ model: 'tiny', prompt: '' });
  assert.deepEqual(none.embedding, []);
});

test('embed: an input longer than the context is cut with truncate, refused without', async () => {
  const long = Array.from({ length: 300 }, (_, i) => words[i % words.length]).join(' ');
  const cut = await ollama.embed({ model: 'tiny', input: long, options: { num_ctx: 64 } });
  assert.equal(cut.embeddings.length, 1);
  assert.equal(cut.prompt_eval_count, 64);
  await assert.rejects(ollama.embed({ model: 'tiny', input: long, truncate: false, options: { num_ctx: 64 } }),
    (e) => e.status_code === 400 && /exceeds the context length/.test(e.error));
});

test('embed: dimensions cut and renormalise; more than the model has is a 400; unknown model 404', async () => {
  const r = await ollama.embed({ model: 'tiny', input: 'Hello', dimensions: 16 });
  assert.equal(r.embeddings[0].length, 16);
  assert.ok(Math.abs(norm(r.embeddings[0]) - 1) < 1e-5);
  await assert.rejects(ollama.embed({ model: 'tiny', input: 'Hello', dimensions: 65 }),
    (e) => e.status_code === 400 && /embedding length 64/.test(e.error));
  await assert.rejects(ollama.embed({ model: 'nosuch', input: 'Hello' }),
    (e) => e.status_code === 404 && e.error === 'model "nosuch" not found, try pulling it first');
});

test('openai embeddings.create: float and base64 give the same normalised vectors, with usage', async () => {
  const input = ['The cat sat on the mat.', 'Hello', ''];
  const f = await openai.embeddings.create({ model: 'tiny', input, encoding_format: 'float' });
  assert.equal(f.object, 'list');
  assert.equal(f.model, 'tiny');
  assert.equal(f.data.length, 3);
  f.data.forEach((d, i) => {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, 64);
    assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
  });
  assert.ok(f.usage.prompt_tokens > 0);
  assert.equal(f.usage.total_tokens, f.usage.prompt_tokens);
  // Asked for base64: little-endian float32 bytes.
  const b = await openai.embeddings.create({ model: 'tiny', input, encoding_format: 'base64' });
  b.data.forEach((d, i) => {
    const bytes = Buffer.from(d.embedding, 'base64');
    const v = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    assert.equal(v.length, 64);
    v.forEach((x, k) => assert.ok(Math.abs(x - f.data[i].embedding[k]) < 1e-6));
  });
  // Without encoding_format the SDK asks for base64 itself and decodes it.
  const d = await openai.embeddings.create({ model: 'tiny', input });
  d.data.forEach((e, i) => {
    assert.equal(e.embedding.length, 64);
    e.embedding.forEach((x, k) => assert.ok(Math.abs(x - f.data[i].embedding[k]) < 1e-6));
  });
  const native = await ollama.embed({ model: 'tiny', input: 'Hello' });
  assert.ok(cosine(native.embeddings[0], f.data[1].embedding) > 1 - 1e-6);
  const cut = await openai.embeddings.create({ model: 'tiny', input: 'Hello', dimensions: 8 });
  assert.equal(cut.data[0].embedding.length, 8);
});

test('openai embeddings errors: the SDK\'s typed classes', async () => {
  await assert.rejects(openai.embeddings.create({ model: 'nosuch', input: 'x' }), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(openai.embeddings.create({ model: 'tiny', input: [] }), (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(openai.embeddings.create({ model: 'tiny', input: 'x', dimensions: 1000 }),
    (e) => e instanceof OpenAI.BadRequestError && /embedding length/.test(e.message));
});
