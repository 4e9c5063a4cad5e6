/**
 * `blindml serve`'s options, checked before anything is created: the port is in range and free,
 * the database path is usable, the TLS and key files are readable. Only then does `serve` open
 * (or create) the registry — so a typo never leaves a new database behind, nor a stored hash of
 * an owner key nobody was shown.
 *
 * @module
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../usage-error.js';
import { isPostgresUrl, redactDbUrl } from '../../server/store/model-store.js';

/** Parses a TCP port (0 picks a free one). */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return n;
}

/**
 * Parses `--trust-proxy`: a hop count (`1`: one proxy in front), or a comma-separated list of
 * proxy addresses/subnets (`loopback`, `10.0.0.0/8`).
 */
export function trustProxyOption(value: string): number | string[] {
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n < 1 || n > 16) throw new InvalidArgumentError('expected a hop count from 1 to 16, or proxy addresses');
    return n;
  }
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new InvalidArgumentError('expected a hop count or proxy addresses (e.g. loopback,10.0.0.0/8)');
  return list;
}

/**
 * Fails unless `host:port` can be bound now (port 0 always can).
 *
 * @throws UsageError naming the port and why.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((ok, fail) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'is already in use' : err.code === 'EACCES' ? 'needs privileges this user lacks' : err.code === 'EADDRNOTAVAIL' ? 'is not an address of this machine' : `cannot be bound (${err.code ?? err.message})`;
      fail(new UsageError(`port ${port} on ${host} ${why}; pick another with --port (0 picks a free one)`));
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => ok()));
  });
}

/**
 * Fails unless the registry can live at `db`: an existing regular file, or a new file in an
 * existing, writable directory; or a well-formed `postgres://user@host[:port]/database` URL
 * (whether that server answers is found when the registry opens). Creates nothing.
 *
 * @throws UsageError (a URL's password never appears in it)
 */
export function assertDbPath(db: string): void {
  if (db === ':memory:') return;
  if (isPostgresUrl(db)) return assertDbUrl(db);
  const path = resolve(db);
  if (existsSync(path)) {
    if (!statSync(path).isFile()) throw new UsageError(`--db ${db} is not a file`);
    try {
      accessSync(path, constants.R_OK | constants.W_OK);
    } catch {
      throw new UsageError(`--db ${db} is not readable and writable by this user`);
    }
    return;
  }
  const parent = dirname(path);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new UsageError(`--db ${db}: the directory ${parent} does not exist`);
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw new UsageError(`--db ${db}: the directory ${parent} is not writable by this user`);
  }
}

/**
 * Reads a small secret or PEM file given on the command line.
 *
 * @throws UsageError when it is missing, unreadable, empty or larger than 1 MiB.
 */
export function readOptionFile(flag: string, path: string): Buffer {
  let bytes: Buffer;
  try {
    if (statSync(path).size > 2 ** 20) throw new UsageError(`${flag} ${path} is larger than 1 MiB`);
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${flag} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (bytes.toString('utf8').trim() === '') throw new UsageError(`${flag} ${path} is empty`);
  return bytes;
}

/**
 * The owner key from, in order: `--api-key-file`, `--api-key`, `$BLINDML_API_KEY`; undefined
 * when none is given (the server then uses the stored key or makes a new one). Warns when the
 * key file can be read by other users.
 *
 * @throws UsageError when the key file cannot be read or is empty.
 */
export function ownerKey(o: { apiKey?: string; apiKeyFile?: string }, warn: (line: string) => void): string | undefined {
  if (o.apiKeyFile) {
    const key = readOptionFile('--api-key-file', o.apiKeyFile).toString('utf8').trim();
    if ((statSync(o.apiKeyFile).mode & 0o077) !== 0) warn(`blindml: ${o.apiKeyFile} can be read by other users; chmod 600 it`);
    return key;
  }
  return o.apiKey || process.env['BLINDML_API_KEY'] || undefined;
}

/** A PostgreSQL URL naming a server (a host, or a socket directory in `?host=`) and a database. */
function assertDbUrl(db: string): void {
  const shown = redactDbUrl(db);
  let url: URL;
  try {
    url = new URL(db);
  } catch {
    throw new UsageError(`--db ${shown} is not a valid URL (expected postgres://user@host:5432/database)`);
  }
  if (!url.hostname && !url.searchParams.get('host')) throw new UsageError(`--db ${shown} names no server (expected postgres://user@host:5432/database)`);
  if (url.pathname.replace(/^\//, '') === '') throw new UsageError(`--db ${shown} names no database (expected postgres://user@host:5432/database)`);
}
