// The CKKS half of `npm run test:mutation`: the CKKS blinding and smudging lines against the CKKS
// privacy tests only (the other half, stryker.quick.config.mjs, runs the rest against the fast
// tests), so no mutant waits for tests that cannot see it. See stryker.config.json.
import base from './stryker.base.mjs';

export default {
  ...base,
  commandRunner: { command: 'node --import tsx --test --test-reporter=dot test/privacy/ckks-inference.test.ts' },
  mutate: base.mutate.filter((m) => m.includes('ckks-inference')),
  jsonReporter: { fileName: 'reports/mutation/mutation-ckks.json' },
  // Its own sandbox folder, so the two halves can also run side by side.
  tempDirName: '.stryker-tmp-ckks',
};
