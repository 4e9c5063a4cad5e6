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

const PARTS = {
  paillier: { dirs: ['src/protocol/paillier-inference/', 'src/schemes/paillier/'], tests: ['paillier-inference', 'paillier-scheme'] },
  'two-server': { dirs: ['src/protocol/two-server/', 'src/train/smlp/', 'src/protocol/multikey/'], tests: ['two-servers', 'multikey'] },
  ckks: { dirs: ['src/protocol/ckks-inference/'], tests: ['ckks-inference'] },
};

const owner = (range) => Object.keys(PARTS).filter((name) => PARTS[name].dirs.some((d) => range.startsWith(d)));
for (const range of config.mutate) {
  if (owner(range).length !== 1) throw new Error(`stryker.base.mjs: mutate range ${range} belongs to ${owner(range).length} parts, not one`);
}

/** The Stryker configuration of one part (its own report and sandbox folder, so parts can run side by side). */
export function part(name) {
  const { dirs, tests } = PARTS[name];
  return {
    ...config,
    commandRunner: { command: `node --import tsx --test --test-reporter=dot ${tests.map((t) => `test/privacy/${t}.test.ts`).join(' ')}` },
    mutate: config.mutate.filter((m) => dirs.some((d) => m.startsWith(d))),
    jsonReporter: { fileName: `reports/mutation/mutation-${name}.json` },
    tempDirName: `.stryker-tmp-${name}`,
  };
}

export default config;
