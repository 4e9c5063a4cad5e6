/**
 * `blindml worker --redis redis://…`: a ckks-poly batch worker for services started with
 * `serve --redis` (BullMQ queue in Redis). Runs until SIGTERM or SIGINT: then it takes no new job,
 * finishes the running ones and exits. A worker killed outright loses nothing: its job goes back
 * to the queue once its lock lapses (`--lock-ms`) and another worker runs it.
 *
 * @module
 */
import type { Command } from 'commander';
import { startPolyWorker } from '../../server/jobs/worker.js';
import { redactUrl } from '../../server/jobs/redis-store.js';
import { positiveInt } from '../options.js';

interface WorkerOptions {
  redis: string;
  threads: number;
  lockMs: number;
  stalledCheckMs: number;
  maxStalled: number;
  quiet?: boolean;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run ckks-poly batch jobs from Redis for services started with serve --redis (BullMQ); SIGTERM finishes the running job, then exits')
    .requiredOption('--redis <url>', 'redis://host:port the services put their jobs in')
    .option('--threads <n>', 'jobs evaluated at once, one worker thread each', positiveInt, 1)
    .option('--lock-ms <n>', "a job's lock lasts this long without renewal: the job of a worker that died runs again elsewhere after it", positiveInt, 30_000)
    .option('--stalled-check-ms <n>', 'how often to look for jobs whose worker died', positiveInt, 30_000)
    .option('--max-stalled <n>', 'times a job may lose its worker before it fails for good', positiveInt, 2)
    .option('--quiet', 'no line per job')
    .action(async (o: WorkerOptions) => {
      const say = (line: string) => process.stderr.write(`blindml worker: ${line}\n`);
      const worker = await startPolyWorker({
        redis: o.redis,
        threads: o.threads,
        lockDurationMs: o.lockMs,
        stalledIntervalMs: o.stalledCheckMs,
        maxStalledCount: o.maxStalled,
        ...(o.quiet ? {} : { log: say }),
      });
      say(`taking ckks-poly jobs from ${redactUrl(o.redis)} (${o.threads} thread${o.threads === 1 ? '' : 's'})`);
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          say(`${signal}: finishing the running job${o.threads === 1 ? '' : 's'}, then exiting (a second signal exits at once; the job then runs again elsewhere)`);
          process.once(signal, () => process.exit(1));
          void worker.close().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      say(`stopped after ${worker.processed()} job${worker.processed() === 1 ? '' : 's'}`);
    });
}
