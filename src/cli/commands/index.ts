/**
 * Every command family of the CLI, one line each.
 *
 * @module
 */
import type { Command } from 'commander';
import { registerBenchCommands } from './bench.js';
import { registerCompileCommands } from './compile.js';
import { registerDataCommands } from './data.js';
import { registerDemoCommand } from './demo.js';
import { registerInferCommand } from './infer.js';
import { registerModelCommands } from './model.js';
import { registerPaillierCommands } from './paillier.js';
import { registerPredictCommand } from './predict.js';
import { registerServeCommands } from './serve.js';
import { registerTrainCommand } from './train.js';
import { registerWorkerCommand } from './worker.js';

export function registerCommands(program: Command): void {
  registerCompileCommands(program);
  registerDataCommands(program);
  registerBenchCommands(program);
  registerDemoCommand(program);
  registerInferCommand(program);
  registerModelCommands(program);
  registerPaillierCommands(program);
  registerPredictCommand(program);
  registerServeCommands(program);
  registerTrainCommand(program);
  registerWorkerCommand(program);
}
