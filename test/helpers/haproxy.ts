/**
 * A real, throwaway HAProxy for tests, running the shipped `deploy/haproxy.cfg` (its addresses come
 * from the environment) in the foreground (`-db`) on a free loopback port, stopped by `stop()`.
 * Never the system service, never a mock.
 *
 * ```ts
 * const skip = haproxySkipReason();
 * test('...', { skip }, async () => {
 *   const lb = await startHaproxy(['127.0.0.1:8081', '127.0.0.1:8082']);
 *   try { ... lb.url ... } finally { await lb.stop(); }
 * });
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, stopper } from './loopback.js';

/** The configuration the tests run: the one operators are given. */
export const HAPROXY_CFG = fileURLToPath(new URL('../../deploy/haproxy.cfg', import.meta.url));

/** A running HAProxy. */
export interface TestHaproxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The last lines it wrote (one per request: status, server, timings), for failure messages. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

/** The haproxy binary: Debian installs it in /usr/sbin, which a user's PATH may lack. */
function binary(): string {
  return existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
}

let missing: string | false | undefined;

/**
 * Why HAProxy tests cannot run here (haproxy is not installed), naming the Debian package; false
 * when they can. Pass it as `test(name, { skip }, ...)`.
 */
export function haproxySkipReason(): string | false {
  if (missing === undefined) {
    const probe = spawnSync(binary(), ['-v'], { encoding: 'utf8' });
    missing = probe.error || probe.status !== 0 ? 'HAProxy is not installed (Debian package haproxy: apt-get install haproxy)' : false;
  }
  return missing;
}

/**
 * Starts HAProxy from `deploy/haproxy.cfg` in front of two replicas (`host:port` each) and waits
 * until it answers `/healthz` through a replica.
 *
 * @throws Error when haproxy is missing (check {@link haproxySkipReason} first), refuses the
 *   configuration, or does not answer within 15 s (its output in the message).
 */
export async function startHaproxy(replicas: readonly [string, string]): Promise<TestHaproxy> {
  const reason = haproxySkipReason();
  if (reason) throw new Error(reason);
  let lastError = '';
  // Another process may take the probed port before HAProxy binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // Its working directory: nothing of HAProxy's lands in the repository.
    const dir = mkdtempSync(join(tmpdir(), 'blindml-haproxy-'));
    const env = { ...process.env, BLINDML_BIND: `127.0.0.1:${port}`, BLINDML_REPLICA_A: replicas[0], BLINDML_REPLICA_B: replicas[1] };
    const child = spawn(binary(), ['-db', '-f', HAPROXY_CFG], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (c: Buffer) => (output = (output + c.toString()).slice(-8000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // A test process that dies must not leave a balancer behind.
    const orphan = () => child.kill('SIGKILL');
    process.once('exit', orphan);
    const stop = stopper(child, dir, orphan);
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ok) return { url, log: () => output, stop };
      await new Promise((r) => setTimeout(r, 100));
    }
    lastError = output.trim().slice(-1000);
    await stop();
  }
  throw new Error(`haproxy did not start: ${lastError || 'no output'}`);
}
