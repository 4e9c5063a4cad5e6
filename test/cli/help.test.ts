import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram } from '../../src/cli/main.js';

test('the root program is named blindml', () => {
  assert.equal(buildProgram().name(), 'blindml');
});
