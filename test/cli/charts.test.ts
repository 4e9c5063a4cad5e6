import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { recordTraining, writeCharts, writeResults } from '../../src/bench/charts.js';

/** Text content of every <text> element, in document order. */
function texts(svg: string): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'text') (Array.isArray(v) ? v : [v]).forEach((t) => out.push(typeof t === 'object' ? String((t as Record<string, unknown>)['#text'] ?? '') : String(t)));
        else walk(v);
      }
    }
  };
  walk(new XMLParser({ ignoreAttributes: false }).parse(svg));
  return out;
}

test('the chart writer turns sample numbers into valid SVG files that show them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-charts-'));
  try {
    const results = join(dir, 'results');
    const charts = join(dir, 'charts');
    writeResults(results, 'inference', {
      note: 'sample numbers',
      rows: [
        { model: 'small.onnx', scheme: 'Paillier', mode: 'latency', msPerImage: 868 },
        { model: 'small.onnx', scheme: 'CKKS', mode: 'latency', msPerImage: 68 },
        { model: 'poly.onnx', scheme: 'ckks-poly', mode: 'one round', msPerImage: 3.07 },
      ],
    });
    writeResults(results, 'paillier', { note: 'sample numbers', rows: [{ op: 'encrypt', ratio: 22.5 }, { op: 'decrypt', ratio: 2.8 }] });
    await recordTraining(results, charts, [
      { series: 'toy: accuracy', run: 'plaintext twin', epoch: 1, value: 0.7 },
      { series: 'toy: accuracy', run: 'plaintext twin', epoch: 2, value: 0.8 },
    ], 'first run');
    // A later run replaces its own epoch and keeps the others.
    await recordTraining(results, charts, [
      { series: 'toy: accuracy', run: 'plaintext twin', epoch: 2, value: 0.85 },
      { series: 'toy: accuracy', run: 'encrypted', epoch: 2, value: 0.84 },
    ], 'second run');
    const training = JSON.parse(readFileSync(join(results, 'training.json'), 'utf8'));
    assert.equal(training.note, 'first run', 'the note describes the file, not the last run');
    assert.deepEqual(training.points.map((p: { run: string; epoch: number; value: number }) => [p.run, p.epoch, p.value]), [['plaintext twin', 1, 0.7], ['plaintext twin', 2, 0.85], ['encrypted', 2, 0.84]]);

    const written = await writeCharts(results, charts);
    assert.deepEqual(readdirSync(charts).sort(), ['inference-latency.svg', 'inference-throughput.svg', 'paillier-ratios.svg', 'training-curves.svg']);
    assert.equal(written.length, 4);
    for (const file of written) {
      const svg = readFileSync(file, 'utf8');
      assert.equal(XMLValidator.validate(svg), true, file);
      assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*width="\d+(\.\d+)?"[^>]*height="\d+(\.\d+)?"/);
    }
    const latency = texts(readFileSync(join(charts, 'inference-latency.svg'), 'utf8'));
    for (const label of ['Encrypted inference: time per image', 'small, latency', 'poly, one round', 'Paillier', 'CKKS', 'ckks-poly']) assert.ok(latency.includes(label), `${label} in ${latency.join(' | ')}`);
    const throughput = texts(readFileSync(join(charts, 'inference-throughput.svg'), 'utf8'));
    assert.ok(throughput.includes('poly, ckks-poly, one round'));
    assert.ok(texts(readFileSync(join(charts, 'training-curves.svg'), 'utf8')).includes('toy: accuracy'));
    assert.ok(texts(readFileSync(join(charts, 'paillier-ratios.svg'), 'utf8')).includes('decrypt'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
