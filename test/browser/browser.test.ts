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

test('Chromium: encrypted predictions from a Web Worker (Paillier with 2048-bit keys, and CKKS) equal the Node client and the plaintext model; scores for every class; the owner page asks for the key', { skip: available ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`, timeout: 420_000 }, async () => {
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

  // Scores for every class, what a round is, a favicon.
  const page1 = await page.evaluate(() => ({
    scores: document.querySelectorAll('#scores tr').length,
    top: document.querySelector('#scores tr.top')?.textContent ?? '',
    icon: document.querySelector('link[rel="icon"]')?.getAttribute('href') ?? '',
    text: document.body.textContent ?? '',
  }));
  assert.equal(page1.scores, 10, 'one score row per class');
  assert.match(page1.top, /%/);
  assert.match(page1.icon, /^data:image\/svg\+xml/);
  assert.match(page1.text, /A round is one trip between the service and your browser/);

  // The same image with CKKS (keys made in the worker, the protocol over one WebSocket).
  await page.selectOption('#scheme', 'ckks');
  await page.click('#predict');
  await page.waitForFunction(() => {
    const r = document.getElementById('result');
    return r?.dataset['scheme'] === 'ckks' || r?.dataset['error'] !== undefined;
  }, undefined, { timeout: 180_000 });
  const ckks = await page.evaluate(() => ({ ...document.getElementById('result')!.dataset }));
  assert.equal(ckks['error'], undefined, ckks['error']);
  assert.equal(Number(ckks['label']), node.label, 'CKKS in the browser predicts what the plaintext model does');
  (JSON.parse(ckks['logits']!) as number[]).forEach((v, j) => assert.ok(Math.abs(v - plain[j]!) < 0.05, `CKKS logit ${j}: browser ${v}, plaintext ${plain[j]}`));
  assert.deepEqual(errors, []);

  // The owner page shows remove buttons only once the owner key is accepted.
  await page.goto(`${server.url}/owner`);
  await page.waitForSelector(`tr[data-id="${modelId}"]`);
  assert.equal(await page.locator('#models button').count(), 0, 'no remove buttons without the key');
  await page.fill('#api-key', API_KEY);
  await page.click('#refresh');
  await page.waitForSelector(`tr[data-id="${modelId}"] button`);
  await page.close();
});
