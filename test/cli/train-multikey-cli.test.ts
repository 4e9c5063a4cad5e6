import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const small = ['train', '--scheme', 'multikey', '--dataset', 'diabetes', '--providers', '3', '--key-bits', '1024', '--insecure', '--train-limit', '16', '--test-limit', '20', '--threads', '1'];

test('multikey: usage mistakes and weak keys give one line', async () => {
  const wrongData = await runCli(['train', '--scheme', 'multikey', '--dataset', 'fashion-mnist']);
  assert.equal(wrongData.code, 2);
  assert.equal(wrongData.lines.length, 1);
  assert.match(wrongData.stderr, /diabetes/);
  const noCheckpoint = await runCli(['train', '--scheme', 'multikey', '--dataset', 'diabetes', '--resume']);
  assert.equal(noCheckpoint.code, 2);
  assert.match(noCheckpoint.stderr, /--checkpoint/);
  const tooMany = await runCli(['train', '--scheme', 'multikey', '--dataset', 'diabetes', '--providers', '500']);
  assert.equal(tooMany.code, 2);
  const weak = await runCli(['train', '--scheme', 'multikey', '--dataset', 'diabetes', '--providers', '2', '--key-bits', '1024', '--threads', '1']);
  assert.notEqual(weak.code, 0);
  assert.equal(weak.lines.length, 1);
  assert.match(weak.stderr, /insecure/);
});

test('multikey: a crypto server that stops answering gives one line and no results file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-multikey-'));
  try {
    const out = join(dir, 'result.json');
    const failed = await runCli([...small, '--checkpoint', join(dir, 'state'), '--out', out, '--s2-stop-after', '8']);
    assert.notEqual(failed.code, 0);
    assert.equal(failed.lines.length, 1, failed.stderr);
    assert.match(failed.stderr, /crypto server stopped answering during epoch 1; no epoch was completed/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('multikey: silent in epoch 2 → epoch-1 checkpoint files for both servers; --resume finishes and writes the results', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-multikey-'));
  try {
    const prefix = join(dir, 'state');
    const out = join(dir, 'result.json');
    // 3 setup requests, 2 steps × 12 + sync + checkpoint in epoch 1, then silence in epoch 2.
    const failed = await runCli([...small, '--epochs', '2', '--checkpoint', prefix, '--out', out, '--s2-stop-after', '32']);
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /during epoch 2; epoch 1 is checkpointed/);
    assert.deepEqual(readdirSync(dir).sort(), ['state.crypto-server-1.json', 'state.service-1.json']);
    const resumed = await runCli([...small, '--epochs', '2', '--checkpoint', prefix, '--out', out, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { resumedFromEpoch: number; epochs: number; r2: number; plaintextR2: number };
    assert.equal(result.resumedFromEpoch, 1);
    assert.equal(result.epochs, 2);
    assert.ok(Number.isFinite(result.r2) && Math.abs(result.r2 - result.plaintextR2) < 0.05);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
