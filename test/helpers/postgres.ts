/**
 * A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `postgres` on a
 * free loopback port (no fsync), one database created, everything stopped and deleted by `stop()`
 * (or when the test process exits). PostgreSQL refuses to run as root, so under root the binaries
 * run as the `postgres` user (`runuser`) in a directory chowned to it.
 *
 * Tests skip with {@link postgresUnavailable}'s reason when the server binaries are not installed
 * (Debian package `postgresql`).
 *
 * @example
 *   const skip = postgresUnavailable();
 *   test('…', { skip }, async () => {
 *     const pg = await startPostgres();
 *     try { … pg.url … } finally { await pg.stop(); }
 *   });
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './loopback.js';

/** A running test server. */
export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/<database>` (trust authentication: no password). */
  readonly url: string;
  readonly port: number;
  /** The same server, another database: `urlOf('other')` (create it with {@link createDatabase}). */
  urlOf(database: string): string;
  /** Creates another database on this server. */
  createDatabase(name: string): Promise<void>;
  /** Stops the server (fast shutdown) and deletes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

const ROOT = '/usr/lib/postgresql';

/** The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `postgres`, or undefined. */
export function postgresBinDir(): string | undefined {
  if (!existsSync(ROOT)) return undefined;
  const versions = readdirSync(ROOT)
    .filter((v) => existsSync(join(ROOT, v, 'bin', 'initdb')) && existsSync(join(ROOT, v, 'bin', 'postgres')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : join(ROOT, versions[0], 'bin');
}

const asRoot = process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Why the tests cannot start PostgreSQL here (a reason for `test(..., { skip })`), or undefined
 * when they can.
 */
export function postgresUnavailable(): string | undefined {
  if (!postgresBinDir()) return `PostgreSQL server binaries not found under ${ROOT}/*/bin (install the Debian package postgresql)`;
  if (asRoot && !postgresUser()) return 'running as root, and there is no postgres user to run the server as (install the Debian package postgresql)';
  if (asRoot && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return 'running as root without runuser (Debian package util-linux) to run PostgreSQL as the postgres user';
  return undefined;
}

/** argv for running a PostgreSQL binary as the right user. */
function command(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

const running = new Set<{ dir: string; pidFile: string }>();
let exitHookInstalled = false;

/** The postmaster's pid (first line of postmaster.pid), or undefined. */
function postmasterPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A test process that ends without stop() leaves no server or directory behind: on exit, and on
 * SIGINT/SIGTERM (a runner's timeout), after which the signal is raised again.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanUp();
      process.kill(process.pid, signal);
    });
  }
}

function cleanUp(): void {
  for (const s of running) {
    const pid = postmasterPid(s.pidFile);
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // Already gone.
      }
    }
    try {
      rmSync(s.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // The server still writing as it dies: a temp directory stays behind, nothing runs.
    }
  }
  running.clear();
}

async function waitReady(port: number, child: ChildProcess, logFile: string, deadlineMs = 60_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`postgres exited during start-up:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > until) throw new Error(`postgres did not accept connections within ${deadlineMs / 1000} s: ${(err as Error).message}\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function adminQuery(port: number, sql: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Starts a PostgreSQL server of its own for a test, with one empty database.
 *
 * @throws Error (with the server's log) when it cannot be started; call {@link postgresUnavailable}
 *   first to skip where PostgreSQL is not installed.
 */
export async function startPostgres(options: { database?: string } = {}): Promise<TestPostgres> {
  const reason = postgresUnavailable();
  if (reason) throw new Error(reason);
  const bin = postgresBinDir()!;
  const database = options.database ?? 'blindml';
  if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new RangeError(`database name ${database}: use lower-case letters, digits and _`);
  const dir = mkdtempSync(join(tmpdir(), 'blindml-pg-'));
  const owner = asRoot ? postgresUser()! : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');

  const [initCmd, initArgs] = command(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout || init.error?.message}`);
  }

  const port = await freePort();
  const log = openSync(logFile, 'a');
  if (owner) chownSync(logFile, owner.uid, owner.gid);
  const [cmd, args] = command(join(bin, 'postgres'), [
    '-D', data, '-k', dir, '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=60', '-c', 'shared_buffers=16MB',
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
  closeSync(log);
  const entry = { dir, pidFile: join(data, 'postmaster.pid') };
  running.add(entry);
  installExitHook();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
      const signal = (sig: NodeJS.Signals) => {
        const pid = postmasterPid(entry.pidFile);
        try {
          if (pid) process.kill(pid, sig);
          else child.kill(sig);
        } catch {
          // Gone already.
        }
      };
      // SIGINT: fast shutdown (running sessions are ended); the postmaster, not runuser, gets it.
      signal('SIGINT');
      const timer = setTimeout(() => signal('SIGQUIT'), 10_000);
      await exited;
      clearTimeout(timer);
      running.delete(entry);
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    await waitReady(port, child, logFile);
    await adminQuery(port, `CREATE DATABASE ${database}`);
  } catch (err) {
    await stop();
    throw err;
  }
  const urlOf = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  return {
    url: urlOf(database),
    port,
    urlOf,
    createDatabase: async (name: string) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new RangeError(`database name ${name}: use lower-case letters, digits and _`);
      await adminQuery(port, `CREATE DATABASE ${name}`);
    },
    stop,
  };
}
