/**
 * Runs a code example from README.md as it is written there, so the README cannot drift from the
 * API: the ```ts block after `<!-- example: NAME -->` is copied to a temporary module whose
 * `blindml/...` imports point at the sources (through package.json's exports), optionally with a
 * few literal substitutions (a test server's URL for the one in the text), then imported. What the
 * example passes to `console.log` is returned for the test to check.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The code of the example named `name` in README.md. */
export function readmeExample(name: string): string {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = `<!-- example: ${name} -->`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const match = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  if (!match) throw new Error(`no \`\`\`ts block after ${marker}`);
  return match[1]!;
}

/** `blindml/x` → the source file that package.json exports as `./x`. */
function sourceOf(specifier: string): string {
  const exportsMap = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).exports as Record<string, { import: string }>;
  const entry = exportsMap[specifier === 'blindml' ? '.' : `./${specifier.slice('blindml/'.length)}`];
  if (!entry) throw new Error(`package.json does not export ${specifier}`);
  return pathToFileURL(join(ROOT, entry.import.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'))).href;
}

/**
 * Runs the example and returns the arguments of each `console.log` call it made.
 *
 * @param substitutions - [text in the example, replacement]; each must occur.
 */
export async function runReadmeExample(name: string, substitutions: readonly [string, string][] = []): Promise<unknown[][]> {
  let code = readmeExample(name).replace(/from '(blindml(?:\/[a-z-]+)?)'/g, (_, spec: string) => `from '${sourceOf(spec)}'`);
  for (const [from, to] of substitutions) {
    if (!code.includes(from)) throw new Error(`example ${name} does not contain ${from}`);
    code = code.replaceAll(from, to);
  }
  const dir = mkdtempSync(join(tmpdir(), 'blindml-readme-'));
  const file = join(dir, `${name}.mts`);
  writeFileSync(file, code);
  const logs: unknown[][] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => void logs.push(args);
  try {
    await import(pathToFileURL(file).href);
  } finally {
    console.log = original;
    rmSync(dir, { recursive: true, force: true });
  }
  return logs;
}
