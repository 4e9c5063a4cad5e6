/**
 * What statistical smudging costs in interactive CKKS inference: the default parameters against
 * the older heuristic margin (HEURISTIC_SMUDGING), on models/fashion-small.onnx, images
 * alternating between the two so both see the same machine load. Prints one JSON line per
 * configuration; CPU time (this process: client and service in one thread) is the figure to
 * compare on a shared machine, wall time follows the load. Usage: node --import tsx scripts/ckks-smudging-cost.ts [images] [model]
 */
import { readFileSync } from 'node:fs';
import { importOnnx, runPlaintext } from '../src/nn/index.js';
import { loadFashionMnistSample } from '../src/data/fashion-mnist.js';
import {
  CkksInferenceClient, CkksInferenceService, DEFAULT_CKKS_PROTOCOL, HEURISTIC_SMUDGING, clientActivations, compileCkksModel, inProcessCkksTransport,
} from '../src/protocol/ckks-inference/index.js';
import { CkksServiceKeys } from '../src/schemes/ckks/index.js';
import { smudgingZero } from '../src/protocol/ckks-inference/smudging.js';

const images = Number(process.argv[2] ?? 6);
const modelPath = process.argv[3] ?? new URL('../models/fashion-small.onnx', import.meta.url).pathname;
const model = importOnnx(readFileSync(modelPath));
const data = loadFashionMnistSample({ limit: 100 + images });
const calibration = data.images.subarray(0, 100 * 784);
const evalImages = data.images.subarray(100 * 784);
const plain = runPlaintext(model, evalImages);

const configs = [
  { name: 'statistical (default)', params: DEFAULT_CKKS_PROTOCOL },
  { name: 'heuristic (HEURISTIC_SMUDGING)', params: { ...DEFAULT_CKKS_PROTOCOL, ...HEURISTIC_SMUDGING } },
];
const runs = await Promise.all(
  configs.map(async (c) => {
    const compiled = compileCkksModel(model, calibration, c.params);
    const service = await CkksInferenceService.create(compiled);
    const client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
    return { ...c, compiled, service, client, ms: [] as number[], cpuMs: 0, bytes: 0, maxError: 0 };
  }),
);
for (let i = 0; i < images; i++) {
  for (const r of runs) {
    const t = performance.now();
    const cpu = process.cpuUsage();
    const { logits, stats } = await r.client.predict(evalImages.subarray(i * 784, (i + 1) * 784));
    const used = process.cpuUsage(cpu);
    r.cpuMs += (used.user + used.system) / 1000;
    r.ms.push(performance.now() - t);
    r.bytes += stats.bytesUp + stats.bytesDown;
    logits.forEach((v, j) => (r.maxError = Math.max(r.maxError, Math.abs(v - plain[i * 10 + j]!))));
  }
}
for (const r of runs) {
  // The smudging ciphertext alone (what `precompute` makes ahead of time), 10 of them.
  const keys = CkksServiceKeys.load(r.service.context, (r.client as unknown as { keyring: { exportPublic(o: object): never } }).keyring.exportPublic({ galoisSteps: [] }));
  const { inputScaleBits, weightScaleBits, floodBits } = r.compiled.params;
  const cpu = process.cpuUsage();
  for (let k = 0; k < 10; k++) smudgingZero(r.service.context, keys, 2 ** (inputScaleBits + weightScaleBits), floodBits).free();
  const used = process.cpuUsage(cpu);
  const floodCpuMs = (used.user + used.system) / 1000 / 10;
  keys.dispose();
  const sorted = [...r.ms].sort((a, b) => a - b);
  console.log(JSON.stringify({
    config: r.name, ckks: r.compiled.params.ckks, images, msPerImage: Math.round(r.ms.reduce((a, b) => a + b, 0) / images), median: Math.round(sorted[sorted.length >> 1]!),
    cpuMsPerImage: Math.round(r.cpuMs / images), kbPerImage: Math.round(r.bytes / images / 1024), maxLogitError: r.maxError, floodCpuMs: Math.round(floodCpuMs * 10) / 10,
  }));
  r.client.dispose();
  r.service.dispose();
}
