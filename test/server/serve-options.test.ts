// `blindml serve` checks its options before it creates anything; TLS serves HTTPS and WSS.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { runCli } from '../helpers/cli.js';
import { startServer } from '../../src/server/app.js';
import { ModelRegistry } from '../../src/server/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'blindml-serve-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('serve refuses a bad port, a busy port, a bad path or key file before creating the database', async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  try {
    const cases: [string[], RegExp][] = [
      [['--port', '99999'], /port number from 0 to 65535/],
      [['--port', String(port)], new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`)],
      [['--api-key-file', join(dir, 'missing.key')], /--api-key-file .* cannot be read: ENOENT/],
      [['--tls-cert', join(dir, 'c.pem')], /--tls-cert and --tls-key go together/],
      [['--trust-proxy', ''], /hop count or proxy addresses/],
    ];
    for (const [args, message] of cases) {
      const db = join(dir, 'never.db');
      const { code, stderr } = await runCli(['serve', '--db', db, ...args]);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
      assert.ok(!existsSync(db) && !existsSync(`${db}.models`), `${args.join(' ')} created nothing`);
    }
    const nested = await runCli(['serve', '--db', join(dir, 'no', 'such', 'dir.db')]);
    assert.equal(nested.code, 2);
    assert.match(nested.stderr, /does not exist/);
  } finally {
    busy.close();
  }
});

test('a server that cannot listen stores no owner key; the key it stores is the one it returned', async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const db = join(dir, 'race.db');
  try {
    await assert.rejects(startServer({ db, port: (busy.address() as { port: number }).port, workers: 0 }), /EADDRINUSE/);
  } finally {
    busy.close();
  }
  const first = (await ModelRegistry.open(db)).registry;
  assert.equal(await first.setting('api_key_sha256'), undefined, 'no hash of a key nobody saw');
  await first.close();
  const s = await startServer({ db, port: 0, workers: 0 });
  try {
    assert.ok(s.generatedApiKey);
    const res = await fetch(`${s.url}/v1/models`, { headers: { authorization: `Bearer ${s.generatedApiKey}` } });
    assert.equal(res.status, 200);
  } finally {
    await s.close(0);
  }
});

test('with --tls-cert/--tls-key the service speaks HTTPS and WSS, with HSTS', async () => {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  const keyFile = join(dir, 'owner.key');
  writeFileSync(keyFile, 'file-owner-key\n', { mode: 0o600 });
  const s = await startServer({ db: join(dir, 'tls.db'), port: 0, workers: 0, apiKey: 'file-owner-key', tls: { cert: readFileSync(cert), key: readFileSync(key) } });
  try {
    assert.match(s.url, /^https:/);
    const res = await new Promise<{ status: number; hsts: string | undefined; body: string }>((resolve, reject) => {
      httpsGet(`${s.url}/healthz`, { rejectUnauthorized: false }, (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, hsts: r.headers['strict-transport-security'] as string | undefined, body }));
      }).on('error', reject);
    });
    assert.equal(res.status, 200);
    assert.match(res.body, /"status":"ok"/);
    assert.match(res.hsts ?? '', /max-age=/);
    const ws = new WebSocket(`${s.url.replace('https', 'wss')}/v1/ws`, { rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.close();
  } finally {
    await s.close(0);
  }
});
