/**
 * `npm run bench:scale`: ckks-poly batch throughput with 1 and then 2 `blindml worker` processes
 * (one thread each) behind one `blindml serve --redis`, and what a prediction costs per scheme
 * (CPU-seconds and bytes), written to docs/benchmarks.md "Scale-out" with a model of the cores a
 * given rate needs.
 *
 *     node --import tsx bench/scale.ts [--batches 4] [--repeats 3] [--costs reference|small|none] [--no-write]
 *
 * The client's batches are encrypted before the measured window (its CPU is reported apart): the
 * window runs from the first upload to the last result, so it holds the front (upload, Redis), Redis
 * and the workers. Each worker count runs `--repeats` rounds of `--batches` full batches (4,096
 * images each) on the same worker processes; the first round of each includes the workers compiling
 * the model. Medians over the rounds.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerModel } from '../src/client/index.js';
import { HttpPolyTransport } from '../src/client/ckks-poly-transport.js';
import { writeAtomically } from '../src/cli/write-atomically.js';
import { loadFashionMnistSample } from '../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../src/nn/index.js';
import { CkksPolyClient, decodePolyMessage, type PolyTransport } from '../src/protocol/ckks-poly/index.js';
import { REFERENCE_QUANTIZATION, runInferBench, type InferCase } from '../src/bench/infer-bench.js';
import { machineDescription, median } from '../src/bench/stats.js';
import { startRedis } from '../test/helpers/redis.js';
import { spawnServe } from './serve-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOC = join(ROOT, 'docs/benchmarks.md');
const KEY = 'scale-bench-owner-key';
const BATCH = 4096;

interface Args {
  batches: number;
  repeats: number;
  costs: 'reference' | 'small' | 'none';
  write: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { batches: 4, repeats: 3, costs: 'reference', write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i] ?? '';
    if (a === '--batches') args.batches = Math.max(1, Number.parseInt(next(), 10) || 1);
    else if (a === '--repeats') args.repeats = Math.max(1, Number.parseInt(next(), 10) || 1);
    else if (a === '--costs') args.costs = next() as Args['costs'];
    else if (a === '--no-write') args.write = false;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!['reference', 'small', 'none'].includes(args.costs)) throw new Error('--costs takes reference, small or none');
  return args;
}

/** CPU seconds (user + system, all threads) a process has used so far (Linux /proc, 100 ticks/s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `blindml worker --redis url --threads 1 --quiet`, resolved once it takes jobs. */
async function spawnWorker(url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/run.ts'), 'worker', '--redis', url, '--threads', '1', '--quiet'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('taking ckks-poly jobs')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`blindml worker exited (${code}): ${err}`)));
  });
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Posts a job and waits for its reply (long polls). */
async function runJob(base: string, modelId: string, request: Uint8Array): Promise<Uint8Array> {
  const posted = await fetch(`${base}/v1/ckks-poly/${modelId}/jobs`, { method: 'POST', body: request as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
  const body = (await posted.json()) as { job?: string; error?: string; message?: string };
  if (posted.status !== 202 || !body.job) throw new Error(`job refused: ${posted.status} ${body.error} ${body.message}`);
  for (;;) {
    const res = await fetch(`${base}/v1/ckks-poly/jobs/${body.job}?wait=25000`);
    if (res.status === 202) {
      await res.body?.cancel();
      continue;
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`job failed: ${res.status} ${new TextDecoder().decode(bytes).slice(0, 200)}`);
    return bytes;
  }
}

interface Round {
  seconds: number;
  perHour: number;
  cpu: { workers: number; front: number; redis: number };
}

interface PolyCosts {
  images: number;
  agreement: number;
  clientCpuPerImage: number;
  bytesUp: number;
  bytesDown: number;
  keyBytes: number;
}

/** The ckks-poly part: encrypt once, then 1 and 2 workers × repeats rounds. */
async function scaleRuns(args: Args, log: (line: string) => void): Promise<{ rounds: Map<number, Round[]>; costs: PolyCosts }> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'blindml-scale-'));
  const cap = String(args.batches + 2);
  const serve = await spawnServe(ROOT, ['--db', join(dir, 'r.db'), '--redis', redis.url, '--threads', '0', '--api-key', KEY, '--max-jobs', cap, '--max-jobs-per-client', cap]);
  try {
    const onnx = readFileSync(join(ROOT, 'models/fashion-poly.onnx'));
    const modelId = (await registerModel(serve.url, KEY, onnx)).model.id;
    const sample = loadFashionMnistSample();
    const size = 784;
    const images = new Float32Array(args.batches * BATCH * size);
    for (let i = 0; i < args.batches * BATCH; i++) images.set(sample.images.subarray((i % sample.count) * size, (i % sample.count + 1) * size), i * size);
    const plain = runPlaintext(importOnnx(onnx), images.subarray(0, Math.min(sample.count, BATCH) * size));

    // Record the client's infer messages (all batches encrypted up front), answer them later.
    const http = new HttpPolyTransport(serve.url, modelId);
    const requests: Uint8Array[] = [];
    const answers: ((bytes: Uint8Array) => void)[] = [];
    let keyBytes = 0;
    const transport: PolyTransport = {
      send(bytes) {
        const type = decodePolyMessage(bytes).type;
        if (type === 'keys') keyBytes = bytes.length;
        if (type !== 'infer') return http.send(bytes);
        requests.push(bytes);
        return new Promise((resolve) => answers.push(resolve));
      },
    };
    const client = await CkksPolyClient.connect(transport, modelId);
    const cpu0 = process.cpuUsage();
    const predicted = client.predict(images, undefined, { concurrency: args.batches });
    while (requests.length < args.batches) await new Promise((r) => setTimeout(r, 50));
    const encryptCpu = process.cpuUsage(cpu0);
    log(`encrypted ${args.batches} batches (${(requests[0]!.length / 2 ** 20).toFixed(0)} MiB each)`);

    const rounds = new Map<number, Round[]>();
    let replies: Uint8Array[] = [];
    for (const workers of [1, 2]) {
      const procs = await Promise.all(Array.from({ length: workers }, () => spawnWorker(redis.url)));
      const list: Round[] = [];
      for (let r = 0; r < args.repeats; r++) {
        const pids = procs.map((p) => p.pid!);
        const before = { workers: pids.reduce((a, p) => a + cpuSeconds(p), 0), front: cpuSeconds(serve.proc.pid!), redis: cpuSeconds(redis.pid) };
        const t0 = performance.now();
        replies = await Promise.all(requests.map((req) => runJob(serve.url, modelId, req)));
        const seconds = (performance.now() - t0) / 1000;
        const cpu = { workers: pids.reduce((a, p) => a + cpuSeconds(p), 0) - before.workers, front: cpuSeconds(serve.proc.pid!) - before.front, redis: cpuSeconds(redis.pid) - before.redis };
        list.push({ seconds, perHour: (args.batches * BATCH * 3600) / seconds, cpu });
        log(`${workers} worker(s), round ${r + 1}: ${seconds.toFixed(1)} s, ${Math.round((args.batches * BATCH * 3600) / seconds).toLocaleString('en-US')} predictions/hour, load ${loadavg()[0]!.toFixed(1)}`);
      }
      rounds.set(workers, list);
      await Promise.all(procs.map(stopWorker));
    }
    // The last round's replies go to the client, which decrypts them (outside the window).
    const cpu1 = process.cpuUsage();
    replies.forEach((bytes, i) => answers[i]!(bytes));
    const { labels } = await predicted;
    const decryptCpu = process.cpuUsage(cpu1);
    client.dispose();
    const plainLabels = Array.from({ length: plain.length / 10 }, (_, i) => {
      const row = plain.subarray(i * 10, i * 10 + 10);
      return row.indexOf(Math.max(...row));
    });
    const agreement = plainLabels.filter((l, i) => labels[i] === l).length / plainLabels.length;
    const clientCpu = (encryptCpu.user + encryptCpu.system + decryptCpu.user + decryptCpu.system) / 1e6;
    const n = args.batches * BATCH;
    return {
      rounds,
      costs: {
        images: n,
        agreement,
        clientCpuPerImage: clientCpu / n,
        bytesUp: requests.reduce((a, r) => a + r.length, 0) / n,
        bytesDown: replies.reduce((a, r) => a + r.length, 0) / n,
        keyBytes,
      },
    };
  } finally {
    serve.proc.kill('SIGTERM');
    await serve.exited;
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CostRow {
  scheme: string;
  model: string;
  images: number;
  serviceCpu: number;
  clientCpu: number;
  bytes: string;
  note: string;
}

/** Paillier latency, Paillier batch and interactive CKKS, in process (service and client CPU apart). */
async function inProcessCosts(which: Args['costs']): Promise<CostRow[]> {
  if (which === 'none') return [];
  const model = which === 'reference' ? 'fashion-reference.onnx' : 'fashion-small.onnx';
  const cases: InferCase[] =
    which === 'reference'
      ? [
          { model, batch: 1, images: 1 },
          { model, batch: 64, images: 31, quantization: REFERENCE_QUANTIZATION },
          { model, batch: 1, images: 2, scheme: 'ckks' },
        ]
      : [
          { model, batch: 1, images: 2 },
          { model, batch: 64, images: 35 },
          { model, batch: 1, images: 3, scheme: 'ckks' },
        ];
  const bench = await runInferBench(cases, 2048);
  return bench.rows.map(({ images, scheme, batch, result: r }) => ({
    scheme: scheme === 'ckks' ? 'CKKS interactive (prepared sessions)' : batch > 1 ? `Paillier batch (${r.batch} images per ciphertext)` : 'Paillier latency',
    model: model.replace('.onnx', ''),
    images,
    serviceCpu: (r.cpu?.serviceMs ?? r.serviceMsPerSample) / 1000,
    clientCpu: (r.cpu?.clientMs ?? r.clientMsPerSample) / 1000,
    bytes: `${kib(r.bytesPerSample)} (up + down)`,
    note: `${r.rounds} rounds, agreement ${(100 * r.agreement).toFixed(0)}%${r.cpu ? '' : ', wall time (no CPU split)'}`,
  }));
}

const kib = (bytes: number) => `${(bytes / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} KiB`;
const fmt = (v: number, digits = 3) => v.toLocaleString('en-US', { maximumSignificantDigits: digits });

/** What the load average says about the figures: the benchmark's own processes only, or other work too. */
function loadNote(loads: number[]): string {
  const seen = loads.map((l) => l.toFixed(1)).join(' → ');
  // At the start nothing of the benchmark runs yet: a load below one core means nothing else did either.
  return (loads[0] ?? 0) < 1.5
    ? `Nothing else ran on the machine (load average ${seen}, start → end: the benchmark's own processes).`
    : `**Other work ran on the machine meanwhile (load average ${seen}, start → end)**, so the absolute rates are below what the same cores give otherwise, and the ratio is what that load left to the second worker; rerun on an idle machine for the real figures.`;
}

function section(args: Args, machine: string, loads: number[], date: string, rounds: Map<number, Round[]>, poly: PolyCosts, others: CostRow[]): string {
  const med = (w: number, f: (r: Round) => number) => median(rounds.get(w)!.map(f));
  const one = med(1, (r) => r.perHour);
  const two = med(2, (r) => r.perHour);
  const polyService = med(1, (r) => r.cpu.workers + r.cpu.front + r.cpu.redis) / poly.images;
  const rows: CostRow[] = [
    {
      scheme: 'ckks-poly batch jobs (serve --redis + worker)',
      model: 'fashion-poly',
      images: poly.images,
      serviceCpu: polyService,
      clientCpu: poly.clientCpuPerImage,
      bytes: `${kib(poly.bytesUp)} up, ${kib(poly.bytesDown)} down`,
      note: `full batches of 4,096; keys ${(poly.keyBytes / 2 ** 20).toFixed(1)} MiB once per client; agreement ${(100 * poly.agreement).toFixed(1)}%`,
    },
    ...others,
  ];
  const cores = (cpu: number, perHour: number) => fmt((cpu * perHour) / 3600, 2);
  const lines = [
    '## Scale-out',
    '',
    `\`node --import tsx bench/scale.ts --batches ${args.batches} --repeats ${args.repeats} --costs ${args.costs}\` (\`npm run bench:scale\` runs \`--batches 4 --repeats 3 --costs reference\`).`,
    `${machine}, ${date}. ${loadNote(loads)}`,
    '',
    `ckks-poly throughput: one \`blindml serve --redis\` (front: uploads go to Redis, polls read from it), one redis-server, and 1 then 2 \`blindml worker --threads 1\` processes. The client encrypted its ${args.batches} full batches (${fmt(args.batches * BATCH, 6)} images) **before** the measured window, which runs from the first upload to the last result; its CPU is in the cost table. ${args.repeats} round(s) per worker count on the same worker processes (the first round includes each worker compiling the model); medians.`,
    '',
    '| workers | rounds | wall time per round (median) | predictions / hour (median) | CPU-s in the window: workers + front + Redis (median) |',
    '|---:|---:|---:|---:|---:|',
    ...[1, 2].map((w) => `| ${w} | ${rounds.get(w)!.length} | ${med(w, (r) => r.seconds).toFixed(1)} s | ${Math.round(med(w, (r) => r.perHour)).toLocaleString('en-US')} | ${med(w, (r) => r.cpu.workers).toFixed(1)} + ${med(w, (r) => r.cpu.front).toFixed(1)} + ${med(w, (r) => r.cpu.redis).toFixed(1)} |`),
    '',
    `**2 workers / 1 worker: ${(two / one).toFixed(2)}×** (target ≥ 1.7 on an idle 2-core machine: each batch is independent, so the second worker adds a core's worth when one is free).`,
    '',
    '**Cost per prediction** (CPU-seconds of every process and thread; service = what the operator runs, client = what each user runs; the in-process rows run service and client in one process and split their CPU):',
    '',
    '| scheme | model | predictions measured | service CPU-s / prediction | client CPU-s / prediction | bytes / prediction | notes |',
    '|---|---|---:|---:|---:|---|---|',
    ...rows.map((r) => `| ${r.scheme} | ${r.model} | ${fmt(r.images, 6)} | ${fmt(r.serviceCpu)} | ${fmt(r.clientCpu)} | ${r.bytes} | ${r.note} |`),
    '',
    '**Cores needed, on paper** (from the service CPU-seconds above: cores = predictions per hour × CPU-s per prediction ÷ 3,600, at full use; add headroom for peaks, the fronts and Redis are included only in the ckks-poly row):',
    '',
    '| scheme | model | 10,000 / hour | 100,000 / hour | 1,000,000 / hour |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scheme} | ${r.model} | ${cores(r.serviceCpu, 1e4)} | ${cores(r.serviceCpu, 1e5)} | ${cores(r.serviceCpu, 1e6)} |`),
    '',
    'ckks-poly scales by adding `blindml worker` processes (one core each, any machine that reaches Redis); interactive sessions scale by adding `blindml serve` replicas behind the balancer. A ckks-poly job always costs a full batch: fewer images per job cost the same CPU, so the ckks-poly row holds for full batches only.',
    '',
  ];
  return lines.join('\n');
}

/** Replaces the "## Scale-out" section of the doc (or appends it). */
function writeSection(text: string): void {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf('\n## Scale-out\n');
  if (start < 0) {
    writeAtomically(DOC, `${doc.trimEnd()}\n\n${text}`);
    return;
  }
  const next = doc.indexOf('\n## ', start + 1);
  writeAtomically(DOC, `${doc.slice(0, start + 1)}${text}${next < 0 ? '' : doc.slice(next)}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`bench:scale: ${line}\n`);
  const loads = [loadavg()[0]!];
  const { rounds, costs } = await scaleRuns(args, log);
  log(`costs (${args.costs})`);
  const others = await inProcessCosts(args.costs);
  loads.push(loadavg()[0]!);
  const text = section(args, await machineDescription(), loads, new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', rounds, costs, others);
  process.stdout.write(`${text}\n`);
  if (args.write) writeSection(text);
}

await main();
