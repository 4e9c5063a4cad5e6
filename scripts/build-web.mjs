#!/usr/bin/env node
// Builds the browser pages into dist/public/ (npm run build runs it after tsc):
// app.js (demo page), worker.js (keys and cryptography in a Web Worker), owner.js, the HTML, the CSS.
// Usage: node scripts/build-web.mjs [outDir]
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(root, 'dist', 'public');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ['app', 'worker', 'owner'].map((n) => join(root, 'src', 'web', `${n}.ts`)),
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  // Node's WebSocket for the SDK; browsers use their own, so the import is never reached there.
  external: ['ws'],
  // SEAL's ES build for Web Workers (the CKKS client runs in the demo's worker); the package's
  // default browser entry is a UMD bundle that reaches for Node's `url` module.
  alias: { 'node-seal': join(root, 'node_modules', 'node-seal', 'throws_wasm_worker_es.js') },
  logLevel: 'warning',
});
for (const f of ['index.html', 'owner.html', 'style.css']) copyFileSync(join(root, 'src', 'web', f), join(out, f));
