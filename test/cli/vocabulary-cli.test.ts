// One vocabulary across commands: --version, validated numbers, old option names accepted with a
// note, --key-bits only where keys are Paillier, each scheme's own data set by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCli, runCliProcess } from '../helpers/cli.js';

test('--version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const r = runCliProcess(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), version);
});

test('numeric options refuse words and negative numbers', async () => {
  for (const args of [['infer', '--threads', 'abc'], ['infer', '--workers', '-3'], ['predict', 'x.png', '--batch-size', '0'], ['serve', '--threads', '1.5'], ['train', '--scheme', 'fe', '--epochs', '']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /is invalid\. expected a (non-negative|positive) integer/, args.join(' '));
  }
});

test('old option names still work and say which name replaced them', async () => {
  // Each run stops at a later check (small keys), after the options were read.
  const workers = await runCli(['infer', '--workers', '0', '--key-bits', '1024']);
  assert.equal(workers.lines[0], 'blindml: --workers is deprecated; use --threads');
  assert.match(workers.lines[1]!, /--key-bits 1024 is insecure/);
  const batch = await runCli(['infer', '--batch', '4', '--key-bits', '1024']);
  assert.equal(batch.lines[0], 'blindml: --batch is deprecated; use --batch-size');
  const bits = await runCli(['bench', 'paillier', '--bits', '1024']);
  assert.equal(bits.lines[0], 'blindml: --bits is deprecated; use --key-bits');
});

test('--key-bits is refused where keys are not Paillier; smlp trains on breast-cancer by default', async () => {
  const ckks = await runCli(['infer', '--scheme', 'ckks', '--key-bits', '1024']);
  assert.equal(ckks.code, 2);
  assert.equal(ckks.lines[0], 'blindml: --key-bits sizes Paillier keys; CKKS parameters are fixed at 128-bit security');
  // Without --dataset the run gets past the data set to the key-size check.
  const smlp = await runCli(['train', '--scheme', 'smlp', '--key-bits', '512', '--threads', '1']);
  assert.equal(smlp.code, 1);
  assert.doesNotMatch(smlp.stderr, /dataset/);
  assert.match(smlp.stderr, /512/);
});
