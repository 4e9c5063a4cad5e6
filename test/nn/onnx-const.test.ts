import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldConstant, type FoldInput } from '../../src/nn/onnx-const.js';
import type { ConstTensor } from '../../src/nn/onnx-proto.js';
import { FormatError } from '../../src/errors.js';

const ints = (dims: number[], data: number[]): ConstTensor => ({ type: 'int', dims, data });
const floats = (dims: number[], data: number[]): ConstTensor => ({ type: 'float', dims, data: Float32Array.from(data) });

function fold(op: string, inputs: (ConstTensor | undefined)[], attrs: Record<string, number | number[] | ConstTensor> = {}, opset = 13) {
  const n: FoldInput = {
    op,
    opset,
    inputs,
    int: (name, fallback) => (typeof attrs[name] === 'number' ? (attrs[name] as number) : fallback),
    ints: (name) => (Array.isArray(attrs[name]) ? (attrs[name] as number[]) : undefined),
    tensor: (name) => (attrs[name] !== undefined && typeof attrs[name] === 'object' && !Array.isArray(attrs[name]) ? (attrs[name] as ConstTensor) : undefined),
  };
  const out = foldConstant(n);
  assert.ok(typeof out !== 'string', String(out));
  return { dims: [...out.dims], data: Array.from(out.data, Number) };
}

test('shape arithmetic on constants folds with ONNX semantics', () => {
  const m = ints([2, 3], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(fold('Shape', [m], { start: -1 }), { dims: [1], data: [3] });
  assert.deepEqual(fold('Gather', [m, ints([2], [1, -3])], { axis: 1 }), { dims: [2, 2], data: [2, 1, 5, 4] });
  assert.deepEqual(fold('Unsqueeze', [ints([], [7]), ints([1], [0])]), { dims: [1], data: [7] });
  assert.deepEqual(fold('Unsqueeze', [ints([2], [1, 2])], { axes: [0] }, 11), { dims: [1, 2], data: [1, 2] });
  assert.deepEqual(fold('Squeeze', [ints([1, 2, 1], [1, 2])]), { dims: [2], data: [1, 2] });
  assert.deepEqual(fold('Concat', [ints([1], [1]), ints([2], [-1, 5])], { axis: 0 }), { dims: [3], data: [1, -1, 5] });
  assert.deepEqual(fold('ConstantOfShape', [ints([1], [3])], { value: ints([1], [0]) }), { dims: [3], data: [0, 0, 0] });
  // F.pad's exported pads: reverse pairs with a negative-step Slice from INT64_MAX-like bounds.
  const pads = ints([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const sliced = fold('Slice', [pads, ints([1], [-1]), ints([1], [-Number.MAX_SAFE_INTEGER]), ints([1], [0]), ints([1], [-1])]);
  assert.deepEqual(sliced, { dims: [4, 2], data: [7, 8, 5, 6, 3, 4, 1, 2] });
  assert.deepEqual(fold('Slice', [m, ints([1], [1]), ints([1], [Number.MAX_SAFE_INTEGER]), ints([1], [1])]), { dims: [2, 2], data: [2, 3, 5, 6] });
  assert.deepEqual(fold('Transpose', [m], { perm: [1, 0] }), { dims: [3, 2], data: [1, 4, 2, 5, 3, 6] });
  assert.deepEqual(fold('Reshape', [m, ints([2], [0, -1])]), { dims: [2, 3], data: [1, 2, 3, 4, 5, 6] });
  assert.deepEqual(fold('Cast', [floats([2], [1.7, -1.7])], { to: 7 }), { dims: [2], data: [1, -1] });
  assert.deepEqual(fold('Div', [ints([2], [7, -7]), ints([], [2])]), { dims: [2], data: [3, -3] });
  assert.deepEqual(fold('Mul', [floats([2, 1], [1, 2]), floats([3], [1, 10, 100])]), { dims: [2, 3], data: [1, 10, 100, 2, 20, 200] });
  assert.deepEqual(fold('Range', [ints([], [0]), ints([], [7]), ints([], [3])]), { dims: [3], data: [0, 3, 6] });
  assert.deepEqual(fold('Expand', [ints([2, 1], [1, 2]), ints([2], [2, 2])]), { dims: [2, 2], data: [1, 1, 2, 2] });
  assert.equal(typeof foldConstant({ op: 'Relu', opset: 13, inputs: [m], int: (_n, f) => f, ints: () => undefined, tensor: () => undefined }), 'string');
});

test('folding refuses to build huge constants (a hostile file cannot exhaust memory at import)', () => {
  const huge = (op: string, inputs: ConstTensor[]) =>
    foldConstant({ op, opset: 13, inputs, int: (_n, f) => f, ints: () => undefined, tensor: () => undefined });
  assert.throws(() => huge('ConstantOfShape', [ints([2], [1e6, 1e6])]), /at most 16777216 values/);
  assert.throws(() => huge('Range', [ints([], [0]), ints([], [1e12]), ints([], [1])]), FormatError);
  assert.throws(() => huge('Expand', [ints([1], [1]), ints([2], [1e5, 1e5])]), FormatError);
});
