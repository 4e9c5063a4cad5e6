// ckks-poly batch jobs on Redis + BullMQ (`serve --redis`, `blindml worker`), against a real
// redis-server: a job decrypts to the plaintext predictions; a session and a job opened through one
// replica are served by another; limits are counted in Redis; bad input fails once with its typed
// error; an unfetched result expires with every key of its job; and a worker killed with SIGKILL
// mid-job loses nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../../src/nn/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { HttpPolyTransport, connectCkksPoly, registerModel } from '../../src/client/index.js';
import { CkksPolyClient, decodePolyMessage, encodePolyMessage, type PolyTransport } from '../../src/protocol/ckks-poly/index.js';
import { startPolyWorker, type PolyWorker } from '../../src/server/jobs/worker.js';
import { BULL_PREFIX, POLY_QUEUE, jobDoneKey, jobResultKey, type PolyJobData } from '../../src/server/jobs/redis-store.js';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { tinyPolyOnnx } from '../helpers/poly-model.js';

const skip = redisSkipReason();
const onnx = tinyPolyOnnx();
const sample = loadFashionMnistSample({ limit: 3 });
const plain = runPlaintext(importOnnx(onnx), sample.images);
const API_KEY = 'redis-owner-key';
const RESULT_TTL_MS = 2_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ckks-poly jobs on Redis + BullMQ', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-poly-redis-'));
  let redis: TestRedis;
  let db: Redis;
  let queue: Queue;
  let a: BlindmlServer;
  let b: BlindmlServer;
  let modelId: string;
  let client: CkksPolyClient;
  let worker: PolyWorker | undefined;
  /** An `infer` message of `client` (its session, its ciphertexts), replayed as raw jobs. */
  let infer: Uint8Array;

  before(async () => {
    redis = await startRedis();
    db = new Redis(redis.url);
    queue = new Queue(POLY_QUEUE, { connection: db, prefix: BULL_PREFIX });
    const common = { apiKey: API_KEY, port: 0, workers: 0, logger: false, redis: redis.url, redisJobs: { pollIntervalMs: 50 } } as const;
    a = await startServer({ ...common, db: join(dir, 'a.db'), ckksPoly: { jobsPerClient: 1, resultTtlMs: RESULT_TTL_MS } });
    // Replica B: its own registry, the same Redis; it lets one address run more jobs but holds one in all.
    b = await startServer({ ...common, db: join(dir, 'b.db'), ckksPoly: { jobsPerClient: 5, jobs: 1, resultTtlMs: RESULT_TTL_MS } });
    modelId = (await registerModel(a.url, API_KEY, onnx)).model.id;
    assert.equal((await registerModel(b.url, API_KEY, onnx)).model.id, modelId);
  });
  after(async () => {
    client?.dispose();
    await worker?.close();
    await a?.close(0);
    await b?.close(0);
    await queue?.close();
    db?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const postJob = (server: BlindmlServer, body: Uint8Array) =>
    fetch(`${server.url}/v1/ckks-poly/${modelId}/jobs`, { method: 'POST', body: body as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
  const poll = (server: BlindmlServer, job: string, wait = 0) => fetch(`${server.url}/v1/ckks-poly/jobs/${job}?wait=${wait}`);
  /** Posts a job and returns its id (asserting the 202). */
  async function submit(server: BlindmlServer, body: Uint8Array): Promise<string> {
    const res = await postJob(server, body);
    const reply = (await res.json()) as { job: string; error?: string };
    assert.equal(res.status, 202, JSON.stringify(reply));
    return reply.job;
  }
  /** Waits until BullMQ's job `id` is in `state`. */
  async function jobState(id: string, state: string): Promise<void> {
    for (let i = 0; i < 600 && (await (await queue.getJob(id))?.getState()) !== state; i++) await sleep(50);
    assert.equal(await (await queue.getJob(id))?.getState(), state);
  }

  test('a job through serve --redis and a worker is queued, reports progress and decrypts to the plaintext predictions', async () => {
    const events = new QueueEvents(POLY_QUEUE, { connection: { host: '127.0.0.1', port: redis.port }, prefix: BULL_PREFIX });
    await events.waitUntilReady();
    const progress: number[] = [];
    events.on('progress', ({ data }) => void (typeof data === 'number' && progress.push(data)));
    const seen: unknown[] = [];
    const http = new HttpPolyTransport(a.url, modelId);
    // The infer message is posted as a job while no worker runs, then a worker is started.
    const transport: PolyTransport = {
      async send(bytes) {
        if (decodePolyMessage(bytes).type !== 'infer') return http.send(bytes);
        infer = bytes.slice();
        const job = await submit(a, bytes);
        seen.push(await (await poll(a, job)).json());
        worker = await startPolyWorker({ redis: redis.url, threads: 1 });
        for (;;) {
          const res = await poll(a, job, 10_000);
          if (res.status !== 202) return new Uint8Array(await res.arrayBuffer());
          seen.push(await res.json());
        }
      },
    };
    client = await CkksPolyClient.connect(transport, modelId);
    const { logits, labels } = await client.predict(sample.images).finally(() => events.close());
    logits.forEach((v, i) => assert.ok(Math.abs(v - plain[i]!) < 0.05, `logit ${i}: ${v} vs ${plain[i]}`));
    assert.equal(labels.length, 3);
    assert.deepEqual(seen[0], { job: (seen[0] as { job: string }).job, status: 'queued' }, 'no worker yet: the job waits in the queue');
    for (const s of seen.slice(1)) assert.match((s as { status: string }).status, /^(queued|running)$/);
    assert.ok(progress.length > 0 && progress.every((p) => p > 0 && p <= 1), `progress events: ${progress.join(', ')}`);
    assert.equal(worker!.processed(), 1);
  });

  test('keys uploaded through one replica serve jobs through another; limits are counted in Redis; any replica answers a poll', async () => {
    const first = await submit(b, infer); // session opened through A, job posted to B
    const perClient = await postJob(a, infer);
    assert.deepEqual([perClient.status, ((await perClient.json()) as { error: string }).error], [429, 'ERR_TOO_MANY_JOBS'], "A counts B's job against the address");
    const global = await postJob(b, infer);
    assert.deepEqual([global.status, global.headers.get('retry-after'), ((await global.json()) as { error: string }).error], [503, '5', 'ERR_BUSY'], 'B holds one job in all');
    const done = await poll(a, first, 20_000);
    assert.equal(done.status, 200, 'a job posted to B is fetched through A');
    assert.equal(decodePolyMessage(new Uint8Array(await done.arrayBuffer())).type, 'result');
    assert.equal((await poll(b, first)).status, 404, 'and only once');
    const health = (await (await fetch(`${a.url}/healthz`)).json()) as { sessionsByScheme: Record<string, number> };
    assert.ok(health.sessionsByScheme['ckks-poly']! >= 1, JSON.stringify(health));
  });

  test('a job on bad input fails once with its typed error, answered as a 4xx', async () => {
    // Another client's session: the ciphertexts are under a key the session does not hold.
    let session = '';
    const http = new HttpPolyTransport(a.url, modelId);
    const other = await CkksPolyClient.connect({ send: async (bytes) => {
      const out = await http.send(bytes);
      const reply = decodePolyMessage(out);
      if (reply.type === 'session') session = reply.session;
      return out;
    } }, modelId);
    try {
      const msg = decodePolyMessage(infer);
      const foreign = encodePolyMessage({ ...msg, session } as typeof msg);
      const before = worker!.processed();
      const id = await submit(a, foreign);
      await jobState(id, 'failed');
      const job = await queue.getJob(id);
      assert.equal(job?.attemptsMade, 1, 'not retried');
      const res = await poll(a, id);
      const body = (await res.json()) as { error: string };
      assert.deepEqual([res.status, body.error], [400, 'ERR_KEY_MISMATCH']);
      assert.equal(worker!.processed(), before + 1);
      assert.equal(await queue.getJob(id), undefined, 'the failed job is gone once its error is fetched');
    } finally {
      other.dispose();
    }
  });

  test('an unfetched result expires, and every Redis key of its job with it; its place is free again', async () => {
    const id = await submit(a, infer);
    for (let i = 0; i < 400 && !(await db.exists(jobResultKey(id))); i++) await sleep(50);
    assert.equal(await db.exists(jobResultKey(id)), 1, 'the worker stored the result');
    assert.deepEqual((await db.keys(`*${id}*`)).sort(), [jobDoneKey(id), jobResultKey(id)], 'inputs and the BullMQ job are gone once it completed');
    await sleep(RESULT_TTL_MS + 200);
    assert.deepEqual(await db.keys(`*${id}*`), [], 'nothing of the job is left in Redis');
    assert.equal((await poll(a, id)).status, 404);
    const next = await submit(a, infer);
    assert.equal((await poll(a, next, 20_000)).status, 200);
  });

  test('a job that runs again after its reply was stored (its lock lost) neither computes again nor replaces the reply', async () => {
    const id = await submit(a, infer);
    for (let i = 0; i < 400 && !(await db.exists(jobResultKey(id))); i++) await sleep(50);
    const stored = await db.hgetBuffer(jobResultKey(id), 'reply');
    assert.ok(stored, 'the worker stored the result');
    for (let i = 0; i < 400 && (await queue.getJob(id)); i++) await sleep(50);
    assert.equal(await queue.getJob(id), undefined, 'the first run completed and BullMQ dropped it');
    const before = worker!.processed();
    // What BullMQ does when a worker's lock lapsed: the same job id is taken again, its inputs gone.
    const data: PolyJobData = { ip: '127.0.0.1', modelId, source: 'not-needed', resultTtlMs: RESULT_TTL_MS };
    await queue.add('infer', data, { jobId: id, removeOnComplete: false, removeOnFail: false });
    await jobState(id, 'completed');
    assert.equal(worker!.processed(), before, 'nothing was computed or stored again');
    assert.deepEqual(await db.hgetBuffer(jobResultKey(id), 'reply'), stored, 'the stored reply is the one the first run stored');
    await (await queue.getJob(id))?.remove();
    const res = await poll(a, id);
    assert.equal(res.status, 200);
    assert.equal(decodePolyMessage(new Uint8Array(await res.arrayBuffer())).type, 'result');
  });

  test('a blindml worker killed with SIGKILL mid-job: the job completes on another worker with the same predictions', async () => {
    await worker!.close();
    worker = undefined;
    const killed = await spawnWorker(redis.url, ['--lock-ms', '1500', '--stalled-check-ms', '500']);
    const fresh = await connectCkksPoly(a.url, modelId);
    try {
      const predicted = fresh.predict(sample.images);
      let active: string | undefined;
      for (let i = 0; i < 600 && !active; i++) {
        active = (await queue.getActive())[0]?.id;
        if (!active) await sleep(50);
      }
      assert.ok(active, 'the worker process took the job');
      killed.kill('SIGKILL');
      await new Promise((r) => killed.once('exit', r));
      worker = await startPolyWorker({ redis: redis.url, threads: 1, stalledIntervalMs: 300 });
      const { logits } = await predicted;
      logits.forEach((v, i) => assert.ok(Math.abs(v - plain[i]!) < 0.05, `logit ${i}: ${v} vs ${plain[i]}`));
      assert.equal(worker.processed(), 1, 'the job ran again on the other worker');
    } finally {
      killed.kill('SIGKILL');
      fresh.dispose();
    }
  });

  test('a blindml worker given SIGTERM finishes its running job, then exits', async () => {
    await worker!.close();
    worker = undefined;
    const child = await spawnWorker(redis.url, []);
    try {
      const id = await submit(a, infer);
      await jobState(id, 'active');
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(child.stderr(), /SIGTERM: finishing the running job[^\n]*\n[^]*stopped after 1 job\n/);
      const res = await poll(a, id);
      assert.equal(res.status, 200, 'the job was finished, not abandoned');
      assert.equal(decodePolyMessage(new Uint8Array(await res.arrayBuffer())).type, 'result');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** `blindml worker --redis url ...` from the sources, resolved once it says it takes jobs; `stderr()` is what it wrote so far. */
async function spawnWorker(url: string, args: readonly string[]): Promise<ChildProcess & { stderr(): string }> {
  const run = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), run, 'worker', '--redis', url, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('taking ckks-poly jobs')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`blindml worker exited (${code}): ${err}`)));
  });
  return Object.assign(child, { stderr: () => err });
}
