/**
 * One line per command family: add yours here.
 *
 * @module
 */
import type { Command } from 'commander';
import { registerDataCommands } from './data.js';

export function registerCommands(program: Command): void {
  void program;
  registerDataCommands(program);
}
