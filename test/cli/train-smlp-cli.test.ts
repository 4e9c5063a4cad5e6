import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const small = ['train', '--scheme', 'smlp', '--dataset', 'breast-cancer', '--key-bits', '512', '--insecure', '--train-limit', '48', '--test-limit', '16', '--hidden', '2', '--threads', '1'];

test('smlp: usage mistakes and weak keys give one line', async () => {
  const wrongData = await runCli(['train', '--scheme', 'smlp', '--dataset', 'fashion-mnist']);
  assert.equal(wrongData.code, 2);
  assert.equal(wrongData.lines.length, 1);
  assert.match(wrongData.stderr, /breast-cancer/);
  const noCheckpoint = await runCli(['train', '--scheme', 'smlp', '--dataset', 'breast-cancer', '--resume']);
  assert.equal(noCheckpoint.code, 2);
  assert.match(noCheckpoint.stderr, /--checkpoint/);
  const weak = await runCli(['train', '--scheme', 'smlp', '--dataset', 'breast-cancer', '--key-bits', '512', '--threads', '1']);
  assert.notEqual(weak.code, 0);
  assert.equal(weak.lines.length, 1);
  assert.match(weak.stderr, /insecure/);
});

test('smlp: the crypto server stops answering in epoch 2 → one line, epoch-1 checkpoint, no results file; --resume completes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-smlp-'));
  try {
    const checkpoint = join(dir, 'state.json');
    const out = join(dir, 'result.json');
    // 1 store round, 3 batches × 7 rounds in epoch 1, then silence in epoch 2.
    const failed = await runCli([...small, '--epochs', '2', '--checkpoint', checkpoint, '--out', out, '--s2-stop-after', '25', '--timeout', '2']);
    assert.equal(failed.code, 1);
    assert.equal(failed.lines.length, 1, failed.stderr);
    assert.match(failed.stderr, /did not answer.*--resume/);
    assert.equal(JSON.parse(readFileSync(checkpoint, 'utf8')).epochsDone, 1);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
    const resumed = await runCli([...small, '--epochs', '2', '--checkpoint', checkpoint, '--out', out, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(result.resumedFromEpoch, 1);
    assert.equal(result.perEpoch.length, 2);
    for (const key of ['accuracy', 'plaintextAccuracy', 'seconds', 'bytes', 'rounds', 'epochs', 'keyBits']) assert.ok(key in result, key);
    // A damaged checkpoint is refused in one line.
    const damaged = await runCli([...small, '--epochs', '3', '--checkpoint', out, '--resume']);
    assert.notEqual(damaged.code, 0);
    assert.equal(damaged.lines.length, 1);
    assert.match(damaged.stderr, /malformed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
