/**
 * Constant folding for the ONNX importer: the shape arithmetic exporters write around the real
 * layers (`view(x.size(0), -1)` becomes Shape → Gather → Unsqueeze → Concat → Reshape; `F.pad`
 * becomes ConstantOfShape/Slice/Concat/Cast feeding a Pad; weights exported without constant
 * folding go through Transpose) is evaluated at import time, so only real layers reach the IR.
 *
 * Values follow ONNX semantics with numpy broadcasting; floats are float32, integers exact
 * (safe-integer range). Browser-safe.
 *
 * @module
 */
import { FormatError } from '../errors.js';
import { onnx, type ConstTensor } from './onnx-proto.js';

/** The operators {@link foldConstant} evaluates (Shape is handled by the importer). */
export const FOLDABLE_OPS: readonly string[] = [
  'Identity', 'Cast', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'ConstantOfShape', 'Slice',
  'Reshape', 'Transpose', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Range', 'Expand', 'Flatten', 'Shape',
];

/**
 * Most values one folded tensor may have. Shape arithmetic needs a handful; weights transposed in
 * the graph need their own size. The bound keeps a hostile file (ConstantOfShape of [1e9], say)
 * from exhausting memory at import.
 */
export const MAX_FOLDED_VALUES = 1 << 24;

/** @throws {FormatError} if a tensor of `dims` would be larger than {@link MAX_FOLDED_VALUES}. */
function checkSize(dims: readonly number[], op: string): void {
  const n = dims.reduce((p, d) => p * Math.max(d, 0), 1);
  if (!(n <= MAX_FOLDED_VALUES)) {
    throw new FormatError(`ONNX: ${op} on constants would make a tensor of [${dims.join(', ')}] (at most ${MAX_FOLDED_VALUES} values)`);
  }
}

/** What a folded node reads: its constant inputs (undefined where absent) and attributes. */
export interface FoldInput {
  readonly op: string;
  readonly opset: number;
  readonly inputs: readonly (ConstTensor | undefined)[];
  readonly int: (name: string, fallback: number) => number;
  readonly ints: (name: string) => readonly number[] | undefined;
  readonly tensor: (name: string) => ConstTensor | undefined;
}

/**
 * Evaluates one node on constants.
 *
 * @returns the output, or a string saying why it cannot be folded.
 */
export function foldConstant(n: FoldInput): ConstTensor | string {
  const [a, b] = n.inputs;
  if (a === undefined && n.op !== 'Range') return 'its first input is missing';
  const x = a as ConstTensor;
  switch (n.op) {
    case 'Identity':
      return x;
    case 'Shape': {
      const rank = x.dims.length;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
      const dims = x.dims.slice(clamp(n.int('start', 0)), clamp(n.int('end', rank)));
      return make('int', [dims.length], dims);
    }
    case 'Cast':
      return cast(x, n.int('to', 1));
    case 'Gather':
      return b === undefined ? 'no indices' : gather(x, b, n.int('axis', 0));
    case 'Unsqueeze':
      return unsqueeze(x, axesOf(n));
    case 'Squeeze':
      return squeeze(x, axesOf(n));
    case 'Concat':
      return concat(n.inputs.filter((t): t is ConstTensor => t !== undefined), n.int('axis', 0));
    case 'ConstantOfShape': {
      const value = n.tensor('value') ?? { type: 'float', dims: [1], data: Float32Array.of(0) };
      return fill(numbersOf(x), value);
    }
    case 'Slice':
      return slice(x, n);
    case 'Reshape':
      return b === undefined ? 'no shape' : withDims(x, resolveShape(x.dims, numbersOf(b), n.int('allowzero', 0) !== 0));
    case 'Flatten': {
      const axis = normalizeAxis(n.int('axis', 1), x.dims.length + 1);
      return withDims(x, [product(x.dims.slice(0, axis)), product(x.dims.slice(axis))]);
    }
    case 'Transpose':
      return transpose(x, n.ints('perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i));
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return b === undefined ? 'a missing operand' : binary(n.op, x, b);
    case 'Neg':
      return x.type === 'float' ? { ...x, data: x.data.map((v) => -v) } : { ...x, data: x.data.map((v) => -v) };
    case 'Range':
      return range(n.inputs);
    case 'Expand':
      return b === undefined ? 'no shape' : binary('Mul', x, fill(numbersOf(b), { type: x.type, dims: [1], data: x.type === 'float' ? Float32Array.of(1) : [1] } as ConstTensor));
    default:
      return `${n.op} is not shape arithmetic`;
  }
}

/** A tensor's values as numbers (undefined for an absent input). */
export function numbersOf(t: ConstTensor): number[];
export function numbersOf(t: ConstTensor | undefined): number[] | undefined;
export function numbersOf(t: ConstTensor | undefined): number[] | undefined {
  return t === undefined ? undefined : Array.from(t.data, Number);
}

function axesOf(n: FoldInput): readonly number[] | undefined {
  // Opset 13 moved `axes` from an attribute to the second input.
  const input = n.inputs[1];
  return n.opset >= 13 ? numbersOf(input) : n.ints('axes');
}

function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = (s[i + 1] as number) * (dims[i + 1] as number);
  return s;
}

function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) throw new FormatError(`ONNX: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

function withDims(t: ConstTensor, dims: readonly number[]): ConstTensor {
  if (product(dims) !== t.data.length) throw new FormatError(`ONNX: cannot give ${t.data.length} values the shape [${dims.join(', ')}]`);
  return { ...t, dims } as ConstTensor;
}

/** Builds a tensor of t's type from numbers. */
function make(type: ConstTensor['type'], dims: readonly number[], values: ArrayLike<number>): ConstTensor {
  return type === 'float' ? { type, dims, data: Float32Array.from(values) } : { type, dims, data: Array.from(values) };
}

/** ONNX Reshape's target with 0 (copy) and −1 (infer) resolved. */
export function resolveShape(input: readonly number[], target: readonly number[], allowZero: boolean): number[] {
  const dims = target.map((d, i) => (d === 0 && !allowZero ? (input[i] ?? 0) : d));
  const known = product(dims.filter((d) => d !== -1));
  const unknown = dims.filter((d) => d === -1).length;
  if (unknown > 1 || dims.some((d) => d < -1)) throw new FormatError(`ONNX: Reshape target [${target.join(', ')}]`);
  return dims.map((d) => (d === -1 ? product(input) / known : d));
}

function cast(x: ConstTensor, to: number): ConstTensor {
  const T = onnx.TensorProto.DataType;
  if (to === T.FLOAT || to === T.DOUBLE || to === T.FLOAT16) return make('float', x.dims, x.data);
  if (to === T.BOOL) return make('int', x.dims, Array.from(x.data, (v) => (Number(v) !== 0 ? 1 : 0)));
  return make('int', x.dims, Array.from(x.data, (v) => Math.trunc(Number(v))));
}

function gather(x: ConstTensor, idx: ConstTensor, axisAttr: number): ConstTensor {
  const rank = x.dims.length;
  const axis = normalizeAxis(axisAttr, rank);
  checkSize([...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)], 'Gather');
  const n = x.dims[axis] as number;
  const outer = product(x.dims.slice(0, axis));
  const inner = product(x.dims.slice(axis + 1));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const raw of idx.data) {
      const i = Number(raw) < 0 ? Number(raw) + n : Number(raw);
      if (i < 0 || i >= n) throw new FormatError(`ONNX: Gather index ${raw} is out of range for ${n}`);
      for (let k = 0; k < inner; k++) out.push(Number(x.data[(o * n + i) * inner + k]));
    }
  }
  return make(x.type, [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)], out);
}

function unsqueeze(x: ConstTensor, axes: readonly number[] | undefined): ConstTensor {
  if (axes === undefined) throw new FormatError('ONNX: Unsqueeze without axes');
  const rank = x.dims.length + axes.length;
  const at = new Set(axes.map((a) => normalizeAxis(a, rank)));
  const dims: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) dims.push(at.has(i) ? 1 : (x.dims[k++] as number));
  return withDims(x, dims);
}

function squeeze(x: ConstTensor, axes: readonly number[] | undefined): ConstTensor {
  const at = axes === undefined ? undefined : new Set(axes.map((a) => normalizeAxis(a, x.dims.length)));
  return withDims(x, x.dims.filter((d, i) => (at === undefined ? d !== 1 : !at.has(i))));
}

function concat(parts: readonly ConstTensor[], axisAttr: number): ConstTensor {
  const [first] = parts;
  if (first === undefined) throw new FormatError('ONNX: Concat without inputs');
  const axis = normalizeAxis(axisAttr, first.dims.length);
  const outer = product(first.dims.slice(0, axis));
  const type = parts.every((p) => p.type === 'int') ? 'int' : 'float';
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const chunk = product(p.dims.slice(axis));
      for (let k = 0; k < chunk; k++) out.push(Number(p.data[o * chunk + k]));
    }
  }
  const dims = [...first.dims];
  dims[axis] = parts.reduce((s, p) => s + (p.dims[axis] as number), 0);
  return make(type, dims, out);
}

function fill(dims: readonly number[], value: ConstTensor): ConstTensor {
  checkSize(dims, 'ConstantOfShape or Expand');
  return make(value.type, dims, new Array<number>(product(dims)).fill(Number(value.data[0] ?? 0)));
}

function slice(x: ConstTensor, n: FoldInput): ConstTensor {
  const list = (i: number, attr: string): number[] | undefined =>
    n.opset >= 10 ? numbersOf(n.inputs[i]) : n.ints(attr)?.slice();
  const starts = list(1, 'starts') ?? [];
  const ends = list(2, 'ends') ?? [];
  const axes = list(3, 'axes') ?? starts.map((_, i) => i);
  const steps = (n.opset >= 10 ? numbersOf(n.inputs[4]) : undefined) ?? starts.map(() => 1);
  const rank = x.dims.length;
  const ranges = x.dims.map((d) => ({ start: 0, step: 1, count: d }));
  axes.forEach((rawAxis, k) => {
    const axis = normalizeAxis(rawAxis, rank);
    const d = x.dims[axis] as number;
    const step = steps[k] ?? 1;
    if (step === 0) throw new FormatError('ONNX: Slice step 0');
    const clampIndex = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const start = step > 0 ? clampIndex(starts[k] ?? 0, 0, d) : clampIndex(starts[k] ?? 0, -1, d - 1);
    const end = step > 0 ? clampIndex(ends[k] ?? d, 0, d) : clampIndex(ends[k] ?? -1, -1, d - 1);
    const count = Math.max(0, Math.ceil((end - start) / step));
    ranges[axis] = { start, step, count };
  });
  const inStrides = strides(x.dims);
  const outDims = ranges.map((r) => r.count);
  const outStrides = strides(outDims);
  const out: number[] = [];
  for (let o = 0; o < product(outDims); o++) {
    let src = 0;
    let rest = o;
    ranges.forEach((r, axis) => {
      const c = Math.floor(rest / (outStrides[axis] as number));
      rest -= c * (outStrides[axis] as number);
      src += (r.start + c * r.step) * (inStrides[axis] as number);
    });
    out.push(Number(x.data[src]));
  }
  return make(x.type, outDims, out);
}

function transpose(x: ConstTensor, perm: readonly number[]): ConstTensor {
  if (perm.length !== x.dims.length) throw new FormatError(`ONNX: Transpose perm [${perm.join(', ')}] for rank ${x.dims.length}`);
  const outDims = perm.map((p) => x.dims[p] as number);
  const inStrides = strides(x.dims);
  const outStrides = strides(outDims);
  const out: number[] = [];
  for (let o = 0; o < product(outDims); o++) {
    let src = 0;
    let rest = o;
    perm.forEach((p, axis) => {
      const c = Math.floor(rest / (outStrides[axis] as number));
      rest -= c * (outStrides[axis] as number);
      src += c * (inStrides[p] as number);
    });
    out.push(Number(x.data[src]));
  }
  return make(x.type, outDims, out);
}

/** Numpy broadcasting of a and b to one shape. */
export function broadcastDims(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/**
 * The values of `t` broadcast to `dims` (which t's dims must broadcast to), row-major.
 *
 * @throws {FormatError} if they do not broadcast.
 */
export function broadcastTo(t: ConstTensor, dims: readonly number[]): number[] {
  const rank = dims.length;
  const tDims = t.dims.length > rank ? t.dims.slice(t.dims.length - rank) : t.dims;
  if (t.dims.slice(0, t.dims.length - tDims.length).some((d) => d !== 1) || broadcastDims(tDims, dims)?.join() !== dims.join()) {
    throw new FormatError(`ONNX: a constant of shape [${t.dims.join(', ')}] does not broadcast to [${dims.join(', ')}]`);
  }
  const padded = [...new Array<number>(rank - tDims.length).fill(1), ...tDims];
  const tStrides = strides(padded);
  const outStrides = strides(dims);
  const out: number[] = [];
  for (let o = 0; o < product(dims); o++) {
    let src = 0;
    let rest = o;
    dims.forEach((_, axis) => {
      const c = Math.floor(rest / (outStrides[axis] as number));
      rest -= c * (outStrides[axis] as number);
      if ((padded[axis] as number) !== 1) src += c * (tStrides[axis] as number);
    });
    out.push(Number(t.data[src]));
  }
  return out;
}

function binary(op: string, a: ConstTensor, b: ConstTensor): ConstTensor {
  const dims = broadcastDims(a.dims, b.dims);
  if (dims === undefined) throw new FormatError(`ONNX: ${op} of shapes [${a.dims.join(', ')}] and [${b.dims.join(', ')}]`);
  checkSize(dims, op);
  const x = broadcastTo(a, dims);
  const y = broadcastTo(b, dims);
  const ints = a.type === 'int' && b.type === 'int';
  const f = (u: number, v: number): number => {
    switch (op) {
      case 'Add':
        return u + v;
      case 'Sub':
        return u - v;
      case 'Mul':
        return u * v;
      default:
        if (ints && v === 0) throw new FormatError('ONNX: integer division by zero in shape arithmetic');
        return ints ? Math.trunc(u / v) : u / v;
    }
  };
  return make(ints ? 'int' : 'float', dims, x.map((u, i) => f(u, y[i] as number)));
}

function range(inputs: readonly (ConstTensor | undefined)[]): ConstTensor | string {
  const [start, limit, delta] = inputs.map((t) => (t === undefined ? undefined : Number(t.data[0])));
  if (start === undefined || limit === undefined || delta === undefined || delta === 0) return 'Range needs start, limit and a non-zero delta';
  const count = Math.max(Math.ceil((limit - start) / delta), 0);
  checkSize([count], 'Range');
  return make(inputs[0]!.type, [count], Array.from({ length: count }, (_, i) => start + i * delta));
}
