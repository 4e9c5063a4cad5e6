/**
 * Throughput through a running blindml server, client included (keys, encryption, the client's
 * rounds and decryption all run in this process; the server is another process on the same
 * machine): sessions per minute and predictions per hour for every inference mode.
 *
 * - Paillier, latency mode: `clients` SDK clients, one image per session, back to back.
 * - Paillier, batch mode: the same clients, as many images per ciphertext as the service grants.
 * - CKKS interactive over WebSocket: `clients` clients on the default model, one image per session.
 * - ckks-poly: one client uploads full batches (N/2 images per ciphertext) as jobs, two in flight;
 *   then the same batches in this process without the server (two worker threads), for comparison
 *   at the same machine load.
 *
 * Each timed phase runs sessions until `seconds` have passed, then lets the ones in flight finish;
 * the rate is completed work over the elapsed time. Key generation and key upload are one-time
 * costs per client, reported apart. Every prediction is checked against the plaintext model.
 *
 * `npm run bench:service` runs it after its reliability checks; on its own,
 * `node --import tsx bench/service-throughput.ts [--seconds S] [--clients N] [--poly-batches N]
 * [--modes paillier,ckks,ckks-poly,ckks-poly-local] [--ckks-model fashion-reference] [--key-bits N]` starts a server process and prints the table.
 *
 * @module
 */
import { spawnServe } from './serve-process.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, connectCkksPoly, registerModel, WebSocketCkksTransport } from '../src/client/index.js';
import { loadFashionMnistSample } from '../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../src/nn/index.js';
import { CkksInferenceClient } from '../src/protocol/ckks-inference/index.js';
import { runCkksPolyJob } from '../src/cli/ckks-poly-job.js';
import { loadModel } from '../src/cli/inference-job.js';
import { generateKeyPair } from '../src/schemes/paillier/keys.js';

/** One mode's figures. */
export interface ThroughputRow {
  mode: string;
  model: string;
  clients: number;
  /** Images per session (Paillier batch: per ciphertext; ckks-poly: per job). */
  imagesPerSession: number;
  sessions: number;
  predictions: number;
  seconds: number;
  sessionsPerMinute: number;
  predictionsPerHour: number;
  /** Predictions that differ from the plaintext model's. */
  disagreements: number;
  /** One-time set-up per client (keys made and uploaded), seconds. */
  setupSeconds: number;
}

export interface ThroughputOptions {
  url: string;
  apiKey: string;
  root: string;
  /** Timed seconds per mode (sessions in flight at the end still finish). */
  seconds: number;
  /** Concurrent clients for the interactive modes. */
  clients: number;
  keyBits: number;
  insecure: boolean;
  /** Full ckks-poly batches to run (two in flight). */
  polyBatches: number;
  log: (line: string) => void;
}

/** Runs `session` on each of `clients` lanes until `seconds` pass; returns completions and elapsed time. */
async function timed(clients: number, seconds: number, session: (lane: number, k: number) => Promise<number>): Promise<{ sessions: number; predictions: number; seconds: number }> {
  const started = performance.now();
  let sessions = 0;
  let predictions = 0;
  let k = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, lane) => {
      while (performance.now() - started < seconds * 1000) {
        const done = await session(lane, k++); // (not `predictions += await …`: that reads the total before the await)
        predictions += done;
        sessions++;
      }
    }),
  );
  return { sessions, predictions, seconds: (performance.now() - started) / 1000 };
}

function row(mode: string, model: string, clients: number, imagesPerSession: number, r: { sessions: number; predictions: number; seconds: number }, disagreements: number, setupSeconds: number): ThroughputRow {
  return {
    mode,
    model,
    clients,
    imagesPerSession,
    ...r,
    sessionsPerMinute: (60 * r.sessions) / r.seconds,
    predictionsPerHour: (3600 * r.predictions) / r.seconds,
    disagreements,
    setupSeconds,
  };
}

/** Paillier latency and batch mode on the default model. */
export async function paillierThroughput(o: ThroughputOptions, modelId: string): Promise<ThroughputRow[]> {
  const sample = loadFashionMnistSample();
  const plain = argmaxRows(runPlaintext(importOnnx(readFileSync(join(o.root, 'models', 'fashion-small.onnx'))), sample.images), 10);
  const setupStart = performance.now();
  const clients = await Promise.all(Array.from({ length: o.clients }, () => connect(o.url, { keys: generateKeyPair({ bits: o.keyBits, insecure: o.insecure, primes: 3 }), insecure: o.insecure })));
  const setupSeconds = (performance.now() - setupStart) / 1000 / o.clients;
  const rows: ThroughputRow[] = [];
  try {
    let disagreements = 0;
    const latency = await timed(o.clients, o.seconds, async (lane, k) => {
      const i = k % sample.count;
      const r = await clients[lane]!.predict(modelId, sample.images.subarray(i * 784, (i + 1) * 784));
      if (r.label !== plain[i]) disagreements++;
      return 1;
    });
    rows.push(row('Paillier, latency mode (WebSocket)', 'fashion-small', o.clients, 1, latency, disagreements, setupSeconds));
    o.log(`Paillier latency: ${latency.sessions} sessions in ${latency.seconds.toFixed(1)} s`);

    disagreements = 0;
    // One image first, untimed: the service's grant (images per ciphertext) sizes every session after.
    const granted = (await clients[0]!.predictBatch(modelId, sample.images.subarray(0, 784), { batch: 4096 })).stats.batch;
    const batch = await timed(o.clients, o.seconds, async (lane, k) => {
      const first = (k * granted) % (sample.count - granted + 1);
      const r = await clients[lane]!.predictBatch(modelId, sample.images.subarray(first * 784, (first + granted) * 784), { batch: granted });
      r.labels.forEach((label, j) => (disagreements += label === plain[first + j] ? 0 : 1));
      return r.labels.length;
    });
    rows.push(row('Paillier, batch mode (WebSocket)', 'fashion-small', o.clients, granted, batch, disagreements, setupSeconds));
    o.log(`Paillier batch (${granted} per ciphertext): ${batch.predictions} images in ${batch.seconds.toFixed(1)} s`);
  } finally {
    for (const c of clients) c.close();
  }
  return rows;
}

/** Interactive CKKS over WebSocket on a registered model (`name`: its file in models/, default the default model). */
export async function ckksThroughput(o: ThroughputOptions, modelId: string, name = 'fashion-small'): Promise<ThroughputRow> {
  const sample = loadFashionMnistSample();
  const plain = argmaxRows(runPlaintext(importOnnx(readFileSync(join(o.root, 'models', `${name}.onnx`))), sample.images), 10);
  const setupStart = performance.now();
  const lanes = await Promise.all(
    Array.from({ length: o.clients }, async () => {
      const transport = await WebSocketCkksTransport.connect(o.url, modelId);
      return { transport, client: await CkksInferenceClient.connect(transport) };
    }),
  );
  const setupSeconds = (performance.now() - setupStart) / 1000 / o.clients;
  try {
    let disagreements = 0;
    const r = await timed(o.clients, o.seconds, async (lane, k) => {
      const i = k % sample.count;
      const { logits } = await lanes[lane]!.client.predict(sample.images.subarray(i * 784, (i + 1) * 784));
      if (argmaxRows(logits, 10)[0] !== plain[i]) disagreements++;
      return 1;
    });
    o.log(`CKKS interactive: ${r.sessions} sessions in ${r.seconds.toFixed(1)} s`);
    return row('CKKS interactive (WebSocket)', name, o.clients, 1, r, disagreements, setupSeconds);
  } finally {
    for (const l of lanes) {
      l.client.dispose();
      l.transport.close();
    }
  }
}

/** ckks-poly batch jobs on the polynomial network: full batches, two in flight. */
export async function ckksPolyThroughput(o: ThroughputOptions): Promise<ThroughputRow> {
  const onnx = readFileSync(join(o.root, 'models', 'fashion-poly.onnx'));
  const { model } = await registerModel(o.url, o.apiKey, onnx, { name: 'fashion-poly' });
  const setupStart = performance.now();
  const client = await connectCkksPoly(o.url, model.id);
  const setupSeconds = (performance.now() - setupStart) / 1000;
  try {
    const sample = loadFashionMnistSample();
    const images = o.polyBatches * client.slots;
    // The 1,000 sample images tiled to fill the batches.
    const tiled = new Float32Array(images * 784);
    for (let i = 0; i < images; i++) tiled.set(sample.images.subarray((i % sample.count) * 784, ((i % sample.count) + 1) * 784), i * 784);
    const plain = argmaxRows(runPlaintext(importOnnx(onnx), sample.images), 10);
    const started = performance.now();
    const r = await client.predict(tiled, undefined, { concurrency: 2 });
    const seconds = (performance.now() - started) / 1000;
    let disagreements = 0;
    r.labels.forEach((label, i) => (disagreements += label === plain[i % sample.count] ? 0 : 1));
    o.log(`ckks-poly: ${images} images in ${r.stats.batches} jobs, ${seconds.toFixed(1)} s`);
    return row('ckks-poly batch jobs (HTTP)', 'fashion-poly', 1, client.slots, { sessions: r.stats.batches, predictions: images, seconds }, disagreements, setupSeconds);
  } finally {
    client.dispose();
  }
}

/** The same ckks-poly batches in this process, without the server, for comparison at the same machine load. */
export async function ckksPolyInProcess(o: ThroughputOptions): Promise<ThroughputRow> {
  const path = join(o.root, 'models', 'fashion-poly.onnx');
  const sample = loadFashionMnistSample();
  const images = o.polyBatches * 4096;
  const tiled = new Float32Array(images * 784);
  const labels = new Uint8Array(images);
  for (let i = 0; i < images; i++) {
    tiled.set(sample.images.subarray((i % sample.count) * 784, ((i % sample.count) + 1) * 784), i * 784);
    labels[i] = sample.labels[i % sample.count]!;
  }
  const r = await runCkksPolyJob({ loaded: loadModel(path), data: { ...sample, count: images, images: tiled, labels }, calibration: sample.images.subarray(900 * 784), workers: 2 });
  const seconds = (r.msPerSample * images) / 1000;
  o.log(`ckks-poly in process: ${images} images, ${seconds.toFixed(1)} s`);
  const disagreements = Math.round((1 - r.agreement) * images);
  return row('ckks-poly in process, no server (same batches)', 'fashion-poly', 1, r.batch, { sessions: o.polyBatches, predictions: images, seconds }, disagreements, (r.offlineMsPerSample * images) / 1000);
}

/** Every mode, one after another on the same server (and ckks-poly in process for comparison). */
export async function measureThroughput(o: ThroughputOptions, modelId: string): Promise<ThroughputRow[]> {
  return [...(await paillierThroughput(o, modelId)), await ckksThroughput(o, modelId), await ckksPolyThroughput(o), await ckksPolyInProcess(o)];
}

/** The rows as a Markdown table. */
export function throughputTable(rows: readonly ThroughputRow[]): string {
  const n = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  return [
    '| mode | model | clients | images per session | sessions / min | predictions / hour | disagreements | set-up per client |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.mode} | ${r.model} | ${r.clients} | ${n(r.imagesPerSession)} | ${n(r.sessionsPerMinute, 1)} | ${n(r.predictionsPerHour)} | ${r.disagreements} of ${n(r.predictions)} | ${n(r.setupSeconds, 1)} s |`),
  ].join('\n');
}

/** Starts `blindml serve` in its own process on a fresh database; resolves with its URL and a stop function. */
async function serveProcess(root: string, apiKey: string, insecure: boolean): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-throughput-'));
  const { proc, url, exited } = await spawnServe(root, ['--db', join(dir, 'r.db'), '--api-key', apiKey, ...(insecure ? ['--insecure'] : [])]);
  return {
    url,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values: args } = parseArgs({
    options: {
      seconds: { type: 'string', default: '30' },
      clients: { type: 'string', default: '2' },
      'poly-batches': { type: 'string', default: '2' },
      'key-bits': { type: 'string', default: '2048' },
      modes: { type: 'string', default: 'paillier,ckks,ckks-poly,ckks-poly-local' },
      'ckks-model': { type: 'string', default: 'fashion-small' },
    },
  });
  const root = fileURLToPath(new URL('../', import.meta.url));
  const keyBits = Number(args['key-bits']);
  const apiKey = 'throughput-owner-key';
  const server = await serveProcess(root, apiKey, keyBits < 2048);
  try {
    const { model } = await registerModel(server.url, apiKey, readFileSync(join(root, 'models', 'fashion-small.onnx')), { name: 'fashion-small' });
    const o: ThroughputOptions = {
      url: server.url, apiKey, root, seconds: Number(args.seconds), clients: Number(args.clients), keyBits, insecure: keyBits < 2048,
      polyBatches: Number(args['poly-batches']), log: (line) => process.stderr.write(`${line}\n`),
    };
    const modes = new Set(args.modes.split(','));
    const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const before = load();
    const rows = [
      ...(modes.has('paillier') ? await paillierThroughput(o, model.id) : []),
      ...(modes.has('ckks') ? [await ckksThroughput(o, args['ckks-model'] === 'fashion-small' ? model.id : (await registerModel(server.url, apiKey, readFileSync(join(root, 'models', `${args['ckks-model']}.onnx`)))).model.id, args['ckks-model'])] : []),
      ...(modes.has('ckks-poly') ? [await ckksPolyThroughput(o)] : []),
      ...(modes.has('ckks-poly-local') ? [await ckksPolyInProcess(o)] : []),
    ];
    process.stdout.write(`load average ${before} before, ${load()} after\n\n${throughputTable(rows)}\n`);
  } finally {
    await server.stop();
  }
}
