/**
 * Where ckks-poly sessions and batch jobs live: in this process (the default) or in Redis with
 * BullMQ (`serve --redis`). The HTTP routes (`ckks-poly-routes.ts`) check every request the same
 * way for both and leave storing, counting, running and answering polls to a {@link PolyJobBackend}.
 *
 * @module
 */
import type { PublicBundle } from '../../schemes/ckks/index.js';

/** Limits of the ckks-poly front; every one has a default fit for one small machine. */
export interface PolyLimits {
  /** Jobs running or holding an unfetched result, per client address. Default 2. */
  readonly jobsPerClient: number;
  /** Jobs running or holding results, all clients together (each holds up to ~155 MB while it runs). Default 4. */
  readonly jobs: number;
  /** Unfetched results are dropped after this long. Default 10 min. */
  readonly resultTtlMs: number;
  /** Sessions (uploaded keys) per client address. Default 4. */
  readonly sessionsPerClient: number;
  /** Sessions, all clients together. Default 32. */
  readonly sessions: number;
  /** Sessions without a job for this long are dropped. Default 10 min. */
  readonly sessionIdleMs: number;
  /** Largest request accepted whatever the model (the per-model bound is usually smaller). Default 512 MiB. */
  readonly maxBodyBytes: number;
}

export const DEFAULT_POLY_LIMITS: PolyLimits = {
  jobsPerClient: 2,
  jobs: 4,
  resultTtlMs: 600_000,
  sessionsPerClient: 4,
  sessions: 32,
  sessionIdleMs: 600_000,
  maxBodyBytes: 512 * 2 ** 20,
};

/** A request refused before its body is read: HTTP status, error code, one line. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** Seconds for a `retry-after` header. */
  readonly retryAfter?: number;
}

/** A place held for one client while its upload arrives (it counts against the limits meanwhile). */
export interface Slot {
  /** Gives the place back (the request ended); harmless after the slot became a session or job. */
  release(): void;
}

/** The model a job runs, as the registry stores it (workers compile it themselves). */
export interface ModelSource {
  readonly onnx: Uint8Array;
  readonly calibration?: Uint8Array;
}

/** What a poll finds. */
export type JobPoll =
  /** Waiting for a worker (`queued`) or being evaluated (`running`); progress in [0, 1] when known. */
  | { readonly state: 'pending'; readonly status: 'queued' | 'running'; readonly progress?: number }
  /** Finished: a `result` or an `error` protocol message, handed out once (the backend keeps nothing after). */
  | { readonly state: 'done'; readonly reply: Uint8Array }
  /** Fetched already, expired, or never existed. */
  | { readonly state: 'unknown' };

/** Storage, limits and execution of ckks-poly sessions and jobs. */
export interface PolyJobBackend {
  /**
   * Holds a session place for `ip`, or says why not (too many for the address, or for everyone).
   * @throws if the backing store is unreachable.
   */
  reserveSession(ip: string): Promise<Slot | Refusal>;
  /** Records a session whose keys the front has loaded and checked (turning `slot` into it). */
  addSession(slot: Slot, session: { readonly id: string; readonly ip: string; readonly modelId: string; readonly keys: PublicBundle }): Promise<void>;
  /** The model of a live session, restarting its idle clock; undefined when unknown or expired. */
  touchSession(id: string): Promise<string | undefined>;
  /** Holds a job place for `ip`, or says why not. */
  reserveJob(ip: string): Promise<Slot | Refusal>;
  /**
   * Starts a checked `infer` request as a job (turning `slot` into it).
   * @returns the job id.
   */
  submit(slot: Slot, job: { readonly ip: string; readonly modelId: string; readonly session: string; readonly request: Uint8Array; readonly source: () => ModelSource | Promise<ModelSource> }): Promise<string>;
  /** The job's state, waiting up to `waitMs` for it to finish; a finished job's reply is taken (once). */
  poll(id: string, waitMs: number): Promise<JobPoll>;
  /** Sessions holding keys (for /healthz; the last count seen where they are shared). */
  sessions(): number;
  /** Jobs running or holding results (for /healthz; the last count seen where they are shared). */
  jobs(): number;
  /** Drops a removed model's sessions held here. */
  forget(modelId: string): void;
  /** Waits for running in-process jobs, frees everything held here. */
  close(): Promise<void>;
}

/** The refusals both backends give, word for word. */
export const refusals = {
  sessionsPerClient: (limits: PolyLimits): Refusal => ({ status: 429, code: 'ERR_TOO_MANY_SESSIONS', message: `at most ${limits.sessionsPerClient} ckks-poly sessions per client; reuse one` }),
  sessions: (): Refusal => ({ status: 503, code: 'ERR_BUSY', message: 'the service holds as many ckks-poly sessions as it can; retry later' }),
  jobsPerClient: (limits: PolyLimits): Refusal => ({ status: 429, code: 'ERR_TOO_MANY_JOBS', message: `at most ${limits.jobsPerClient} ckks-poly jobs per client at once (running or waiting to be fetched)` }),
  jobs: (): Refusal => ({ status: 503, code: 'ERR_BUSY', message: 'the service runs as many ckks-poly jobs as it can; retry later', retryAfter: 5 }),
};

/** Whether a reservation was refused. */
export function isRefusal(r: Slot | Refusal): r is Refusal {
  return 'status' in r;
}
