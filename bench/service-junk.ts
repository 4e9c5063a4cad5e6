/**
 * `npm run bench:junk`: generated junk against a running service (not part of `npm test`).
 * Starts a server on loopback (fashion-small registered), sends `--runs` fast-check cases across
 * every route and frame type (`junk-requests.ts`), then checks that the service is up and a good
 * request still works; then measures a separate `blindml serve` process's RSS around 200 MB
 * uploads it must refuse before reading. Prints rows for docs/benchmarks.md "Service under load".
 *
 * Options: --runs N (default 10000), --seed N.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
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

/** Resident memory of a process, MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
  return kb / 1024;
}

/**
 * Streams `total` bytes (one reused 1 MiB chunk) with a declared length, going on after the answer
 * came until everything is sent or the service closes the connection; resolves with the status
 * it answered (0: none before the connection closed).
 */
function upload(url: string, total: number, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(2 ** 20, 7);
    let sent = 0;
    let status = 0;
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(total), ...headers } });
    req.on('response', (res) => {
      res.resume();
      status = res.statusCode ?? 0;
    });
    req.on('finish', () => setTimeout(() => req.destroy(), 200));
    // The service closes a refused upload's connection: the answer came before that.
    req.on('error', () => undefined);
    req.on('close', () => resolve(status));
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/**
 * `blindml serve` as its own process: its RSS before and after 200 MB uploads without a key
 * (`POST /v1/models`) and to an anonymous CKKS route (`keys`).
 */
async function uploadMemory(): Promise<string> {
  const keyFile = join(dir, 'owner.key');
  writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o600 });
  const cli = fileURLToPath(new URL('../src/cli/run.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--port', '0', '--db', join(dir, 'mem.db'), '--api-key-file', keyFile, '--workers', '0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /serving \d+ model\(s\) at (\S+) /.exec(err);
        if (m) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error(`serve exited: ${err}`)));
    });
    await registerModel(url, apiKey, onnx);
    const id = modelIdOf(onnx);
    await fetch(`${url}/v1/ckks/${id}/describe`, { method: 'POST', body: new Uint8Array(0), headers: { 'content-type': 'application/octet-stream' } });
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssMiB(child.pid!);
    const noKey = await upload(`${url}/v1/models`, 200 * 2 ** 20);
    const afterModels = rssMiB(child.pid!);
    const ckks = await upload(`${url}/v1/ckks/${id}/keys`, 200 * 2 ** 20);
    const afterCkks = rssMiB(child.pid!);
    const line = `200 MB keyless POST /v1/models: HTTP ${noKey}, server RSS ${before.toFixed(0)} → ${afterModels.toFixed(0)} MiB (+${(afterModels - before).toFixed(1)}); 200 MB anonymous CKKS keys upload: HTTP ${ckks}, RSS → ${afterCkks.toFixed(0)} MiB (+${(afterCkks - afterModels).toFixed(1)})`;
    console.log(line);
    return `| 200 MB uploads refused before reading (\`npm run bench:junk\`, \`blindml serve\` as its own process) | no key on \`POST /v1/models\`: ${noKey}, server RSS +${(afterModels - before).toFixed(1)} MiB; anonymous \`POST /v1/ckks/:id/keys\` over the model's key size: ${ckks}, RSS +${(afterCkks - afterModels).toFixed(1)} MiB |`;
  } finally {
    child.kill('SIGKILL');
  }
}
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
  console.log(await uploadMemory());
  if (fiveXx > 0 || resets > 0 || !alive) process.exitCode = 1;
} finally {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
}
