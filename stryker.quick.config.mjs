// The first half of `npm run test:mutation` (and the quick configuration on its own): the hiding
// lines of Paillier inference, the Paillier scheme, the two-server protocols and the Secure MLP's
// start, against the fast privacy tests; stryker.ckks.config.mjs is the CKKS half.
import base from './stryker.base.mjs';

export default {
  ...base,
  commandRunner: {
    command: 'node --import tsx --test --test-reporter=dot test/privacy/paillier-inference.test.ts test/privacy/paillier-scheme.test.ts test/privacy/two-servers.test.ts test/privacy/multikey.test.ts',
  },
  mutate: base.mutate.filter((m) => !m.includes('ckks-inference')),
  jsonReporter: { fileName: 'reports/mutation/mutation-quick.json' },
};
