// The short mutation-testing configuration: the lines that do the hiding in Paillier inference,
// the Paillier scheme, the two-server protocols and the Secure MLP's start, against the fast
// privacy tests (no CKKS: its tests take most of a full run). See stryker.config.json.
import { readFileSync } from 'node:fs';

const base = JSON.parse(readFileSync(new URL('./stryker.config.json', import.meta.url), 'utf8'));
delete base.$schema;
delete base._comment;

export default {
  ...base,
  commandRunner: {
    command: 'node --import tsx --test --test-reporter=dot test/privacy/paillier-inference.test.ts test/privacy/paillier-scheme.test.ts test/privacy/two-servers.test.ts',
  },
  mutate: [
    'src/protocol/paillier-inference/session-math.ts:35-39',
    'src/protocol/paillier-inference/session-math.ts:53-64',
    'src/protocol/paillier-inference/session-math.ts:88-99',
    'src/protocol/paillier-inference/service.ts:272-272',
    'src/protocol/paillier-inference/service.ts:280-283',
    'src/protocol/paillier-inference/service.ts:330-340',
    'src/protocol/paillier-inference/service.ts:358-361',
    'src/schemes/paillier/noise.ts:58-70',
    'src/schemes/paillier/tensor-file.ts:90-90',
    'src/protocol/two-server/compute-server.ts:426-426',
    'src/protocol/multikey/service-engine.ts:78-78',
    'src/train/smlp/model.ts:40-40',
  ],
  jsonReporter: { fileName: 'reports/mutation/mutation-quick.json' },
};
