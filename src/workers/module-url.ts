/**
 * Where a worker entry module lives: beside the module that starts it, as TypeScript source when
 * running under tsx (tests, development) and as compiled JavaScript from dist/.
 *
 * @module
 */

/** URL of the sibling module `name` (no extension) of the module whose URL is `base`. */
export function siblingModuleUrl(base: string, name: string): string {
  const ext = base.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, base).href;
}
