// Generated junk on every route and frame type: never a 5xx, never a crash, the next good request works.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { registerModel } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { smallKeys } from '../helpers/keys.js';
import { junkRequest, sendJunk, type JunkTarget } from '../../bench/junk-requests.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const API_KEY = 'junk-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-junk-'));
let server: BlindmlServer;
const n = smallKeys().publicKey.n;
const target: JunkTarget = { modelId: modelIdOf(onnx), apiKey: API_KEY, n, nB64: bigIntToBase64Url(n) };

before(async () => {
  // No wrong-key lock here: the junk sends wrong keys by the hundred.
  server = await startServer({ db: join(dir, 'r.db'), apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false, authBackoff: { freeFailures: 1e9 } });
  await registerModel(server.url, API_KEY, onnx);
});
after(async () => {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

test('300 generated junk requests and frames across every route: no 5xx, no crash, no 1006', async () => {
  await fc.assert(
    fc.asyncProperty(junkRequest(target), async (r) => {
      const out = await sendJunk(server.url, r);
      for (const s of out.statuses) assert.ok(s < 500, `status ${s} for ${r.kind === 'http' ? `${r.method} ${r.path}` : 'ws frames'}`);
      if (out.closeCode !== undefined) assert.notEqual(out.closeCode, 1006);
    }),
    { numRuns: 300 },
  );
  const health = (await (await fetch(`${server.url}/healthz`)).json()) as { status: string; models: number };
  assert.deepEqual(health, { ...health, status: 'ok', models: 1 }, 'the service is up and the model is still registered');
});
