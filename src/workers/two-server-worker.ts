/**
 * Worker-thread entry point for {@link TwoServerWorkerPool} (loaded by piscina).
 *
 * @module
 */
import { runTwoServerTask, type TwoServerTask } from './two-server-tasks.js';

export default function handle(task: TwoServerTask): bigint[] {
  return runTwoServerTask(task);
}
