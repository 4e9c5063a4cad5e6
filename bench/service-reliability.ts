/**
 * `npm run bench:service`: reliability of `blindml serve` on loopback (not part of `npm test`).
 *
 * 1. 20 concurrent encrypted sessions (WebSocket, default model): zero failures; server memory
 *    (RSS of the server process) before, at peak and after.
 * 2. A client process killed mid-session (SIGKILL): its session is freed; and an HTTP session
 *    abandoned mid-way is freed within the idle timeout.
 * 3. 1,000 malformed or oversized frames (WebSocket and HTTP); then the next good session works.
 * 4. Restart (SIGTERM, start again on the same database): the model is still registered and serves.
 * 5. Throughput through the server, client included, for every inference mode
 *    (`service-throughput.ts`): sessions per minute and predictions per hour.
 *
 * Options: --key-bits N (default 2048), --sessions N (default 20), --idle-timeout S (default 30),
 * --throughput-seconds S per mode (default 30; 0 skips 5), --throughput-clients N (default 2),
 * --poly-batches N full ckks-poly batches (default 2), --json. Prints a Markdown section for
 * docs/benchmarks.md.
 *
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { connect, listModels, registerModel } from '../src/client/index.js';
import { loadFashionMnistSample } from '../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../src/nn/index.js';
import { bigIntToBase64Url } from '../src/math/bigint.js';
import { encodeMessage, message } from '../src/protocol/paillier-inference/messages.js';
import { planModel } from '../src/protocol/paillier-inference/plan.js';
import { generateKeyPair } from '../src/schemes/paillier/keys.js';
import { PaillierWorkerPool } from '../src/workers/paillier-pool.js';
import { spawnServe, type ServeProcess } from './serve-process.js';
import { measureThroughput, throughputTable, type ThroughputRow } from './service-throughput.js';

const { values: args } = parseArgs({
  options: {
    'key-bits': { type: 'string', default: '2048' },
    sessions: { type: 'string', default: '20' },
    'idle-timeout': { type: 'string', default: '30' },
    'throughput-seconds': { type: 'string', default: '30' },
    'throughput-clients': { type: 'string', default: '2' },
    'poly-batches': { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const keyBits = Number(args['key-bits']);
const sessions = Number(args.sessions);
const idleS = Number(args['idle-timeout']);
const insecure = keyBits < 2048;
const MAX_FRAME_MB = 4;

const root = fileURLToPath(new URL('../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-bench-service-'));
const db = join(dir, 'registry.db');
const API_KEY = 'bench-owner-key';
const onnx = readFileSync(join(root, 'models', 'fashion-small.onnx'));
const sample = loadFashionMnistSample({ limit: sessions });
const plain = argmaxRows(runPlaintext(importOnnx(onnx), sample.images), 10);
const log = (s: string) => process.stderr.write(`${s}\n`);

type Server = ServeProcess;

function startServer(): Promise<Server> {
  return spawnServe(root, [
    '--db', db, '--api-key', API_KEY, '--idle-timeout', String(idleS), '--max-sessions-per-client', String(sessions + 8), '--opens-per-minute', '100000', '--max-frame-mb', String(MAX_FRAME_MB),
    ...(insecure ? ['--insecure'] : []),
  ]);
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function health(url: string): Promise<{ status: string; sessions: number; models: number }> {
  return (await (await fetch(`${url}/healthz`)).json()) as { status: string; sessions: number; models: number };
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > ms) return Number.NaN;
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.now() - start;
}

const keys = generateKeyPair({ bits: keyBits, insecure });
// Values one session encrypts: the input and every activation output (the clients share this key
// pair and so its precomputed randomness, as the CLI does; made on worker threads before the test).
const perSession = 784 + planModel(importOnnx(onnx)).stages.reduce((sum, st) => sum + (st.activation?.outputSize ?? 0), 0) + 8;
const image = (k: number) => sample.images.subarray(k * 784, (k + 1) * 784);
let server = await startServer();
const modelId = (await registerModel(server.url, API_KEY, onnx, { name: 'fashion-small' })).model.id;
log(`server ${server.url}, model ${modelId}, ${keyBits}-bit keys`);

// --- 1. concurrent sessions ------------------------------------------------------------------------
const clients = await Promise.all(Array.from({ length: sessions }, () => connect(server.url, { keys, insecure })));
const pool = new PaillierWorkerPool();
const precomputeStart = performance.now();
await clients[0]!.precompute(sessions * perSession + 64, (n) => pool.noise(keys.publicKey, n));
const precomputeMs = performance.now() - precomputeStart;
await pool.destroy();
log(`precomputed randomness for ${sessions} sessions in ${(precomputeMs / 1000).toFixed(1)} s`);
const rssBefore = rssMiB(server.proc.pid!);
let rssPeak = rssBefore;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(server.proc.pid!))), 100);
const started = performance.now();
const outcomes = await Promise.allSettled(
  clients.map(async (client, k) => {
    try {
      const r = await client.predict(modelId, image(k));
      return { ok: r.label === plain[k], ms: r.stats.totalMs };
    } finally {
      client.close();
    }
  }),
);
const concurrentMs = performance.now() - started;
clearInterval(sampler);
const failed = outcomes.filter((o) => o.status === 'rejected').length;
const disagreements = outcomes.filter((o) => o.status === 'fulfilled' && !o.value.ok).length;
for (const o of outcomes) if (o.status === 'rejected') log(`session failed: ${String(o.reason)}`);
const sessionMs = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.ms] : [])).sort((a, b) => a - b);
await waitFor(async () => (await health(server.url)).sessions === 0, 5_000);
const rssAfter = rssMiB(server.proc.pid!);
log(`1. ${sessions} concurrent sessions: ${failed} failed, ${disagreements} disagree, ${(concurrentMs / 1000).toFixed(1)} s; RSS ${rssBefore.toFixed(0)} → peak ${rssPeak.toFixed(0)} → ${rssAfter.toFixed(0)} MiB`);

// --- 2. killed and abandoned clients ------------------------------------------------------------------
const wsUrl = `${server.url.replace('http', 'ws')}/v1/ws`;
const openFrame = encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(keys.publicKey.n), mode: 'latency' }), 1);
const child = spawn(
  process.execPath,
  ['--input-type=module', '-e', `import WebSocket from 'ws'; const ws = new WebSocket(${JSON.stringify(wsUrl)}); ws.on('open', () => ws.send(Buffer.from(process.argv[1], 'base64'))); ws.on('message', () => console.log('opened')); setInterval(() => {}, 1000);`, Buffer.from(openFrame).toString('base64')],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
);
await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
const withKilled = (await health(server.url)).sessions;
child.kill('SIGKILL');
const killedFreedMs = await waitFor(async () => (await health(server.url)).sessions === 0, (idleS + 10) * 1000);
log(`2a. client killed mid-session (${withKilled} open): freed after ${killedFreedMs.toFixed(0)} ms`);

await fetch(`${server.url}/v1/paillier`, { method: 'POST', body: openFrame as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
const withAbandoned = (await health(server.url)).sessions;
const abandonedFreedMs = await waitFor(async () => (await health(server.url)).sessions === 0, (idleS + 10) * 1000);
log(`2b. HTTP session abandoned (${withAbandoned} open): freed after ${abandonedFreedMs.toFixed(0)} ms (idle timeout ${idleS} s)`);

// --- 3. malformed and oversized frames ----------------------------------------------------------------
function junkFrame(i: number): Uint8Array {
  const enc = new TextEncoder();
  const withHeader = (obj: unknown, extra = 0) => {
    const h = enc.encode(JSON.stringify(obj));
    const b = new Uint8Array(8 + h.length + extra);
    b.set([0x42, 0x4d, 0x4c, 0x4d]);
    new DataView(b.buffer).setUint32(4, h.length);
    b.set(h, 8);
    return b;
  };
  switch (i % 8) {
    case 0: return crypto.getRandomValues(new Uint8Array(1 + (i % 500)));
    case 1: return withHeader({ v: 1, type: 'open', modelId, n: '!!!', mode: 'latency' });
    case 2: return withHeader({ v: 2, type: 'open', modelId, n: 'AQAB', mode: 'latency' });
    case 3: return withHeader({ v: 1, type: 'input', sessionId: '0123456789abcdef', samples: 1, ct: { count: 3, width: 64 } }, 10);
    case 4: return withHeader({ v: 1, type: 'activated', sessionId: 'deadbeefdeadbeef', round: 0 });
    case 5: return enc.encode('BMLM\xff\xff\xff\xff{');
    case 6: return withHeader({ v: 1, type: 'result', sessionId: 'x'.repeat(20), outputs: 1, valuesPerCiphertext: 1, slotBits: 8 });
    default: return withHeader({ v: 1, type: 'open', modelId: 'no-such-model', n: bigIntToBase64Url(keys.publicKey.n), mode: 'latency' });
  }
}
const TOTAL_BAD = 1000;
const OVERSIZED = 20;
let errorsReplied = 0;
let oversizedClosed = 0;
let http413 = 0;
const badStart = performance.now();
await Promise.all(
  Array.from({ length: 4 }, async (_, lane) => {
    let ws: WebSocket | undefined;
    const open = async () => {
      const s = new WebSocket(wsUrl);
      await new Promise((resolve, reject) => {
        s.once('open', resolve);
        s.once('error', reject);
      });
      return s;
    };
    for (let i = lane; i < TOTAL_BAD - OVERSIZED; i += 4) {
      if (i % 50 === 0) {
        // Over HTTP now and then.
        const res = await fetch(`${server.url}/v1/paillier`, { method: 'POST', body: junkFrame(i) as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
        if (res.ok) errorsReplied++;
        continue;
      }
      ws ??= await open();
      const s = ws;
      const reply = new Promise<void>((resolve) => s.once('message', () => resolve()));
      if (i % 97 === 0) s.send('a text frame');
      else s.send(junkFrame(i));
      await reply;
      errorsReplied++;
    }
    ws?.close();
  }),
);
for (let i = 0; i < OVERSIZED; i++) {
  const big = new Uint8Array(MAX_FRAME_MB * 2 ** 20 + 1024);
  if (i % 2 === 0) {
    const s = new WebSocket(wsUrl);
    s.on('error', () => undefined);
    await new Promise((resolve) => s.once('open', resolve));
    const code = await new Promise<number>((resolve) => {
      s.once('close', (c: number) => resolve(c));
      s.send(big);
    });
    // 1009 when the close frame arrives before the upload ends, 1006 when the server drops it mid-upload.
    if (code === 1009 || code === 1006) oversizedClosed++;
  } else {
    // 413, or the connection closed before the whole body was sent: refused either way.
    const res = await fetch(`${server.url}/v1/paillier`, { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream' } }).catch(() => undefined);
    if (!res || res.status === 413) http413++;
  }
}
const badMs = performance.now() - badStart;
const good = await connect(server.url, { keys, insecure });
const next = await good.predict(modelId, image(0));
good.close();
const aliveAfterJunk = next.label === plain[0] && (await health(server.url)).status === 'ok';
const metricsText = await (await fetch(`${server.url}/metrics`)).text();
const rejected = [...metricsText.matchAll(/blindml_frames_rejected_total\{reason="(\w+)"\} (\d+)/g)].map((m) => `${m[1]} ${m[2]}`).join(', ');
log(`3. ${TOTAL_BAD} bad frames in ${(badMs / 1000).toFixed(1)} s: ${errorsReplied} error replies, ${oversizedClosed} WS closes 1009, ${http413} HTTP 413; next good session ${aliveAfterJunk ? 'ok' : 'FAILED'}; rejected: ${rejected}`);

// --- 4. restart ----------------------------------------------------------------------------------------
const rssEnd = rssMiB(server.proc.pid!);
server.proc.kill('SIGTERM');
const exitCode = await server.exited;
server = await startServer();
const models = await listModels(server.url, API_KEY);
const again = await connect(server.url, { keys, insecure });
const afterRestart = await again.predict(modelId, image(1));
again.close();
const restartOk = models.some((m) => m.id === modelId) && afterRestart.label === plain[1];
log(`4. restart (exit code ${exitCode}): ${models.length} model(s) listed, prediction ${restartOk ? 'ok' : 'FAILED'}`);

// --- 5. throughput through the server --------------------------------------------------------------
const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const throughput: ThroughputRow[] = Number(args['throughput-seconds']) > 0
  ? await measureThroughput({ url: server.url, apiKey: API_KEY, root, seconds: Number(args['throughput-seconds']), clients: Number(args['throughput-clients']), keyBits, insecure, polyBatches: Number(args['poly-batches']), log }, modelId)
  : [];
const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
server.proc.kill('SIGTERM');
await server.exited;
rmSync(dir, { recursive: true, force: true });

const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
const cpu = /Model name:\s+(.+)/.exec(lscpu)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
const result = {
  machine: `${cpu}, ${cpus().length} cores`,
  node: process.version,
  keyBits,
  sessions,
  failed,
  disagreements,
  precomputeSeconds: precomputeMs / 1000,
  concurrentSeconds: concurrentMs / 1000,
  sessionMsMedian: sessionMs[Math.floor(sessionMs.length / 2)] ?? Number.NaN,
  sessionMsMax: sessionMs[sessionMs.length - 1] ?? Number.NaN,
  rssMiB: { before: rssBefore, peak: rssPeak, afterSessions: rssAfter, afterJunk: rssEnd },
  killedClientFreedMs: killedFreedMs,
  abandonedHttpFreedMs: abandonedFreedMs,
  idleTimeoutS: idleS,
  badFrames: { total: TOTAL_BAD, errorReplies: errorsReplied, oversizedWsClosed: oversizedClosed, oversizedHttp413: http413, seconds: badMs / 1000, rejectedByReason: rejected },
  nextSessionAfterJunk: aliveAfterJunk,
  restart: { exitCode, models: models.length, predictionOk: restartOk },
  throughput: { rows: throughput, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter },
};
if (args.json) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const f = (x: number, d = 0) => x.toFixed(d);
  process.stdout.write(
    [
      `Machine: ${result.machine}; Node ${result.node}; server and clients on the same machine (loopback), ${keyBits}-bit client keys, default model (models/fashion-small.onnx), server with worker threads on all cores; the clients share one key pair whose encryption randomness was precomputed (${f(precomputeMs / 1000, 1)} s on worker threads, before the sessions). \`npm run bench:service\`.`,
      '',
      '| check | result |',
      '|---|---|',
      `| ${sessions} concurrent WebSocket sessions | ${failed} failed, ${disagreements} disagree with plaintext; all done in ${f(result.concurrentSeconds, 1)} s (per session median ${f(result.sessionMsMedian / 1000, 1)} s, max ${f(result.sessionMsMax / 1000, 1)} s) |`,
      `| server memory (RSS) | ${f(rssBefore)} MiB idle → ${f(rssPeak)} MiB peak during the ${sessions} sessions → ${f(rssAfter)} MiB after; ${f(rssEnd)} MiB after the bad frames |`,
      `| client process killed (SIGKILL) mid-session | session freed after ${f(killedFreedMs)} ms (socket close) |`,
      `| HTTP session abandoned mid-way | freed after ${f(abandonedFreedMs / 1000, 1)} s (idle timeout ${idleS} s) |`,
      `| ${TOTAL_BAD} malformed or oversized frames | ${errorsReplied} answered with an error message, ${oversizedClosed} of ${OVERSIZED / 2} oversized WebSocket frames closed their connection (1009/1006), ${http413} of ${OVERSIZED / 2} oversized HTTP bodies refused (413 or connection closed); server counted: ${rejected}; server up, next good session ${aliveAfterJunk ? 'correct' : 'FAILED'} (${f(badMs / 1000, 1)} s) |`,
      `| restart (SIGTERM, start on the same database) | exit code ${exitCode}; ${models.length} model listed; prediction ${restartOk ? 'correct' : 'FAILED'} |`,
      '',
      ...(throughput.length ? [`Throughput through the server, client included (load average ${loadBefore} before, ${loadAfter} after):`, '', throughputTable(throughput), ''] : []),
    ].join('\n'),
  );
}
process.exit(failed === 0 && disagreements === 0 && aliveAfterJunk && restartOk ? 0 : 1);
