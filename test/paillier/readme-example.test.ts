// The README's Paillier example, run as written there, so the README cannot drift from the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runReadmeExample } from '../helpers/readme.js';

test('the README\'s Paillier example prints the values its comments show', async () => {
  const logs = await runReadmeExample('paillier');
  assert.deepEqual(logs, [[43n], [7.78], [[3n, -6n, 9n]]]);
});
