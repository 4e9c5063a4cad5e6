/**
 * `npm run charts`: redraws docs/charts/*.svg from the numbers in docs/results/*.json (the
 * benchmark scripts do this themselves after each run). Node-only.
 *
 * @module
 */
import { writeCharts } from './charts.js';

const written = await writeCharts('docs/results', 'docs/charts');
process.stdout.write(`${written.join('\n')}\n`);
