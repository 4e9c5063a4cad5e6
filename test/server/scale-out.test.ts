// The service scaled out on standard parts, end to end with real processes: two `blindml serve`
// replicas (bin/blindml.js, built by `npm run build`) behind HAProxy running deploy/haproxy.cfg.
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
import { connect, registerModel, type BlindmlClient } from '../../src/client/index.js';
import { haproxySkipReason, startHaproxy, type TestHaproxy } from '../helpers/haproxy.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/blindml.js');
const CLIENTS = 20;
const PER_CLIENT = 2;
const API_KEY = 'scale-out-owner-key';
const onnx = readFileSync(join(ROOT, 'models/fashion-small.onnx'));
const sample = loadFashionMnistSample({ limit: CLIENTS * PER_CLIENT });
const plain = runPlaintext(importOnnx(onnx), sample.images);
const plainLabels = argmaxRows(plain, 10);

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

const skip = haproxySkipReason();

/** A `blindml serve` process and the URL it listens on. */
interface Replica {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  stderr(): string;
  exit: Promise<number | null>;
}

const dir = mkdtempSync(join(tmpdir(), 'blindml-scale-out-'));
const keyFile = join(dir, 'owner.key');
const processes: ChildProcess[] = [];
let lb: TestHaproxy | undefined;
let a: Replica;
let b: Replica;

/** Starts `blindml serve` (port 0) and resolves once it prints its URL. */
function startReplica(name: string, args: readonly string[]): Promise<Replica> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--replica-name', name, '--api-key-file', keyFile, '--insecure', '--threads', '1', '--log-level', 'warn',
    // Every client reaches the replicas from 127.0.0.1 through the balancer.
    '--max-sessions-per-client', '64', '--opens-per-minute', '1000', '--drain-timeout', '5', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  processes.push(child);
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
      const m = /serving \d+ model\(s\) at (\S+) /.exec(stderr);
      if (m) resolve({ name, url: m[1]!, child, stderr: () => stderr, exit });
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
  [a, b] = await Promise.all([startReplica('a', ['--db', join(dir, 'a.db')]), startReplica('b', ['--db', join(dir, 'b.db')])]);
  lb = await startHaproxy([hostPort(a.url), hostPort(b.url)]);
});

after(async () => {
  await lb?.stop();
  for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Open Paillier sessions on a replica now. */
async function paillierSessions(r: Replica): Promise<number> {
  const health = (await (await fetch(`${r.url}/healthz`)).json()) as { sessionsByScheme: { paillier: number } };
  return health.sessionsByScheme.paillier;
}

test('20 clients through HAProxy: 0 failures, 100% agreement with plaintext; a replica killed mid-run, its clients fail over', { skip }, async () => {
  const modelId = (await registerModel(a.url, API_KEY, onnx)).model.id;
  await registerModel(b.url, API_KEY, onnx);

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
        r.logits.forEach((v, j) => assert.ok(Math.abs(v - plain[k * 10 + j]!) < 1e-3, `image ${k} logit ${j}: ${v} vs ${plain[k * 10 + j]}`));
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

  // The survivor drains on SIGTERM and exits 0.
  b.child.kill('SIGTERM');
  assert.equal(await b.exit, 0, b.stderr());
  assert.match(b.stderr(), /SIGTERM: refusing new sessions/);
});
