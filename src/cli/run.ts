/**
 * Process entry point of the CLI (`bin/blindml.js` loads the compiled copy; during development
 * `npx tsx src/cli/run.ts ...` runs the sources).
 *
 * @module
 */
import { main } from './main.js';

process.exitCode = await main(process.argv);
