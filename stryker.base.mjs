// What both halves of `npm run test:mutation` share: stryker.config.json without its comment
// keys, after checking that every `mutate` range still holds the text `_markers` names for it
// (line ranges drift when the code above them changes; a drifted range would mutate other code
// and report a score for it).
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

export default config;
