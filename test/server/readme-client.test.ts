// The README's client example, run as written there against a service started here, so the README
// cannot drift from the API.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/server/app.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { runReadmeExample } from '../helpers/readme.js';

const dir = mkdtempSync(join(tmpdir(), 'blindml-readme-server-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the README\'s client example registers the model, predicts what the plaintext model predicts, and closes', async () => {
  const server = await startServer({ db: join(dir, 'registry.db'), apiKey: 'readme-key', port: 0, workers: 0, logger: false });
  const previous = process.env.BLINDML_API_KEY;
  process.env.BLINDML_API_KEY = 'readme-key';
  try {
    const logs = await runReadmeExample('client', [["'http://127.0.0.1:8080'", `'${server.url}'`]]);
    const model = importOnnx(readFileSync('models/fashion-small.onnx'));
    const expected = argmaxRows(runPlaintext(model, new Float32Array(784).fill(0.5)), 10)[0];
    assert.deepEqual(logs.at(-1), [expected, 10]);
    assert.ok(logs.some(([phase]) => phase === 'round'), 'progress reported the activation rounds');
  } finally {
    if (previous === undefined) delete process.env.BLINDML_API_KEY;
    else process.env.BLINDML_API_KEY = previous;
    await server.close(0);
  }
});
