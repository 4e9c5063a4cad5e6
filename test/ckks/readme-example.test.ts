// The README's CKKS example, run as written there, so the README cannot drift from the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runReadmeExample } from '../helpers/readme.js';

test('the README\'s CKKS example prints the values its comments show (within CKKS precision)', async () => {
  const logs = await runReadmeExample('ckks');
  assert.equal(logs.length, 2);
  const near = (got: unknown, want: number[], tolerance: number) => {
    const values = Array.from(got as Float64Array);
    assert.equal(values.length, want.length);
    values.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < tolerance, `${v} vs ${want[i]}`));
  };
  near(logs[0]![0], [2.25, 4, 9], 1e-3);
  near(logs[1]![0], [2, -3], 1e-2);
});
