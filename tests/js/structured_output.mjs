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
import { startServer, upload, testdata } from './hearth_server.mjs';

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
