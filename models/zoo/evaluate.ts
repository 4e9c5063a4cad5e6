/**
 * Plaintext accuracy of every zoo model three ways: blindml's executor on the model as blindml
 * imports it, onnxruntime-web on the .onnx file, and PyTorch (recorded by the training script in
 * <model>.json). Evaluated on the committed evaluation images of each model and, for the
 * Fashion-MNIST models, on all 10,000 test images (from the installed data set, if present).
 *
 * Run from the repository root: npx tsx models/zoo/evaluate.ts
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { readIdxFile } from '../../src/data/files.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { accuracy, argmaxRows, runPlaintext } from '../../src/nn/plaintext.js';
import type { Model } from '../../src/nn/model.js';

ort.env.wasm.numThreads = 1;

const ZOO = new URL('./', import.meta.url);
const MODELS = ['resnet-style', 'mobilenet-style', 'inception-style', 'keras-style', 'lenet5', 'poly-residual'] as const;

interface Row {
  model: string;
  parameters: number;
  set: string;
  images: number;
  blindml: number;
  onnxruntime: number;
  pytorch: number | undefined;
  maxLogitDifference: number;
}

async function runOrt(bytes: Uint8Array, x: Float32Array, model: Model): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  try {
    const out = new Float32Array((x.length / model.inputSize) * model.outputSize);
    const chunk = 500;
    for (let first = 0; first * model.inputSize < x.length; first += chunk) {
      const part = x.subarray(first * model.inputSize, Math.min(x.length, (first + chunk) * model.inputSize));
      const count = part.length / model.inputSize;
      const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', part, [count, ...model.inputShape]) };
      const result = await session.run(feeds);
      out.set(result[session.outputNames[0]!]!.data as Float32Array, first * model.outputSize);
    }
    return out;
  } finally {
    await session.release();
  }
}

/** The full Fashion-MNIST test set in the model's input shape (padded to 32 × 32 for LeNet-5). */
function fashionTest(model: Model): { x: Float32Array; labels: Uint8Array } | undefined {
  let test;
  try {
    test = loadFashionMnist('test');
  } catch {
    return undefined;
  }
  if (model.inputSize === 28 * 28) return { x: test.images, labels: test.labels };
  const size = model.inputShape[model.inputShape.length - 1]!;
  const pad = (size - 28) / 2;
  const x = new Float32Array(test.count * size * size);
  for (let i = 0; i < test.count; i++) {
    for (let r = 0; r < 28; r++) {
      x.set(test.images.subarray((i * 28 + r) * 28, (i * 28 + r + 1) * 28), i * size * size + (r + pad) * size + pad);
    }
  }
  return { x, labels: test.labels };
}

async function evaluate(name: string): Promise<Row[]> {
  const bytes = readFileSync(new URL(`${name}.onnx`, ZOO));
  const info = JSON.parse(readFileSync(new URL(`${name}.json`, ZOO), 'utf8')) as { pytorchAccuracy: Record<string, number> };
  const model = importOnnx(bytes);
  const images = readIdxFile(new URL(`data/${name}-eval-images.idx.gz`, ZOO).pathname);
  const labels = readIdxFile(new URL(`data/${name}-eval-labels.idx.gz`, ZOO).pathname).data;
  const sets: Array<{ set: string; x: Float32Array; labels: ArrayLike<number>; pytorch: number | undefined }> = [
    { set: `committed ${labels.length}`, x: Float32Array.from(images.data, (v) => v / 255), labels, pytorch: info.pytorchAccuracy[`committed ${labels.length}`] },
  ];
  const full = name === 'resnet-style' ? undefined : fashionTest(model);
  const fullKey = Object.keys(info.pytorchAccuracy).find((k) => k.startsWith('fashion-mnist test'));
  if (full && fullKey) sets.push({ set: 'Fashion-MNIST test', x: full.x, labels: full.labels, pytorch: info.pytorchAccuracy[fullKey] });
  const rows: Row[] = [];
  for (const s of sets) {
    const ours = runPlaintext(model, s.x);
    const theirs = await runOrt(bytes, s.x, model);
    let diff = 0;
    for (let i = 0; i < ours.length; i++) diff = Math.max(diff, Math.abs(ours[i]! - theirs[i]!));
    rows.push({
      model: name,
      parameters: model.parameterCount,
      set: s.set,
      images: s.labels.length,
      blindml: accuracy(argmaxRows(ours, model.outputSize), s.labels),
      onnxruntime: accuracy(argmaxRows(theirs, model.outputSize), s.labels),
      pytorch: s.pytorch,
      maxLogitDifference: diff,
    });
  }
  return rows;
}

const pct = (v: number | undefined) => (v === undefined ? '—' : `${(100 * v).toFixed(2)}%`);
console.log('| model | parameters (blindml) | images | blindml executor | onnxruntime-web | PyTorch | max logit difference |');
console.log('|---|---|---|---|---|---|---|');
for (const name of MODELS) {
  for (const r of await evaluate(name)) {
    console.log(`| ${r.model} | ${r.parameters.toLocaleString('en')} | ${r.set} (${r.images}) | ${pct(r.blindml)} | ${pct(r.onnxruntime)} | ${pct(r.pytorch)} | ${r.maxLogitDifference.toExponential(1)} |`);
  }
}
