// The smallest model the registry and service tests need: 784 → 8 → ReLU → 10.
import { buildModel, floatTensor, randoms } from '../nn/onnx-helpers.js';

/** A 784 → 8 → ReLU → 10 ONNX model that compiles in a blink; each `seed` gives another model (another id). */
export function tinyMlp(seed: number): Uint8Array {
  return buildModel({
    sampleShape: [784],
    nodes: [
      { op: 'Gemm', inputs: ['input', 'w1', 'b1'], outputs: ['h'], attrs: { transB: { i: 1 } } },
      { op: 'Relu', inputs: ['h'], outputs: ['r'] },
      { op: 'Gemm', inputs: ['r', 'w2', 'b2'], outputs: ['out'], attrs: { transB: { i: 1 } } },
    ],
    initializers: [
      floatTensor('w1', [8, 784], randoms(8 * 784, seed, 0.05)),
      floatTensor('b1', [8], randoms(8, seed + 1, 0.1)),
      floatTensor('w2', [10, 8], randoms(80, seed + 2, 0.3)),
      floatTensor('b2', [10], randoms(10, seed + 3, 0.1)),
    ],
    output: 'out',
  });
}
