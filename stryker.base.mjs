// What the parts of `npm run test:mutation` share: stryker.config.json without its comment keys,
// after checking that every `mutate` range still holds the text `_markers` names for it (line
// ranges drift when the code above them changes; a drifted range would mutate other code and
// report a score for it), and the split into parts: each part mutates one area's hiding lines
// and runs only the privacy tests that target that area, so no mutant waits for tests that
// cannot see it.
import { readFileSync } from 'node:fs';

const config = JSON.parse(readFileSync(new URL('./stryker.config.json', import.meta.url), 'utf8'));
const markers = config._markers ?? {};
for (const range of config.mutate) {
  const [file, lines] = range.split(':');
  const [from, to] = lines.split('-').map(Number);
  const text = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8').split('\n').slice(from - 1, to).join('\n');
  if (!(range in markers)) throw new Error(`stryker.config.json: mutate range ${range} has no entry in _markers`);
  if (!text.includes(markers[range])) throw new Error(`stryker.config.json: ${range} no longer holds '${markers[range]}' — move the range to where that code is now`);
}
delete config.$schema;
delete config._comment;
delete config._markers;

// A part owns the ranges whose file lies under one of its folders (or is one of its files) (and, where `flood` is set,
// whose marker does or does not name the smudging flood); `pattern` keeps only the tests that
// look at those lines (node --test --test-name-pattern).
const isFlood = (range) => range.includes('/smudging.ts:') || /flood|addInPlace\(acc, big\)/.test(markers[range]);
const PARTS = {
  'paillier-math': {
    dirs: ['src/protocol/paillier-inference/session-math.ts', 'src/schemes/paillier/'],
    tests: ['paillier-inference', 'paillier-scheme'],
    pattern: 'exponent is sampled|blinding noise|permutations are uniform|blinding factors|no common factor|batch mode|DJN|tensor files|encrypted-number',
  },
  'paillier-service': { dirs: ['src/protocol/paillier-inference/service.ts'], tests: ['paillier-inference'] },
  'two-server': { dirs: ['src/protocol/two-server/', 'src/train/smlp/', 'src/protocol/multikey/'], tests: ['two-servers', 'multikey'] },
  'ckks-blinding': { dirs: ['src/protocol/ckks-inference/'], flood: false, tests: ['ckks-inference'], pattern: 'blinding|output orders|average pools' },
  'ckks-smudging': { dirs: ['src/protocol/ckks-inference/'], flood: true, tests: ['ckks-inference'], pattern: 'smudg' },
};

const owns = (name, range) => {
  const { dirs, flood } = PARTS[name];
  return dirs.some((d) => range.startsWith(d)) && (flood === undefined || flood === isFlood(range));
};
for (const range of config.mutate) {
  const owners = Object.keys(PARTS).filter((name) => owns(name, range));
  if (owners.length !== 1) throw new Error(`stryker.base.mjs: mutate range ${range} belongs to ${owners.length} parts, not one`);
}

/** The Stryker configuration of one part (its own report and sandbox folder, so parts can run side by side). */
export function part(name) {
  const { tests, pattern } = PARTS[name];
  const files = tests.map((t) => `test/privacy/${t}.test.ts`).join(' ');
  return {
    ...config,
    commandRunner: { command: `node --import tsx --test --test-reporter=dot${pattern ? ` --test-name-pattern="${pattern}"` : ''} ${files}` },
    mutate: config.mutate.filter((range) => owns(name, range)),
    jsonReporter: { fileName: `reports/mutation/mutation-${name}.json` },
    tempDirName: `.stryker-tmp-${name}`,
  };
}

export default config;
