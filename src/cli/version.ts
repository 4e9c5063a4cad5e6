/**
 * The installed blindml version, from package.json (two levels above both src/cli and dist/cli).
 *
 * @module
 */
import { readFileSync } from 'node:fs';

/** The `version` field of blindml's package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
