/**
 * ckks-poly sessions and jobs in this process (the default without `--redis`): the service keeps
 * each session's loaded keys, a job runs on the service's worker threads as soon as it is
 * submitted, and its reply waits in memory until it is fetched or `resultTtlMs` passes.
 *
 * @module
 */
import { encodePolyMessage, type CkksPolyService } from '../../protocol/ckks-poly/index.js';
import { refusals, type JobPoll, type PolyJobBackend, type PolyLimits, type Refusal, type Slot } from './types.js';

interface Job {
  readonly ip: string;
  status: 'running' | 'done';
  /** The answer (a `result` or an `error` message) once done. */
  reply?: Uint8Array;
  readonly done: Promise<void>;
  expires?: ReturnType<typeof setTimeout>;
}

/**
 * Creates the in-process backend over `service` (which holds the sessions' keys and evaluates).
 * `observe` gets each job's duration in seconds.
 */
export function inProcessJobs(service: CkksPolyService, limits: PolyLimits, observe: (seconds: number) => void): PolyJobBackend {
  const sessions = new Map<string, { ip: string; modelId: string; used: number }>();
  const jobs = new Map<string, Job>();

  // Requests admitted whose bodies are still arriving count against the limits too (else many
  // uploads started at once would all pass); each is released when its response ends.
  const uploading = { sessions: new Map<string, number>(), jobs: new Map<string, number>() };
  type Kind = keyof typeof uploading;
  const inFlight = (kind: Kind, ip?: string) => (ip === undefined ? [...uploading[kind].values()].reduce((a, b) => a + b, 0) : (uploading[kind].get(ip) ?? 0));
  const held = (kind: Kind, ip: string) => [...(kind === 'jobs' ? jobs : sessions).values()].filter((v) => v.ip === ip).length + inFlight(kind, ip);
  function reserve(kind: Kind, ip: string): Slot {
    uploading[kind].set(ip, inFlight(kind, ip) + 1);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        const left = inFlight(kind, ip) - 1;
        if (left > 0) uploading[kind].set(ip, left);
        else uploading[kind].delete(ip);
      },
    };
  }

  function expireSessions(): void {
    const now = Date.now();
    for (const [id, s] of sessions) {
      if (now - s.used < limits.sessionIdleMs) continue;
      sessions.delete(id);
      service.closeSession(id);
    }
  }
  const sweeper = setInterval(expireSessions, Math.min(limits.sessionIdleMs, 30_000));
  sweeper.unref();

  return {
    async reserveSession(ip): Promise<Slot | Refusal> {
      expireSessions();
      if (held('sessions', ip) >= limits.sessionsPerClient) return refusals.sessionsPerClient(limits);
      if (sessions.size + inFlight('sessions') >= limits.sessions) return refusals.sessions();
      return reserve('sessions', ip);
    },
    async addSession(_slot, s) {
      sessions.set(s.id, { ip: s.ip, modelId: s.modelId, used: Date.now() });
    },
    async touchSession(id) {
      const session = sessions.get(id);
      if (!session) return undefined;
      session.used = Date.now();
      return session.modelId;
    },
    async reserveJob(ip): Promise<Slot | Refusal> {
      if (held('jobs', ip) >= limits.jobsPerClient) return refusals.jobsPerClient(limits);
      if (jobs.size + inFlight('jobs') >= limits.jobs) return refusals.jobs();
      return reserve('jobs', ip);
    },
    async submit(_slot, { ip, request }) {
      const id = globalThis.crypto.randomUUID();
      const started = performance.now();
      const job: Job = {
        ip,
        status: 'running',
        done: service
          .handle(request)
          .then(
            (out) => void (job.reply = out),
            () => void (job.reply = encodePolyMessage({ type: 'error', code: 'ERR_INTERNAL', message: 'internal error', blobs: [] })),
          )
          .finally(() => {
            job.status = 'done';
            observe((performance.now() - started) / 1000);
            job.expires = setTimeout(() => jobs.delete(id), limits.resultTtlMs);
            job.expires.unref();
          }),
      };
      jobs.set(id, job);
      return id;
    },
    async poll(id, waitMs): Promise<JobPoll> {
      const job = jobs.get(id);
      if (!job) return { state: 'unknown' };
      if (job.status === 'running' && waitMs > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([job.done, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
        clearTimeout(timer);
      }
      if (job.status === 'running' || !job.reply) return { state: 'pending', status: 'running' };
      // The result goes out once: the service keeps nothing after.
      jobs.delete(id);
      clearTimeout(job.expires);
      return { state: 'done', reply: job.reply };
    },
    sessions: () => sessions.size,
    jobs: () => jobs.size,
    forget(modelId) {
      for (const [id, s] of sessions) if (s.modelId === modelId) sessions.delete(id);
    },
    async close() {
      clearInterval(sweeper);
      await Promise.allSettled([...jobs.values()].map((j) => j.done));
      for (const j of jobs.values()) clearTimeout(j.expires);
      jobs.clear();
    },
  };
}
