/**
 * `npm run bench:healthz`: how long `/healthz` takes to answer while `blindml serve` (its own
 * process, on loopback) does the heavy things a service does — a large model uploaded and compiled
 * for CKKS, CKKS key uploads, CKKS and Paillier sessions. A probe on a thread of its own asks
 * `/healthz` one request at a time, `--interval` ms after each answer (default 20), and files each
 * latency under the phase the server was in; the table gives count, p50, p99 and max per phase.
 *
 * Phases: idle; the reference CNN (models/fashion-reference.onnx) uploaded (import, checks, the
 * Paillier compile); compiled for CKKS (first `describe`); `--key-uploads` CKKS clients (default 3)
 * uploading their keys for it; CKKS sessions (one reference-CNN prediction, two of
 * models/fashion-small.onnx); Paillier sessions (`--paillier` predictions of fashion-small, each a
 * fresh 2048-bit key).
 *
 * `--compare DIR` runs the same scenario first against the sources in DIR (another version of
 * blindml, e.g. `git archive main | tar -x -C DIR` with node_modules linked in), so one run gives
 * a before and an after on the same machine. `--json` prints the figures as JSON.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, connectCkks, registerModel } from '../src/client/index.js';
import { HttpCkksTransport } from '../src/client/ckks-http-transport.js';
import { loadFashionMnistSample } from '../src/data/fashion-mnist.js';
import { CkksInferenceClient } from '../src/protocol/ckks-inference/index.js';
import { healthProbe, latencySummary, spawnServe } from './serve-process.js';

const { values: args } = parseArgs({
  options: {
    compare: { type: 'string' },
    interval: { type: 'string', default: '20' },
    'key-uploads': { type: 'string', default: '3' },
    paillier: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const here = fileURLToPath(new URL('../', import.meta.url));
const API_KEY = 'bench-owner-key';
const log = (s: string) => process.stderr.write(`${s}\n`);
const reference = readFileSync(join(here, 'models', 'fashion-reference.onnx'));
const small = readFileSync(join(here, 'models', 'fashion-small.onnx'));
const sample = loadFashionMnistSample({ limit: 2 });
const image = (i: number) => sample.images.subarray(i * 784, (i + 1) * 784);

type Phases = Map<string, number[]>;

/** The scenario against the sources under `root`: each phase's /healthz latencies. */
async function scenario(root: string): Promise<{ phases: Phases; seconds: Record<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-bench-healthz-'));
  const server = await spawnServe(root, ['--db', join(dir, 'r.db'), '--api-key', API_KEY, '--opens-per-minute', '100000', '--max-sessions-per-client', '16']);
  const probe = healthProbe(server.url, Number(args.interval));
  const seconds: Record<string, number> = {};
  const phase = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    probe.set(name);
    const t = performance.now();
    try {
      return await run();
    } finally {
      seconds[name] = (performance.now() - t) / 1000;
      probe.set('between phases');
      log(`  ${name}: ${seconds[name]!.toFixed(1)} s`);
    }
  };
  const ckksClients: CkksInferenceClient[] = [];
  try {
    const smallId = (await registerModel(server.url, API_KEY, small, { name: 'fashion-small' })).model.id;
    await phase('idle', () => new Promise((r) => setTimeout(r, 3000)));
    const refId = await phase('large model upload (reference CNN: import, checks, Paillier compile)', async () => (await registerModel(server.url, API_KEY, reference, { name: 'reference' })).model.id);
    await phase('CKKS compile of the reference CNN (first describe)', () => new HttpCkksTransport(server.url, refId).describe());
    await phase(`CKKS key uploads (reference CNN, ${args['key-uploads']} clients; client key generation included)`, async () => {
      for (let i = 0; i < Number(args['key-uploads']); i++) ckksClients.push(await CkksInferenceClient.connect(new HttpCkksTransport(server.url, refId)));
    });
    await phase('CKKS sessions (one reference-CNN prediction, two fashion-small)', async () => {
      await ckksClients[0]!.predict(image(0));
      const c = await connectCkks(server.url, smallId, { transport: 'http' });
      try {
        for (let i = 0; i < 2; i++) await c.predict(image(i));
      } finally {
        c.close();
      }
    });
    await phase(`Paillier sessions (${args.paillier} fashion-small predictions, a fresh 2048-bit key each)`, async () => {
      for (let i = 0; i < Number(args.paillier); i++) {
        const client = await connect(server.url, { transport: 'http' });
        try {
          await client.predict(smallId, image(i));
        } finally {
          client.close();
        }
      }
    });
    return { phases: await probe.stop(), seconds };
  } finally {
    for (const c of ckksClients) c.dispose();
    server.proc.kill('SIGTERM');
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs: { label: string; root: string }[] = [];
if (args.compare) runs.push({ label: 'before', root: resolve(args.compare) });
runs.push({ label: args.compare ? 'after' : 'this version', root: here });
const load = loadavg()[0]!;
const results: { label: string; phases: Phases; seconds: Record<string, number> }[] = [];
for (const r of runs) {
  log(`${r.label}: ${r.root}`);
  results.push({ label: r.label, ...(await scenario(r.root)) });
}

const fmt = (v: number) => (Number.isNaN(v) ? '–' : `${v.toFixed(1)} ms`);
if (args.json) {
  process.stdout.write(`${JSON.stringify(results.map((r) => ({ label: r.label, seconds: r.seconds, phases: Object.fromEntries([...r.phases].filter(([k]) => k !== 'between phases').map(([k, v]) => [k, latencySummary(v)])) })), null, 2)}\n`);
} else {
  const lines = [
    `/healthz latency, one request at a time every ${args.interval} ms (${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, load average ${load.toFixed(1)} at the start; server, clients and probe share the cores):`,
    '',
    `| phase | ${results.length > 1 ? 'version | ' : ''}time | requests | p50 | p99 | max |`,
    `|---|${results.length > 1 ? '---|' : ''}---|---|---|---|---|`,
  ];
  const names = [...results[0]!.phases.keys()].filter((k) => k !== 'between phases');
  for (const name of names) {
    for (const r of results) {
      const s = latencySummary(r.phases.get(name) ?? []);
      lines.push(`| ${name} | ${results.length > 1 ? `${r.label} | ` : ''}${(r.seconds[name] ?? Number.NaN).toFixed(1)} s | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${fmt(s.max)} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
