// A real browser (Debian's Chromium driven by playwright-core) runs an encrypted prediction with
// 2048-bit keys generated in a Web Worker, and gets what the Node client gets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { connect, registerModel } from '../../src/client/index.js';
import { realKeys } from '../helpers/keys.js';

const CHROMIUM = process.env['BLINDML_CHROMIUM'] ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-browser-'));
const onnx = readFileSync(join(root, 'models', 'fashion-small.onnx'));
const API_KEY = 'browser-test-key';
let server: BlindmlServer;
let context: BrowserContext;
let modelId: string;

before(async () => {
  if (!available) return;
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs'), join(dir, 'public')]);
  server = await startServer({ db: join(dir, 'r.db'), apiKey: API_KEY, port: 0, workers: 1, publicDir: join(dir, 'public'), logger: false });
  modelId = (await registerModel(server.url, API_KEY, onnx, { name: 'fashion-small' })).model.id;
  context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await context?.close();
  await server?.close(0);
  rmSync(dir, { recursive: true, force: true });
});

test('Chromium: an encrypted prediction with 2048-bit keys from a Web Worker equals the Node client', { skip: available ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`, timeout: 240_000 }, async () => {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/`);
  await page.waitForSelector(`#model option[value="${modelId}"]`, { state: 'attached' });
  await page.waitForFunction(() => document.getElementById('keys')?.textContent?.includes('2048-bit key ready'), undefined, { timeout: 120_000 });
  await page.click('canvas.sample[data-index="0"]');
  await page.click('#predict');
  await page.waitForFunction(() => {
    const r = document.getElementById('result');
    return r?.dataset['label'] !== undefined || r?.dataset['error'] !== undefined;
  }, undefined, { timeout: 120_000 });
  const got = await page.evaluate(() => {
    const d = document.getElementById('result')!.dataset;
    return { label: d['label'], logits: d['logits'], error: d['error'], bytesSent: d['bytesSent'], text: document.getElementById('result')!.textContent };
  });
  assert.equal(got.error, undefined, got.error);
  assert.deepEqual(errors, []);

  const sample = loadFashionMnistSample({ limit: 1 });
  const client = await connect(server.url, { keys: realKeys() });
  const node = await client.predict(modelId, sample.images).finally(() => client.close());
  const plain = runPlaintext(importOnnx(onnx), sample.images);
  assert.equal(Number(got.label), node.label, 'the browser and the Node client agree');
  assert.equal(node.label, argmaxRows(plain, 10)[0]);
  const logits = JSON.parse(got.logits!) as number[];
  logits.forEach((v, j) => assert.ok(Math.abs(v - node.logits[j]!) < 2e-3, `logit ${j}: browser ${v}, node ${node.logits[j]}`));
  assert.ok(Number(got.bytesSent) > 784 * 512, 'the browser sent 784 ciphertexts of 512 bytes and more');
  assert.match(got.text ?? '', /s end to end/);

  // The owner page lists the model with the key.
  await page.goto(`${server.url}/owner`);
  await page.fill('#api-key', API_KEY);
  await page.click('#refresh');
  await page.waitForSelector(`tr[data-id="${modelId}"]`);
  await page.close();
});
