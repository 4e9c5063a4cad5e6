/**
 * `blindml serve` in a process of its own, for the service benchmarks: they measure the server as
 * deployed (its own RSS, its own event loop), not as a library sharing the benchmark's process;
 * and the /healthz probe they time its event loop with.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** A running server process. */
export interface ServeProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  /** Resolves with the exit code once the process ends. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `blindml serve --port 0 --log-level warn ARGS…` from the sources under `root` and resolves
 * once it prints the URL it serves at.
 *
 * @throws Error with the server's stderr if it exits before serving.
 */
export async function spawnServe(root: string, args: readonly string[]): Promise<ServeProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/run.ts'), 'serve', '--port', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: root,
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving \d+ model\(s\) at (https?:\/\/[^\s]+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
  return { proc, url, exited };
}

/** /healthz latencies (ms) by the phase the server was in when each request was sent. */
export interface HealthProbe {
  /** Files later requests under `phase`. */
  set(phase: string): void;
  /** Stops probing; resolves with every phase's latencies in milliseconds. */
  stop(): Promise<Map<string, number[]>>;
}

/**
 * One `GET /healthz` at a time, `intervalMs` after the last answer, from a worker thread of its own:
 * the benchmark's clients (key generation, encryption) block this process's event loop for
 * seconds at a time, which must not count as the server's latency.
 */
export function healthProbe(url: string, intervalMs = 50): HealthProbe {
  const worker = new Worker(PROBE_SOURCE, { eval: true, workerData: { url, intervalMs } });
  return {
    set: (phase) => worker.postMessage({ phase }),
    stop: () =>
      new Promise((resolve, reject) => {
        worker.once('message', (entries: [string, number[]][]) => {
          resolve(new Map(entries));
          void worker.terminate();
        });
        worker.once('error', reject);
        worker.postMessage({ stop: true });
      }),
  };
}

const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const byPhase = new Map();
let phase = 'idle';
let running = true;
parentPort.on('message', (m) => { if (m.stop) running = false; else phase = m.phase; });
(async () => {
  while (running) {
    const filed = phase;
    const t = performance.now();
    await fetch(workerData.url + '/healthz').then((r) => r.arrayBuffer()).catch(() => undefined);
    if (!byPhase.has(filed)) byPhase.set(filed, []);
    byPhase.get(filed).push(performance.now() - t);
    await new Promise((r) => setTimeout(r, workerData.intervalMs));
  }
  parentPort.postMessage([...byPhase]);
})();
`;

/** The q-quantile of `values` (the sample at rank ⌊q·n⌋, NaN for none). */
export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : Number.NaN;
}

/** Count, median, 99th percentile and maximum of latencies. */
export function latencySummary(values: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  return { n: values.length, p50: quantile(values, 0.5), p99: quantile(values, 0.99), max: values.length ? Math.max(...values) : Number.NaN };
}
