/**
 * Writes a file so that readers see the old content or the whole new content, never a part: the
 * data goes to a temporary file beside the target, which is then renamed over it.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` atomically; on failure the temporary file is removed and the target is
 * left as it was.
 *
 * @throws the file system's error (missing directory, permissions, full disk).
 */
export function writeAtomically(path: string, data: string | Uint8Array): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, data);
    renameSync(temp, path);
  } catch (err) {
    if (existsSync(temp)) unlinkSync(temp);
    throw err;
  }
}
