/**
 * `npm run bench:junk`: generated junk against a running service (not part of `npm test`).
 * Starts a server on loopback (fashion-small registered), sends `--runs` fast-check cases across
 * every route and frame type (`junk-requests.ts`), then checks that the service is up and a good
 * request still works. Prints the counts and a row for docs/benchmarks.md "Service under load".
 *
 * Options: --runs N (default 10000), --seed N.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { bigIntToBase64Url } from '../src/math/bigint.js';
import { generateKeyPair } from '../src/schemes/paillier/keys.js';
import { startServer } from '../src/server/app.js';
import { getModel, registerModel } from '../src/client/index.js';
import { modelIdOf } from '../src/cli/inference-job.js';
import { junkRequest, sendJunk, type JunkTarget } from './junk-requests.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string' } } });
const runs = Number(args.runs);
const onnx = readFileSync(new URL('../models/fashion-small.onnx', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-junk-bench-'));
const apiKey = 'junk-bench-owner-key';
const server = await startServer({ db: join(dir, 'r.db'), apiKey, port: 0, workers: 0, allowInsecureKeys: true, logger: false, authBackoff: { freeFailures: 1e9 } });
try {
  await registerModel(server.url, apiKey, onnx);
  const n = generateKeyPair({ bits: 512, insecure: true }).publicKey.n;
  const target: JunkTarget = { modelId: modelIdOf(onnx), apiKey, n, nB64: bigIntToBase64Url(n) };
  const byStatus = new Map<string, number>();
  let fiveXx = 0;
  let resets = 0;
  let sent = 0;
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(junkRequest(target), async (r) => {
      const out = await sendJunk(server.url, r);
      sent++;
      for (const s of out.statuses) {
        byStatus.set(String(s), (byStatus.get(String(s)) ?? 0) + 1);
        if (s >= 500) fiveXx++;
      }
      if (out.closeCode !== undefined) byStatus.set(`ws close ${out.closeCode}`, (byStatus.get(`ws close ${out.closeCode}`) ?? 0) + 1);
      if (out.closeCode === 1006) resets++;
    }),
    { numRuns: runs, ...(args.seed ? { seed: Number(args.seed) } : {}) },
  );
  const seconds = (performance.now() - started) / 1000;
  const alive = (await getModel(server.url, target.modelId)) !== undefined && (await fetch(`${server.url}/healthz`)).status === 200;
  const counts = [...byStatus.entries()].sort().map(([k, v]) => `${k}: ${v}`).join(', ');
  console.log(`${sent} junk requests/frame sets in ${seconds.toFixed(1)} s: ${fiveXx} 5xx, ${resets} WebSocket resets, service ${alive ? 'up' : 'DOWN'}; ${counts}`);
  console.log(`\n| junk inputs (fast-check, every route and frame type, \`npm run bench:junk\`) | ${sent} generated; ${fiveXx} answered 5xx, ${resets} WebSocket resets (1006), 0 crashes; service up and model registered afterwards: ${alive ? 'yes' : 'NO'} (${seconds.toFixed(0)} s, loaded 2-core machine) |`);
  if (fiveXx > 0 || resets > 0 || !alive) process.exitCode = 1;
} finally {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
}
