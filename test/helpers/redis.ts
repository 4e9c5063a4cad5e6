/**
 * A real, throwaway redis-server for tests: started on a free loopback port in a temporary
 * directory, with persistence off (`--save '' --appendonly no`), stopped and removed by `stop()`.
 * Never the system service, never a mock.
 *
 * ```ts
 * const skip = redisSkipReason();
 * test('...', { skip }, async () => {
 *   const redis = await startRedis();
 *   try { ... redis.url ... } finally { await redis.stop(); }
 * });
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopper } from './loopback.js';

/** A running redis-server. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The server's process id (benchmarks read its CPU time). */
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

let missing: string | false | undefined;

/**
 * Why redis tests cannot run here (redis-server is not installed), naming the Debian package;
 * false when they can. Pass it as `test(name, { skip }, ...)`.
 */
export function redisSkipReason(): string | false {
  if (missing === undefined) {
    const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    missing = probe.error || probe.status !== 0 ? 'redis-server is not installed (Debian package redis-server: apt-get install redis-server)' : false;
  }
  return missing;
}

/** Whether a redis on `port` answers PING. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let text = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n')) done(text.startsWith('+PONG'));
    });
  });
}

/**
 * Starts redis-server on a free loopback port and waits until it answers.
 *
 * @throws Error when redis-server is missing (check {@link redisSkipReason} first) or does not
 *   come up within 10 s (its stderr in the message).
 */
export async function startRedis(): Promise<TestRedis> {
  const reason = redisSkipReason();
  if (reason) throw new Error(reason);
  let lastError = '';
  // Another process may take the probed port before redis binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'blindml-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
    child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
    // A test process that dies must not leave a server behind.
    const orphan = () => child.kill('SIGKILL');
    process.once('exit', orphan);
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!up && Date.now() < deadline && child.exitCode === null) {
      up = await pings(port);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    const stop = stopper(child, dir, orphan);
    if (up) return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid!, stop };
    lastError = output.trim().slice(-500);
    await stop();
  }
  throw new Error(`redis-server did not start: ${lastError || 'no output'}`);
}
