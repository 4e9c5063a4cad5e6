/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs and --json
 * output stay clean when piped).
 *
 * @module
 */

export interface Progress {
  /** Advances to `done` of `total` and redraws (at most every 100 ms). */
  update(done: number, label?: string): void;
  /** Clears the line. */
  finish(): void;
}

/** A progress bar for `total` steps, or a no-op when stderr is not a TTY (or `enabled` is false). */
export function progressBar(total: number, title: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { update: () => {}, finish: () => {} };
  const width = 28;
  const started = Date.now();
  let lastDraw = 0;
  const draw = (done: number, label: string): void => {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(fraction * width);
    const elapsed = (Date.now() - started) / 1000;
    const eta = fraction > 0 && fraction < 1 ? ` eta ${Math.ceil((elapsed / fraction) * (1 - fraction))}s` : '';
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    process.stderr.write(`\r\x1b[2K${title} ${bar} ${done}/${total}${eta} ${label}`);
  };
  return {
    update(done, label = '') {
      const now = Date.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      draw(done, label);
    },
    finish() {
      process.stderr.write('\r\x1b[2K');
    },
  };
}
