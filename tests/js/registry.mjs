// /api/pull and /api/push through the real npm `ollama` client, against `hearth serve` and a
// real registry (Debian's docker-registry) on loopback: streamed progress, a round trip
// that leaves the model byte-identical and usable, and the errors the client surfaces.
//
// usage: node registry.mjs HEARTH_BIN   (HEARTH_TESTDATA as for ctest)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { startServer, upload, testdata } from './hearth_server.mjs';

const bin = process.argv[2];
if (!bin) throw new Error('usage: node registry.mjs HEARTH_BIN');

const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

// docker-registry with its own config and storage in a temporary directory.
async function startRegistry() {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-registry-js-'));
  const port = await freePort();
  writeFileSync(join(dir, 'config.yml'), [
    'version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true',
    'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, '  delete:', '    enabled: true',
    'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'));
  const proc = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: `127.0.0.1:${port}`, stop() { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); } };
}

let server, registry, ollama, remote;

before(async () => {
  registry = await startRegistry();
  server = await startServer(bin);
  ollama = new Ollama({ host: server.host });
  const digest = await upload(server.host, join(testdata, 'models/stories260K.gguf'));
  await ollama.create({ model: 'tiny', files: { 'stories260K.gguf': digest }, template: '{{ .Prompt }}' });
  remote = `${registry.host}/test/tiny:latest`;
  await ollama.copy({ source: 'tiny', destination: remote });
});

after(() => {
  server.stop();
  registry.stop();
});

const manifestOf = (name) => {
  const [host, ns, rest] = name.split('/');
  const [model, tag] = rest.split(':');
  return readFileSync(join(server.store, 'manifests', host, ns, model, tag), 'utf8');
};

test('push streams progress per layer, then pull brings back the same bytes', async () => {
  const pushed = [];
  for await (const p of await ollama.push({ model: remote, insecure: true, stream: true })) pushed.push(p);
  assert.equal(pushed[0].status, 'retrieving manifest');
  assert.equal(pushed.at(-2).status, 'pushing manifest');
  assert.equal(pushed.at(-1).status, 'success');
  const layers = pushed.filter((p) => p.status.startsWith('pushing ') && p.digest);
  assert.ok(layers.length >= 4, JSON.stringify(pushed));
  for (const p of layers) assert.equal(p.status, `pushing ${p.digest.slice(7, 19)}`);
  assert.ok(layers.some((p) => p.total > 1_000_000 && p.completed === p.total));

  const before = manifestOf(remote);
  await ollama.delete({ model: remote });
  await ollama.delete({ model: 'tiny' });
  assert.equal(readdirSync(join(server.store, 'blobs')).length, 0);

  const pulled = [];
  for await (const p of await ollama.pull({ model: remote, insecure: true, stream: true })) pulled.push(p);
  assert.deepEqual(pulled.filter((p) => !p.digest).map((p) => p.status),
    ['pulling manifest', 'verifying sha256 digest', 'writing manifest', 'success']);
  const model = pulled.find((p) => p.total > 1_000_000 && p.completed === p.total);
  assert.ok(model, JSON.stringify(pulled));
  assert.equal(manifestOf(remote), before);

  // The pulled model answers.
  const r = await ollama.generate({ model: remote, prompt: 'Once upon a time', options: { num_predict: 8, temperature: 0 } });
  assert.ok(r.response.length > 0);
  assert.equal(r.eval_count, 8);
});

test('pull without streaming answers the last status', async () => {
  const r = await ollama.pull({ model: remote, insecure: true, stream: false });
  assert.equal(r.status, 'success');
});

test('errors reach the client in Ollama\'s words', async () => {
  await assert.rejects(ollama.pull({ model: `${registry.host}/test/absent:latest`, insecure: true }),
    /pull model manifest: file does not exist/);
  await assert.rejects(ollama.pull({ model: `http://${registry.host}/test/tiny:latest` }), /insecure protocol http/);
  await assert.rejects(ollama.push({ model: `${registry.host}/test/missing:latest`, insecure: true }), /not found/);
  // Without insecure the client speaks TLS to a plain-HTTP registry: a named failure.
  await assert.rejects(ollama.pull({ model: remote }), /TLS handshake failed/);
  // The server keeps answering.
  assert.ok((await ollama.list()).models.length >= 1);
});
