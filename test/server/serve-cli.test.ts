// `blindml serve` as a real process, driven by `blindml models ...` and `blindml infer --server`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN_TS = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-serve-cli-'));
const env: NodeJS.ProcessEnv = { ...process.env };
delete env['BLINDML_API_KEY'];

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), RUN_TS, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let server: ChildProcess;
let serverErr = '';
let url = '';
let key = '';

before(async () => {
  server = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), RUN_TS, 'serve', '--port', '0', '--db', join(dir, 'r.db'), '--insecure', '--threads', '1', '--log-level', 'warn'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (d: Buffer) => {
      serverErr += d.toString();
      const m = /serving \d+ model\(s\) at (\S+) /.exec(serverErr);
      if (m) {
        url = m[1]!;
        resolve();
      }
    });
    server.on('exit', () => reject(new Error(`serve exited: ${serverErr}`)));
  });
  key = /\n {2}(bml_[\w-]+)\n/.exec(serverErr)?.[1] ?? '';
});

after(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('serve prints a new owner key once; models add / list / rm; infer --server --api-key registers first', async () => {
  assert.match(key, /^bml_[\w-]{40,}$/, serverErr);
  const added = await cli(['models', 'add', 'models/fashion-small.onnx', '--server', url, '--api-key', key, '--json']);
  assert.equal(added.code, 0, added.stderr);
  const record = JSON.parse(added.stdout) as { id: string; created: boolean; name: string };
  assert.equal(record.created, true);
  assert.equal(record.name, 'fashion-small');

  const listed = await cli(['models', 'list', '--server', url, '--api-key', key]);
  assert.equal(listed.code, 0);
  assert.match(listed.stdout, new RegExp(`^${record.id}\\s+fashion-small`));
  const wrong = await cli(['models', 'list', '--server', url, '--api-key', 'nope']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /the API key was not accepted/);
  const noKey = await cli(['models', 'list', '--server', url]);
  assert.equal(noKey.code, 2);

  assert.equal((await cli(['models', 'rm', record.id, '--server', url, '--api-key', key])).code, 0);
  const missing = await cli(['infer', '--server', url, '--limit', '1', '--key-bits', '512', '--insecure', '--threads', '0', '--json']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no model with id/);
  const inferred = await cli(['infer', '--server', url, '--api-key', key, '--limit', '2', '--key-bits', '512', '--insecure', '--threads', '0', '--json']);
  assert.equal(inferred.code, 0, inferred.stderr);
  const result = JSON.parse(inferred.stdout) as { agreement: number; modelId: string; samples: number };
  assert.equal(result.agreement, 1);
  assert.equal(result.modelId, record.id);
  assert.match((await cli(['models', 'list', '--server', url, '--api-key', key])).stdout, new RegExp(record.id));

  server.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => (server.exitCode !== null ? resolve(server.exitCode) : server.on('exit', resolve)));
  assert.equal(code, 0);
  assert.match(serverErr, /SIGTERM: finishing running sessions/);
});
