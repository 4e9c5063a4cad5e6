/**
 * Worker-thread entry point for {@link PaillierWorkerPool} (loaded by piscina).
 *
 * @module
 */
import { runPaillierTask, type PaillierTask } from './paillier-tasks.js';

export default function handle(task: PaillierTask): bigint[] {
  return runPaillierTask(task);
}
