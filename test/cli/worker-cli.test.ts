// `blindml worker` and `serve --redis` refuse bad Redis URLs and unreachable servers with one line,
// before creating anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

test('blindml worker needs a reachable redis:// URL and says so in one line', async () => {
  const missing = await runCli(['worker']);
  assert.equal(missing.code, 2);
  assert.match(missing.lines[0]!, /required option '--redis <url>'/);
  const http = await runCli(['worker', '--redis', 'http://127.0.0.1:6379']);
  assert.deepEqual([http.code, http.lines], [1, ['blindml: --redis http://127.0.0.1:6379: expected redis://host:port (or rediss:// for TLS)']]);
  const port = await closedPort();
  const down = await runCli(['worker', '--redis', `redis://user:secret@127.0.0.1:${port}`]);
  assert.equal(down.code, 1);
  assert.deepEqual(down.lines, [`blindml: cannot reach Redis at redis://user:***@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`], 'one line, the password hidden');
  assert.equal((await runCli(['worker', '--redis', 'redis://127.0.0.1:1', '--threads', '0'])).code, 2);
});

test('serve --redis with an unreachable Redis creates no registry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-serve-redis-'));
  try {
    const port = await closedPort();
    const r = await runCli(['serve', '--port', '0', '--db', join(dir, 'r.db'), '--redis', `redis://127.0.0.1:${port}`]);
    assert.deepEqual([r.code, r.lines], [1, [`blindml: cannot reach Redis at redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`]]);
    assert.equal(existsSync(join(dir, 'r.db')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
