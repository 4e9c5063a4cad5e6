// A tiny polynomial network as ONNX bytes, for the ckks-poly tests (one full batch costs the same
// for any number of images, so the network, not the image count, keeps them fast).
import { buildModel, floatTensor, randoms } from '../nn/onnx-helpers.js';

/** 1×28×28 → conv 5×5 stride 4 (1×6×6) → 0.1x² + 0.5x + 0.2 → flatten → dense 10. */
export function tinyPolyOnnx(): Uint8Array {
  return buildModel({
    sampleShape: [1, 28, 28],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w', 'b'], outputs: ['c'], attrs: { strides: { ints: [4, 4] } } },
      { op: 'Mul', inputs: ['c', 'c'], outputs: ['sq'] },
      { op: 'Mul', inputs: ['sq', 'a2'], outputs: ['t2'] },
      { op: 'Mul', inputs: ['c', 'a1'], outputs: ['t1'] },
      { op: 'Add', inputs: ['t2', 't1'], outputs: ['s'] },
      { op: 'Add', inputs: ['s', 'a0'], outputs: ['p'] },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'd', 'e'], outputs: ['logits'], attrs: { transB: { i: 1 } } },
    ],
    initializers: [
      floatTensor('w', [1, 1, 5, 5], randoms(25, 1, 0.3)),
      floatTensor('b', [1], [0.1]),
      floatTensor('a2', [], [0.1]),
      floatTensor('a1', [], [0.5]),
      floatTensor('a0', [], [0.2]),
      floatTensor('d', [10, 36], randoms(360, 2)),
      floatTensor('e', [10], randoms(10, 3)),
    ],
    output: 'logits',
  });
}
