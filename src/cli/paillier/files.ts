/**
 * Reading inputs and writing outputs for `blindml paillier`, as pheutil's click.File does ("-"
 * means stdin or stdout), with two differences that keep a failed command from doing harm: every
 * file problem is a one-line {@link FileAccessError}, and an output file is written to a temporary
 * name next to it and renamed into place only when the command has succeeded.
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { BlindmlError } from '../../errors.js';

/** Key and ciphertext files are a few kilobytes; anything far larger is a mistake, not input. */
export const MAX_INPUT_BYTES = 1 << 20;

/** A file could not be read or written. */
export class FileAccessError extends BlindmlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_FILE', message, options);
  }
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a component of the path is not a directory';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Reads a text file, or stdin for "-".
 *
 * @throws FileAccessError if it cannot be read or is larger than {@link MAX_INPUT_BYTES}.
 */
export function readInputText(path: string): string {
  const name = path === '-' ? '<stdin>' : `'${path}'`;
  let fd: number;
  try {
    fd = path === '-' ? 0 : openSync(path, 'r');
  } catch (err) {
    throw new FileAccessError(`cannot read ${name}: ${describe(err)}`, { cause: err });
  }
  try {
    if (path !== '-' && fstatSync(fd).isDirectory()) throw new FileAccessError(`cannot read ${name}: it is a directory`);
    return readLimited(fd, name);
  } finally {
    if (path !== '-') closeSync(fd);
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

function readLimited(fd: number, name: string): string {
  const chunks: Buffer[] = [];
  let total = 0;
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    let got: number;
    try {
      got = readSync(fd, chunk, 0, chunk.length, null);
    } catch (err) {
      // A non-blocking stdin with nothing buffered yet: wait a little for it rather than fail.
      if ((err as { code?: unknown }).code === 'EAGAIN') {
        Atomics.wait(PAUSE, 0, 0, 10);
        continue;
      }
      throw new FileAccessError(`cannot read ${name}: ${describe(err)}`, { cause: err });
    }
    if (got === 0) break;
    total += got;
    if (total > MAX_INPUT_BYTES) {
      throw new FileAccessError(`cannot read ${name}: larger than ${MAX_INPUT_BYTES} bytes (not a key or ciphertext file)`);
    }
    chunks.push(Buffer.from(chunk.subarray(0, got)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Where a command's result goes: stdout, or a file that appears only when {@link commit} is
 * called. Opening one creates the temporary file at once, so an unwritable destination fails the
 * command before any work is done.
 */
export class OutputTarget {
  private fd: number | undefined;
  private done = false;

  private constructor(
    /** The name pheutil would log: the path, or `<stdout>`. */
    readonly name: string,
    private readonly path: string | undefined,
    private readonly tempPath: string | undefined,
    fd: number | undefined,
  ) {
    this.fd = fd;
  }

  /**
   * Opens stdout (no path, or "-") or a temporary file beside `path` (`mode` applies to it).
   *
   * @throws FileAccessError if the directory cannot be written or `path` is a directory.
   */
  static open(path: string | undefined, mode = 0o644): OutputTarget {
    if (path === undefined || path === '-') return new OutputTarget('<stdout>', undefined, undefined, undefined);
    const tempPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      const fd = openSync(tempPath, 'wx', mode);
      return new OutputTarget(path, path, tempPath, fd);
    } catch (err) {
      throw new FileAccessError(`cannot write '${path}': ${describe(err)}`, { cause: err });
    }
  }

  /**
   * Writes `text` and, for a file, renames it into place.
   *
   * @throws FileAccessError if writing or renaming fails (the temporary file is removed).
   */
  commit(text: string): void {
    if (this.done) throw new Error('OutputTarget: already committed');
    if (this.fd === undefined || this.path === undefined || this.tempPath === undefined) {
      process.stdout.write(text);
      this.done = true;
      return;
    }
    try {
      writeSync(this.fd, text);
      closeSync(this.fd);
      this.fd = undefined;
      renameSync(this.tempPath, this.path);
      this.done = true;
    } catch (err) {
      this.abort();
      throw new FileAccessError(`cannot write '${this.path}': ${describe(err)}`, { cause: err });
    }
  }

  /** Removes the temporary file unless the output was committed. Safe to call more than once. */
  abort(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    if (!this.done && this.tempPath !== undefined) {
      try {
        unlinkSync(this.tempPath);
      } catch {
        // Already gone: nothing to clean up.
      }
      this.done = true;
    }
  }
}
