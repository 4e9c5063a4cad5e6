/**
 * `npm run bench:service` (second part, also `npm run bench:service-load`): `blindml serve` under
 * load, as its own process on loopback, with its memory budget (`--max-memory-mb`).
 *
 * 1. Fresh keys: N clients (default 200) one after another, each with a fresh 2048-bit modulus,
 *    open a session and send their input; the server builds a DJN table for the key in every
 *    worker thread and re-randomizes its reply with it; the client then leaves (close). Server RSS:
 *    warm baseline (after one client and the idle timeout), peak, and after the idle timeout. Each
 *    modulus is a new product of two primes from a pool of random 1024-bit primes and the inputs
 *    are random values below n²: the server cannot tell them from real keys and ciphertexts and
 *    does the same work and allocations, while the bench skips a key generation and 784
 *    encryptions per client on the shared cores.
 * 2. CKKS open-and-abandon: one address uploads keys and opens `--cycles` sessions (default 64)
 *    that it never uses, then a client on another address (127.0.0.2) connects and completes a
 *    prediction. Server RSS against the memory limit; the attacker's opens by outcome.
 * 3. /healthz latency (p50/p99, one request at a time every 50 ms) during each phase: the model
 *    compiling for CKKS, key uploads, fresh-key sessions, abandoned opens and the CKKS session.
 *
 * Options: --parts fresh,ckks (default both), --clients N, --cycles N, --ckks-model reference|small (default reference),
 * --max-memory-mb N (default 3072), --idle-timeout S (default 10), --json.
 * Prints a Markdown section for docs/benchmarks.md.
 *
 * @module
 */
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { registerModel } from '../src/client/index.js';
import { healthProbe, quantile, spawnServe, type ServeProcess } from './serve-process.js';
import { loadFashionMnistSample } from '../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../src/nn/index.js';
import { bigIntToBase64Url } from '../src/math/bigint.js';
import { randomBits } from '../src/math/random.js';
import { randomPrime } from '../src/math/prime.js';
import { decodeMessage, encodeMessage, message } from '../src/protocol/paillier-inference/messages.js';
import { CkksInferenceClient, type CkksTransport } from '../src/protocol/ckks-inference/index.js';
import type { KeysRequest, OpenRequest, RoundRequest } from '../src/protocol/ckks-inference/messages.js';
import { decodeCkksMessage, encodeCkksMessage } from '../src/protocol/ckks-inference/wire.js';
import { ServiceError } from '../src/protocol/paillier-inference/client.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    parts: { type: 'string', default: 'fresh,ckks' },
    cycles: { type: 'string', default: '64' },
    'ckks-model': { type: 'string', default: 'reference' },
    'max-memory-mb': { type: 'string', default: '3072' },
    'idle-timeout': { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const clients = Number(args.clients);
const cycles = Number(args.cycles);
const maxMemoryMb = Number(args['max-memory-mb']);
const idleS = Number(args['idle-timeout']);
const KEY_BITS = 2048;
const PER_CLIENT = 8;

const root = fileURLToPath(new URL('../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-bench-load-'));
const API_KEY = 'bench-owner-key';
const log = (s: string) => process.stderr.write(`${s}\n`);

type Server = ServeProcess;

function startServer(db: string): Promise<Server> {
  return spawnServe(root, [
    '--db', db, '--api-key', API_KEY, '--idle-timeout', String(idleS), '--max-sessions-per-client', String(PER_CLIENT), '--opens-per-minute', '100000', '--max-memory-mb', String(maxMemoryMb),
  ]);
}

async function stopServer(s: Server): Promise<void> {
  s.proc.kill('SIGTERM');
  await s.exited;
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** Samples a process's RSS every 100 ms; `peak()` since the last `reset()`. */
function rssSampler(pid: number) {
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
  return { peak: () => peak, reset: () => (peak = rssMiB(pid)), stop: () => clearInterval(timer) };
}

async function health(url: string): Promise<{ sessions: number; memory: { budgetBytes: number; heldBytes: number } }> {
  return (await (await fetch(`${url}/healthz`)).json()) as { sessions: number; memory: { budgetBytes: number; heldBytes: number } };
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return true;
}

// --- 1. fresh keys -----------------------------------------------------------------------------------

async function paillier(url: string, bytes: Uint8Array) {
  const res = await fetch(`${url}/v1/paillier`, { method: 'POST', body: bytes as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
  return decodeMessage(new Uint8Array(await res.arrayBuffer()));
}

/**
 * Fresh moduli p·q from a pool of random 1024-bit primes (every pair a new modulus): real key
 * moduli, so random values below n² are units like real ciphertexts, without a key generation per
 * client on the shared cores.
 */
function modulusSource(clients: number): () => bigint {
  let size = 2;
  while ((size * (size - 1)) / 2 < clients + 1) size++;
  const primes = Array.from({ length: size }, () => randomPrime(KEY_BITS / 2));
  const pairs: [number, number][] = [];
  for (let i = 0; i < size; i++) for (let j = i + 1; j < size; j++) pairs.push([i, j]);
  return () => {
    const [i, j] = pairs.shift()!;
    return primes[i]! * primes[j]!;
  };
}
let freshModulus: () => bigint;

/** One client with a fresh modulus: open, input (the server's first stage and re-randomization), close. */
async function freshClient(url: string, modelId: string, inputs: number): Promise<string> {
  const n = freshModulus();
  const opened = await paillier(url, encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(n), mode: 'latency' }), 1));
  if (opened.type !== 'opened') return opened.type === 'error' ? opened.code : opened.type;
  const nSquared = n * n;
  const ciphertexts = Array.from({ length: inputs }, () => (randomBits(2 * KEY_BITS - 2) % nSquared) + 1n);
  const reply = await paillier(url, encodeMessage(message<'input'>({ type: 'input', sessionId: opened.sessionId, samples: 1, ciphertexts }), 2 * (KEY_BITS / 8)));
  await paillier(url, encodeMessage(message<'close'>({ type: 'close', sessionId: opened.sessionId }), 1));
  return reply.type === 'error' ? reply.code : reply.type;
}

async function freshKeys(probe: ReturnType<typeof healthProbe> | undefined, server: Server, modelId: string) {
  const inputs = 784;
  const rss = rssSampler(server.proc.pid!);
  // Warm: one client, then its key expires; the baseline is what the server holds afterwards.
  await freshClient(server.url, modelId, inputs);
  await new Promise((r) => setTimeout(r, (idleS + 6) * 1000));
  const baseline = rssMiB(server.proc.pid!);
  rss.reset();
  probe?.set('fresh-key sessions');
  const outcomes = new Map<string, number>();
  const started = performance.now();
  for (let i = 0; i < clients; i++) {
    const out = await freshClient(server.url, modelId, inputs);
    outcomes.set(out, (outcomes.get(out) ?? 0) + 1);
    if ((i + 1) % 20 === 0) log(`  ${i + 1}/${clients} fresh-key clients, RSS ${rssMiB(server.proc.pid!).toFixed(0)} MiB`);
  }
  const seconds = (performance.now() - started) / 1000;
  const rightAfter = rssMiB(server.proc.pid!);
  probe?.set('idle');
  const held = (await health(server.url)).memory.heldBytes;
  await waitFor(async () => (await health(server.url)).memory.heldBytes === 0, (idleS + 10) * 1000);
  await new Promise((r) => setTimeout(r, 3000));
  const after = rssMiB(server.proc.pid!);
  rss.stop();
  return { clients, seconds, outcomes: Object.fromEntries(outcomes), baseline, peak: rss.peak(), rightAfter, heldRightAfterMiB: held / 2 ** 20, after };
}

// --- 2. CKKS open-and-abandon --------------------------------------------------------------------------

/** The CKKS HTTP steps from a chosen local address (node:http, so the server sees another client). */
class AddressTransport implements CkksTransport {
  constructor(
    private readonly url: string,
    private readonly modelId: string,
    private readonly localAddress: string,
  ) {}
  describe() {
    return this.post('describe', new Uint8Array(0));
  }
  registerKeys(r: KeysRequest) {
    return this.post('keys', encodeCkksMessage(r));
  }
  open(r: OpenRequest) {
    return this.post('open', encodeCkksMessage(r));
  }
  round(r: RoundRequest) {
    return this.post('round', encodeCkksMessage(r));
  }
  post(step: string, body: Uint8Array): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${this.url}/v1/ckks/${this.modelId}/${step}`, { method: 'POST', localAddress: this.localAddress, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const all = Buffer.concat(chunks);
          if (res.statusCode === 200) return resolve(decodeCkksMessage(new Uint8Array(all.buffer, all.byteOffset, all.byteLength)));
          try {
            const { error, message: text } = JSON.parse(all.toString()) as { error: string; message: string };
            reject(new ServiceError(error, text));
          } catch {
            reject(new Error(`HTTP ${res.statusCode}`));
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

async function ckksAbandon(probe: ReturnType<typeof healthProbe>, server: Server, modelId: string, onnx: Uint8Array) {
  const sample = loadFashionMnistSample({ limit: 1 });
  const expected = argmaxRows(runPlaintext(importOnnx(onnx), sample.images), 10)[0];
  const rss = rssSampler(server.proc.pid!);
  const attacker = new AddressTransport(server.url, modelId, '127.0.0.1');
  probe.set('CKKS compile');
  let t = performance.now();
  await attacker.describe();
  const compileS = (performance.now() - t) / 1000;
  probe.set('CKKS key upload');
  t = performance.now();
  const bad = await CkksInferenceClient.connect(attacker);
  const keysS = (performance.now() - t) / 1000;
  probe.set('idle');
  // Let the prepared session be made (idle work) before the opens.
  await waitFor(async () => (await health(server.url)).memory.heldBytes > 0, 120_000);
  await new Promise((r) => setTimeout(r, 2000));
  const before = rssMiB(server.proc.pid!);
  probe.set('CKKS abandoned opens');
  const outcomes = new Map<string, number>();
  for (let i = 0; i < cycles; i++) {
    const code = await attacker.open({ version: 1, keyId: bad.keyId }).then(() => 'opened', (e: unknown) => (e instanceof ServiceError ? e.code : String(e)));
    outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
  }
  const afterOpens = rssMiB(server.proc.pid!);
  probe.set('CKKS session (other address)');
  const victim = new AddressTransport(server.url, modelId, '127.0.0.2');
  t = performance.now();
  const good = await CkksInferenceClient.connect(victim);
  const { logits } = await good.predict(sample.images);
  const victimS = (performance.now() - t) / 1000;
  const label = logits.indexOf(Math.max(...logits));
  probe.set('idle');
  const h = await health(server.url);
  bad.dispose();
  good.dispose();
  const peak = rss.peak();
  rss.stop();
  return { compileS, keysS, before, afterOpens, peak, budgetMiB: h.memory.budgetBytes / 2 ** 20, outcomes: Object.fromEntries(outcomes), victimOk: label === expected, victimS };
}

// --- main ---------------------------------------------------------------------------------------------

const small = readFileSync(join(root, 'models', 'fashion-small.onnx'));
const ckksOnnx = readFileSync(join(root, 'models', args['ckks-model'] === 'small' ? 'fashion-small.onnx' : 'fashion-reference.onnx'));
const results: Record<string, unknown> = {};
const parts = new Set(args.parts.split(','));
try {
  if (parts.has('fresh')) {
    freshModulus = modulusSource(clients);
    const server = await startServer(join(dir, 'fresh.db'));
    const modelId = (await registerModel(server.url, API_KEY, small, { name: 'fashion-small' })).model.id;
    log(`fresh keys: server ${server.url}, ${clients} clients`);
    const probe = healthProbe(server.url);
    results.fresh = await freshKeys(probe, server, modelId);
    results.freshHealth = await probe.stop();
    await stopServer(server);
  }

  if (parts.has('ckks')) {
    const server2 = await startServer(join(dir, 'ckks.db'));
    const probe2 = healthProbe(server2.url);
    probe2.set('model upload');
    const ckksId = (await registerModel(server2.url, API_KEY, ckksOnnx, { name: args['ckks-model'] })).model.id;
    log(`CKKS abandon: server ${server2.url}, model ${args['ckks-model']}, ${cycles} opens`);
    results.ckks = await ckksAbandon(probe2, server2, ckksId, ckksOnnx);
    results.ckksHealth = await probe2.stop();
    await stopServer(server2);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const phases = new Map<string, number[]>();
for (const m of [results.freshHealth, results.ckksHealth] as (Map<string, number[]> | undefined)[]) for (const [k, v] of m ?? []) phases.set(k, [...(phases.get(k) ?? []), ...v]);
const fresh = results.fresh as Awaited<ReturnType<typeof freshKeys>> | undefined;
const ckks = results.ckks as Awaited<ReturnType<typeof ckksAbandon>> | undefined;
if (args.json) {
  process.stdout.write(`${JSON.stringify({ fresh, ckks, health: Object.fromEntries([...phases].map(([k, v]) => [k, { n: v.length, p50: quantile(v, 0.5), p99: quantile(v, 0.99) }])) }, null, 2)}\n`);
} else {
  const mib = (v: number) => `${v.toFixed(0)} MiB`;
  const lines = [
    '## Service under load',
    '',
    `\`npm run bench:service\` (second part: \`bench/service-load.ts\`) starts \`blindml serve --max-memory-mb ${maxMemoryMb} --idle-timeout ${idleS}\` as its own process on loopback (${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}; server and clients share the cores, worker threads on all of them).`,
    '',
    '| check | result |',
    '|---|---|',
    ...(fresh ? [`| ${fresh.clients} clients one after another, each with a fresh ${KEY_BITS}-bit key (open, input, close) | ${Object.entries(fresh.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')} in ${fresh.seconds.toFixed(0)} s; server RSS ${mib(fresh.baseline)} warm baseline → ${mib(fresh.peak)} peak → ${mib(fresh.rightAfter)} right after (budget holding ${fresh.heldRightAfterMiB.toFixed(0)} MiB of key tables) → ${mib(fresh.after)} after the idle timeout (${(fresh.after - fresh.baseline).toFixed(0)} MiB above the baseline) |`] : []),
    ...(ckks ? [`| ${cycles} CKKS opens abandoned by one address (${args['ckks-model']} model), then a client on another address | opens: ${Object.entries(ckks.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}; server RSS ${mib(ckks.before)} before → ${mib(ckks.afterOpens)} after the opens, ${mib(ckks.peak)} peak (limit ${maxMemoryMb} MiB, of which ${mib(ckks.budgetMiB)} for per-client structures); the other address's prediction ${ckks.victimOk ? 'correct' : 'WRONG'} in ${ckks.victimS.toFixed(1)} s (keys, session) |`,
    `| CKKS compile of the model / first key upload | ${ckks.compileS.toFixed(1)} s / ${ckks.keysS.toFixed(1)} s (client key generation included) |`] : []),
    '',
    '/healthz latency, one request every 50 ms during each phase:',
    '',
    '| phase | requests | p50 | p99 |',
    '|---|---|---|---|',
    ...[...phases].map(([k, v]) => `| ${k} | ${v.length} | ${quantile(v, 0.5).toFixed(1)} ms | ${quantile(v, 0.99).toFixed(1)} ms |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
