/**
 * One line per command family: add yours here.
 *
 * @module
 */
import type { Command } from 'commander';

export function registerCommands(program: Command): void {
  void program;
}
