// The service scaled out on standard parts, end to end with real processes: two `blindml serve`
// replicas (bin/blindml.js, built by `npm run build`) behind HAProxy running deploy/haproxy.cfg,
// one PostgreSQL registry, Redis, and two `blindml worker`s for ckks-poly batch jobs.
//
// The scheme is interactive Paillier with 512-bit client keys (the documented insecure flag,
// `serve --insecure`) on the committed fashion-small model: a prediction costs about 0.3 s of CPU
// there, so 20 clients stay cheap on two cores, and its sessions span several requests (open,
// input, activation rounds), so a replica killed mid-run really leaves sessions half done.
// Interactive CKKS would cost each client seconds of key generation and each replica seconds of
// key loading.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { generateKeyPair } from '../../src/schemes/paillier/keys.js';
import { Queue } from 'bullmq';
import { connect, connectCkksPoly, registerModel, type BlindmlClient } from '../../src/client/index.js';
import { BULL_PREFIX, POLY_QUEUE } from '../../src/server/jobs/redis-store.js';
import { haproxySkipReason, startHaproxy, type TestHaproxy } from '../helpers/haproxy.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { tinyPolyOnnx } from '../helpers/poly-model.js';
import { PAILLIER_LOGIT_TOLERANCE } from '../helpers/tolerance.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/blindml.js');
const CLIENTS = 20;
const PER_CLIENT = 2;
const API_KEY = 'scale-out-owner-key';
const onnx = readFileSync(join(ROOT, 'models/fashion-small.onnx'));
const sample = loadFashionMnistSample({ limit: CLIENTS * PER_CLIENT });
const plain = runPlaintext(importOnnx(onnx), sample.images);
const plainLabels = argmaxRows(plain, 10);
// ckks-poly: one job evaluates a whole batch whatever its size; a small polynomial network keeps it cheap.
const poly = tinyPolyOnnx();
const polyImages = sample.images.subarray(0, 8 * 784);
const plainPoly = runPlaintext(importOnnx(poly), polyImages);

/** Why the built CLI cannot be what is tested: dist/ older than src/. */
function staleBuild(): string | false {
  const newest = (dir: string): number => Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  let built: number;
  try {
    built = statSync(join(ROOT, 'dist/cli/run.js')).mtimeMs;
  } catch {
    return 'dist/ is missing';
  }
  return newest(join(ROOT, 'src')) > built ? 'dist/ is older than src/' : false;
}

const skip = haproxySkipReason() || postgresUnavailable() || redisSkipReason() || false;

/** A `blindml serve` process and the URL it listens on. */
interface Replica {
  readonly url: string;
  readonly child: ChildProcess;
  stderr(): string;
  exit: Promise<number | null>;
}

const dir = mkdtempSync(join(tmpdir(), 'blindml-scale-out-'));
const keyFile = join(dir, 'owner.key');
const processes: ChildProcess[] = [];
let lb: TestHaproxy | undefined;
let pg: TestPostgres | undefined;
let redis: TestRedis | undefined;
let a: Replica;
let b: Replica;
let modelId: string;
let polyId: string;

/** Starts `blindml serve` (port 0) on the shared registry and Redis; resolves once it prints its URL. */
function startReplica(name: string): Promise<Replica> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--replica-name', name, '--api-key-file', keyFile, '--insecure', '--threads', '1', '--log-level', 'warn',
    '--db', pg!.url, '--redis', redis!.url,
    // Every client reaches the replicas from 127.0.0.1 through the balancer.
    '--max-sessions-per-client', '64', '--opens-per-minute', '1000', '--drain-timeout', '5'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  processes.push(child);
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
      const m = /serving \d+ model\(s\) at (\S+) /.exec(stderr);
      if (m) resolve({ url: m[1]!, child, stderr: () => stderr, exit });
    });
    void exit.then((code) => reject(new Error(`replica ${name} exited (${code}): ${stderr}`)));
  });
}

const hostPort = (url: string) => new URL(url).host;

before(async () => {
  if (skip) return;
  const stale = staleBuild();
  if (stale) throw new Error(`${stale}: run npm run build first (this test runs bin/blindml.js)`);
  writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  // One after the other: the first creates the registry's tables.
  a = await startReplica('a');
  b = await startReplica('b');
  lb = await startHaproxy([hostPort(a.url), hostPort(b.url)]);
  // Both models go up through replica a only; b learns of them from the shared registry.
  modelId = (await registerModel(a.url, API_KEY, onnx)).model.id;
  polyId = (await registerModel(a.url, API_KEY, poly, { name: 'tiny-poly' })).model.id;
  // Replica b lists them at once (warming) and serves them once compiled.
  const loaded = async (id: string) => (await fetch(`${b.url}/v1/models/${id}`)).ok;
  for (let i = 0; i < 600 && !((await loaded(modelId)) && (await loaded(polyId))); i++) await new Promise((r) => setTimeout(r, 100));
});

after(async () => {
  await lb?.stop();
  for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await Promise.all([pg?.stop(), redis?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** Open Paillier sessions on a replica now. */
async function paillierSessions(r: Replica): Promise<number> {
  const health = (await (await fetch(`${r.url}/healthz`)).json()) as { sessionsByScheme: { paillier: number } };
  return health.sessionsByScheme.paillier;
}

test('a model uploaded through replica a, 20 clients through HAProxy: 0 failures, 100% agreement with plaintext; replica a killed mid-run, its clients fail over', { skip }, async () => {
  const record = (await (await fetch(`${b.url}/v1/models/${modelId}`)).json()) as { id?: string };
  assert.equal(record.id, modelId, 'replica b serves the model uploaded through a');

  const clients: BlindmlClient[] = await Promise.all(
    Array.from({ length: CLIENTS }, () => connect(lb!.url, { transport: 'http', keys: generateKeyPair({ bits: 512, insecure: true }) })),
  );
  const labels: number[] = new Array<number>(CLIENTS * PER_CLIENT).fill(-1);
  const failures: string[] = [];
  let done = 0;
  const runs = clients.map(async (client, c) => {
    for (let i = 0; i < PER_CLIENT; i++) {
      const k = c * PER_CLIENT + i;
      try {
        const r = await client.predict(modelId, sample.images.subarray(k * 784, (k + 1) * 784));
        labels[k] = r.label;
        r.logits.forEach((v, j) => assert.ok(Math.abs(v - plain[k * 10 + j]!) < PAILLIER_LOGIT_TOLERANCE, `image ${k} logit ${j}: ${v} vs ${plain[k * 10 + j]}`));
      } catch (err) {
        failures.push(`client ${c} image ${k}: ${err instanceof Error ? `${err.name} ${err.message}` : String(err)}`);
      }
      done++;
    }
  });

  // Kill replica a (SIGKILL: no drain) while it holds sessions half done.
  let killedWith = 0;
  while (done < CLIENTS * PER_CLIENT) {
    killedWith = await paillierSessions(a).catch(() => 0);
    if (killedWith > 0 && done >= 4) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  a.child.kill('SIGKILL');
  await Promise.all(runs);
  for (const c of clients) c.close();

  assert.deepEqual(failures, [], lb!.log().slice(-3000));
  assert.equal(labels.filter((l, k) => l === plainLabels[k]).length, CLIENTS * PER_CLIENT, '100% agreement with plaintext');
  assert.ok(killedWith > 0, 'replica a held sessions when it was killed');
  const moved = clients.reduce((n, c) => n + c.failovers, 0);
  assert.ok(moved >= 1, 'the clients of the killed replica moved their sessions');
  assert.ok(moved <= CLIENTS, `each client moved at most once or so (${moved})`);
  assert.equal(await a.exit, null, 'replica a was killed');
});

/** Starts `blindml worker`; its job lock lapses 3 s after it dies, so another takes the job over soon. */
function startWorker(): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, 'worker', '--redis', redis!.url, '--threads', '1', '--lock-ms', '3000', '--stalled-check-ms', '1000'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  processes.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  return { child, stderr: () => stderr };
}

test('a ckks-poly job through HAProxy: its worker killed mid-job, the other worker completes it with the plaintext predictions; the last replica drains on SIGTERM', { skip }, async () => {
  const queue = new Queue(POLY_QUEUE, { connection: { host: '127.0.0.1', port: redis!.port }, prefix: BULL_PREFIX });
  try {
    // The first worker alone takes the job; the second starts once the job is running on the first.
    const first = startWorker();
    const client = await connectCkksPoly(lb!.url, polyId);
    try {
      const prediction = client.predict(polyImages);
      let settled = false;
      prediction.then(() => (settled = true), () => (settled = true));
      while (!settled && (await queue.getActiveCount()) === 0) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!settled, 'the job was running on the first worker');
      const second = startWorker();
      first.child.kill('SIGKILL');
      const { labels, logits } = await prediction;
      assert.deepEqual(Array.from(labels), Array.from(argmaxRows(plainPoly, 10)), 'the same predictions as plaintext');
      logits.forEach((v, i) => assert.ok(Math.abs(v - plainPoly[i]!) < 0.05, `logit ${i}: ${v} vs ${plainPoly[i]}`));
      assert.doesNotMatch(first.stderr(), /job \S+ done/, 'the killed worker never finished it');
      assert.match(second.stderr(), /job \S+ done \(8 images\)/, 'the other worker did');
    } finally {
      client.dispose();
    }
  } finally {
    await queue.close();
  }

  // The surviving replica drains on SIGTERM and exits 0.
  b.child.kill('SIGTERM');
  assert.equal(await b.exit, 0, b.stderr());
  assert.match(b.stderr(), /SIGTERM: finishing running sessions for up to 5 s, refusing new ones/);
});
