/**
 * The instruction set both training servers execute on their own share stores. The service
 * drives the training loop; every instruction it runs on its shares it also sends to the crypto
 * server (batched with the next interactive request), so the two stores stay in step. Local
 * instructions (sums, transposes, products by public integers, truncation) need no interaction;
 * `matmul` and `mul` (element-wise) do, through Paillier under the training key.
 *
 * The same instructions run on plaintext ring values in the plaintext twin
 * ({@link applyLocal} with party 'plain'), so both runs do the same fixed-point arithmetic.
 *
 * @module
 */
import { ShapeError } from '../../errors.js';
import { reduce, truncatePlain, truncateShare1, truncateShare2 } from './ring.js';

/** A matrix of ring elements, row-major. */
export interface RingMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: bigint[];
}

/** Who executes an instruction: the service (share 1), the crypto server (share 2), or the plaintext twin. */
export type Party = 'service' | 'crypto' | 'plain';

/** Instructions each party runs alone on its own shares. */
export type LocalInstr =
  | { readonly op: 'add' | 'sub'; readonly out: string; readonly a: string; readonly b: string }
  /** out[r][c] = a[r][c] + col[r][0]. */
  | { readonly op: 'addCol'; readonly out: string; readonly a: string; readonly b: string }
  | { readonly op: 'transpose' | 'sumCols'; readonly out: string; readonly a: string }
  /** out = a · k for a public signed integer k (decimal string). */
  | { readonly op: 'scale'; readonly out: string; readonly a: string; readonly k: string }
  /** out = a + k for a public signed integer k, added by the service only. */
  | { readonly op: 'addConst'; readonly out: string; readonly a: string; readonly k: string }
  /** out ≈ a / 2^bits (local truncation). */
  | { readonly op: 'trunc'; readonly out: string; readonly a: string; readonly bits: number }
  /** out = the listed rows (tensor, row) stacked, columns [c0, c1). */
  | { readonly op: 'gather'; readonly out: string; readonly rows: { readonly a: string; readonly r: number }[]; readonly c0: number; readonly c1: number }
  | { readonly op: 'free'; readonly ids: string[] };

/** Instructions that need both servers: matrix product, element-wise product. */
export interface InteractiveInstr {
  readonly op: 'matmul' | 'mul';
  readonly out: string;
  readonly a: string;
  readonly b: string;
}

/** A party's tensors by id. */
export type ShareStore = Map<string, RingMatrix>;

/** The tensor `id`. @throws ShapeError if it does not exist. */
export function getTensor(store: ShareStore, id: string): RingMatrix {
  const t = store.get(id);
  if (t === undefined) throw new ShapeError(`unknown tensor '${id}'`);
  return t;
}

function sameShape(a: RingMatrix, b: RingMatrix, what: string): void {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new ShapeError(`${what}: ${a.rows}×${a.cols} and ${b.rows}×${b.cols} differ`);
}

/**
 * Runs one local instruction on `store`.
 *
 * @throws ShapeError on unknown tensors or mismatched shapes; RangeError on a bad constant.
 */
export function applyLocal(store: ShareStore, instr: LocalInstr, party: Party): void {
  if (instr.op === 'free') {
    for (const id of instr.ids) store.delete(id);
    return;
  }
  if (instr.op === 'gather') {
    store.set(instr.out, gather(store, instr.rows, instr.c0, instr.c1));
    return;
  }
  const a = getTensor(store, instr.a);
  let out: RingMatrix;
  switch (instr.op) {
    case 'add':
    case 'sub': {
      const b = getTensor(store, instr.b);
      sameShape(a, b, instr.op);
      const sign = instr.op === 'add' ? 1n : -1n;
      out = { rows: a.rows, cols: a.cols, data: a.data.map((v, i) => reduce(v + sign * b.data[i]!)) };
      break;
    }
    case 'addCol': {
      const b = getTensor(store, instr.b);
      if (b.rows !== a.rows || b.cols !== 1) throw new ShapeError(`addCol: ${b.rows}×${b.cols} is not a ${a.rows}×1 column`);
      out = { rows: a.rows, cols: a.cols, data: a.data.map((v, i) => reduce(v + b.data[Math.floor(i / a.cols)]!)) };
      break;
    }
    case 'transpose': {
      const data = new Array<bigint>(a.data.length);
      for (let r = 0; r < a.rows; r++) for (let c = 0; c < a.cols; c++) data[c * a.rows + r] = a.data[r * a.cols + c]!;
      out = { rows: a.cols, cols: a.rows, data };
      break;
    }
    case 'sumCols': {
      const data = new Array<bigint>(a.rows).fill(0n);
      for (let r = 0; r < a.rows; r++) {
        let s = 0n;
        for (let c = 0; c < a.cols; c++) s += a.data[r * a.cols + c]!;
        data[r] = reduce(s);
      }
      out = { rows: a.rows, cols: 1, data };
      break;
    }
    case 'scale': {
      const k = BigInt(instr.k);
      out = { rows: a.rows, cols: a.cols, data: a.data.map((v) => reduce(v * k)) };
      break;
    }
    case 'addConst': {
      const k = party === 'crypto' ? 0n : BigInt(instr.k);
      out = { rows: a.rows, cols: a.cols, data: a.data.map((v) => reduce(v + k)) };
      break;
    }
    case 'trunc': {
      const f = party === 'service' ? truncateShare1 : party === 'crypto' ? truncateShare2 : truncatePlain;
      out = { rows: a.rows, cols: a.cols, data: a.data.map((v) => f(v, instr.bits)) };
      break;
    }
  }
  store.set(instr.out, out);
}

function gather(store: ShareStore, rows: readonly { a: string; r: number }[], c0: number, c1: number): RingMatrix {
  if (rows.length === 0 || !(c0 >= 0 && c1 > c0)) throw new ShapeError('gather: no rows or an empty column range');
  const data: bigint[] = [];
  for (const { a, r } of rows) {
    const t = getTensor(store, a);
    if (!(r >= 0 && r < t.rows) || c1 > t.cols) throw new ShapeError(`gather: row ${r}, columns ${c0}..${c1} outside '${a}' (${t.rows}×${t.cols})`);
    data.push(...t.data.slice(r * t.cols + c0, r * t.cols + c1));
  }
  return { rows: rows.length, cols: c1 - c0, data };
}

/** Shape of an interactive instruction's result. @throws ShapeError if the operands do not fit. */
export function interactiveShape(a: RingMatrix, b: RingMatrix, op: InteractiveInstr['op']): { rows: number; cols: number } {
  if (op === 'matmul') {
    if (a.cols !== b.rows) throw new ShapeError(`matmul: ${a.rows}×${a.cols} by ${b.rows}×${b.cols}`);
    return { rows: a.rows, cols: b.cols };
  }
  sameShape(a, b, 'mul');
  return { rows: a.rows, cols: a.cols };
}

/** a·b (matrix product) or a⊙b of ring matrices, mod 2^64: each party's local term, and the twin's product. */
export function localProduct(a: RingMatrix, b: RingMatrix, op: InteractiveInstr['op']): RingMatrix {
  const { rows, cols } = interactiveShape(a, b, op);
  if (op === 'mul') return { rows, cols, data: a.data.map((v, i) => reduce(v * b.data[i]!)) };
  const data = new Array<bigint>(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let s = 0n;
      for (let l = 0; l < a.cols; l++) s += a.data[r * a.cols + l]! * b.data[l * b.cols + c]!;
      data[r * cols + c] = reduce(s);
    }
  }
  return { rows, cols, data };
}
