// GET /metrics after a scripted load, parsed by the npm `parse-prometheus-text-format`
// package: every counter equals what the load did. Also GET /api/status.
//
// usage: node metrics.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startServer, upload, testdata } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node metrics.mjs HEARTH_BIN');

let server, ollama;

before(async () => {
  server = await startServer(bin);
  ollama = new Ollama({ host: server.host });
  const digest = await upload(server.host, join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': digest } });
});

after(() => server.stop());

function metric(families, name, labels = {}) {
  const f = families.find((x) => x.name === name);
  assert.ok(f, `no metric ${name}`);
  const m = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  assert.ok(m, `no ${name} ${JSON.stringify(labels)}`);
  return m;
}

test('counters equal the load: requests by route and status, tokens, latencies, models', async () => {
  const gens = [];
  for (const p of ['Once upon a time', 'The dog', 'Once upon a time'])
    gens.push(await ollama.generate({ model: 'tiny', prompt: p, options: { temperature: 0, num_predict: 5 } }));
  const chats = [];
  for (let i = 0; i < 2; ++i) {
    let last;
    for await (const part of await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], stream: true, options: { num_predict: 4, seed: i } })) last = part;
    chats.push(last);
  }
  assert.equal((await fetch(`${server.host}/no/such/route`)).status, 404);
  assert.equal((await fetch(`${server.host}/api/generate`, { method: 'POST', body: '{"model":"tiny","prompt":5}' })).status, 400);
  const status = await fetch(`${server.host}/api/status`).then((r) => r.json());
  assert.deepEqual(status, { cloud: { disabled: true, source: 'none' } });

  const res = await fetch(`${server.host}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await res.text());
  const value = (name, labels) => Number(metric(families, name, labels).value);
  assert.equal(value('hearth_requests_total', { route: '/api/generate', status: '200' }), 3);
  assert.equal(value('hearth_requests_total', { route: '/api/generate', status: '400' }), 1);
  assert.equal(value('hearth_requests_total', { route: '/api/chat', status: '200' }), 2);
  assert.equal(value('hearth_requests_total', { route: 'other', status: '404' }), 1);
  assert.equal(value('hearth_generations_total'), 5);
  const generated = [...gens, ...chats].reduce((s, r) => s + r.eval_count, 0);
  assert.equal(generated, 3 * 5 + 2 * 4);
  assert.equal(value('hearth_generated_tokens_total'), generated);
  // Tokens evaluated = all prompt tokens minus those reused from a slot's cache.
  const evaluated = [...gens, ...chats].reduce((s, r) => s + (r.prompt_eval_count ?? 0), 0);
  assert.equal(value('hearth_prompt_tokens_total') - value('hearth_prompt_tokens_cached_total'), evaluated);
  assert.ok(value('hearth_prompt_tokens_cached_total') > 0);  // the third generate repeats the first prompt
  const ttft = metric(families, 'hearth_time_to_first_token_seconds');
  assert.equal(Number(ttft.count), 5);
  assert.equal(Number(ttft.buckets['+Inf']), 5);
  assert.equal(Number(metric(families, 'hearth_inter_token_latency_seconds').count), generated - 5);
  assert.equal(value('hearth_loaded_models'), 1);
  assert.equal(value('hearth_slots', { model: 'tiny:latest' }), 4);
  assert.equal(value('hearth_busy_slots', { model: 'tiny:latest' }), 0);
  assert.equal(value('hearth_queue_depth', { model: 'tiny:latest' }), 0);
  assert.ok(value('hearth_loaded_model_bytes', { model: 'tiny:latest' }) > 1e6);
});
