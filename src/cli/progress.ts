/**
 * What a long command is doing, on stderr from its first second (cli-progress draws and redraws
 * the line): first the set-up phases it goes through (key generation, compilation, precomputation)
 * with the time each has taken, then a bar over the items with an ETA. Drawn only when stderr is a
 * terminal and the command does not print JSON, so logs and piped output stay clean.
 *
 * The ETA is honest: it counts from the first item-progress call after the last set-up phase
 * (`update(done)` right after it), never the phases themselves, and extrapolates the items' rate.
 *
 * @module
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Shows a set-up phase (`generating 2048-bit Paillier keys`) with its elapsed time, before items start. */
  phase(text: string): void;
  /**
   * Advances to `done` of the items (the first call starts the ETA clock) with an optional label;
   * `total` replaces the count given at construction (for runs that learn it late).
   */
  update(done: number, label?: string, total?: number): void;
  /** Clears the line. */
  finish(): void;
}

const NOOP: Progress = { phase: () => {}, update: () => {}, finish: () => {} };

/** Whether progress is drawn: stderr is a terminal and the command prints no JSON. */
export function progressEnabled(json?: boolean): boolean {
  return process.stderr.isTTY === true && !json;
}

interface Payload {
  readonly phase: string;
  readonly phaseStart: number;
  readonly label: string;
  readonly eta: string;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Whole seconds as `42s` or `3m07s`. */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * Seconds left at `done` of `total` items, from the rate since the clock started (`start` ms, with
 * `doneAtStart` items already done then); undefined until one item has finished since then.
 */
export function honestEta(now: number, start: number, doneAtStart: number, done: number, total: number): number | undefined {
  const finished = done - doneAtStart;
  if (finished <= 0 || done >= total) return undefined;
  return ((now - start) / 1000 / finished) * (total - done);
}

/**
 * A progress display for `total` items titled `title`, or a no-op when `enabled` is false (by
 * default: unless stderr is a terminal).
 */
export function progressBar(items: number, title: string, enabled = progressEnabled()): Progress {
  if (!enabled) return NOOP;
  let tick = 0;
  let total = items;
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 24,
    fps: 5,
    format: (options, params, payload: Payload) => {
      const elapsed = formatSeconds((Date.now() - payload.phaseStart) / 1000);
      if (payload.phase) return `${SPINNER[tick++ % SPINNER.length]} ${title}: ${payload.phase}… ${elapsed}`;
      const width = options.barsize ?? 24;
      const filled = Math.round((params.total > 0 ? params.value / params.total : 1) * width);
      const drawn = '█'.repeat(filled) + '░'.repeat(width - filled);
      return `${title} ${drawn} ${params.value}/${params.total}${payload.eta}${payload.label ? ` ${payload.label}` : ''}`;
    },
  });
  let started = false;
  let clock: { start: number; done: number } | undefined;
  const begin = (payload: Payload): void => {
    if (!started) bar.start(total, 0, payload);
    started = true;
  };
  return {
    phase(text) {
      // Items after a set-up phase restart the ETA clock: the phase's time is not an item's.
      clock = undefined;
      const payload = { phase: text, phaseStart: Date.now(), label: '', eta: '' };
      begin(payload);
      bar.update(payload);
    },
    update(done, label = '', newTotal = total) {
      const now = Date.now();
      if (newTotal !== total) {
        total = newTotal;
        if (started) bar.setTotal(total);
      }
      clock ??= { start: now, done };
      const eta = honestEta(now, clock.start, clock.done, done, total);
      const payload = { phase: '', phaseStart: now, label, eta: eta === undefined ? '' : ` eta ${formatSeconds(eta)}` };
      begin(payload);
      bar.update(done, payload);
    },
    finish() {
      if (started) bar.stop();
    },
  };
}
