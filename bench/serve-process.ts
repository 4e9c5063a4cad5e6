/**
 * `blindml serve` in a process of its own, for the service benchmarks: they measure the server as
 * deployed (its own RSS, its own event loop), not as a library sharing the benchmark's process.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** A running server process. */
export interface ServeProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  /** Resolves with the exit code once the process ends. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `blindml serve --port 0 --log-level warn ARGS…` from the sources under `root` and resolves
 * once it prints the URL it serves at.
 *
 * @throws Error with the server's stderr if it exits before serving.
 */
export async function spawnServe(root: string, args: readonly string[]): Promise<ServeProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/run.ts'), 'serve', '--port', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: root,
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving \d+ model\(s\) at (https?:\/\/[^\s]+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
  return { proc, url, exited };
}
