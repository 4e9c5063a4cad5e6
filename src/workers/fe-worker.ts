/**
 * Worker-thread entry point for {@link FeWorkerPool} (loaded by piscina).
 *
 * @module
 */
import { runFeTask, type FeTask, type FeTaskResult } from './fe-tasks.js';

export default function handle(task: FeTask): FeTaskResult {
  return runFeTask(task);
}
