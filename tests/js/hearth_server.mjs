// A real `hearth serve` for the client tests: started on a free loopback port over a
// temporary store, and the GGUF upload the ollama CLI does (ollama-js has no helper).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const testdata = process.env.HEARTH_TESTDATA || resolve(here, '../../../shared/testdata');
export const reference = process.env.HEARTH_REFERENCE || resolve(here, '../../../shared/reference');

// Resolves to { host, store, stop() } once the server says where it listens.
export async function startServer(bin, env = {}) {
  const store = mkdtempSync(join(tmpdir(), 'hearth-js-'));
  const server = spawn(bin, ['serve'], {
    env: { ...process.env, OLLAMA_HOST: '127.0.0.1:0', OLLAMA_MODELS: store, HEARTH_API_KEY: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const host = await new Promise((ok, fail) => {
    let seen = '';
    server.stderr.on('data', (d) => {
      seen += d;
      const m = seen.match(/listening on (127\.0\.0\.1:\d+)/);
      if (m) ok(`http://${m[1]}`);
    });
    server.on('exit', (code) => fail(new Error(`hearth serve exited with ${code}: ${seen}`)));
  });
  return {
    host, store,
    stop() {
      server.kill('SIGTERM');
      rmSync(store, { recursive: true, force: true });
    },
  };
}

// POST /api/blobs/:digest as the ollama CLI does; returns the digest.
export async function upload(host, path, headers = {}) {
  const bytes = readFileSync(path);
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  const head = await fetch(`${host}/api/blobs/${digest}`, { method: 'HEAD', headers });
  if (head.status === 200) return digest;
  assert.equal(head.status, 404);
  const r = await fetch(`${host}/api/blobs/${digest}`, { method: 'POST', body: bytes, headers });
  assert.equal(r.status, 201, await r.text());
  return digest;
}

// A llama-3.1-like tool template: tool calls are bare JSON (so the call tag is "{"); with
// `system`, a system line first.
export function toolTemplate({ system = false } = {}) {
  const sys = system ? `{{- if .System }}System: {{ .System }}
{{ end }}` : '';
  return sys + `{{- if .Tools }}Tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}
{{ end }}{{- range .Messages }}{{- if eq .Role "user" }}User: {{ .Content }}
{{ else if eq .Role "tool" }}Result of {{ .ToolName }}: {{ .Content }}
{{ else if eq .Role "assistant" }}Assistant: {{- if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}{{ else }}{{ .Content }}{{ end }}
{{ end }}{{ end }}Assistant:`;
}
