/**
 * Convolutions by a shared-source layout: one upload per term, many output ciphertexts per upload.
 *
 * In a convolution every output channel at one location reads the same input values (its
 * receptive field). Rows of a stage's map with the same column list form a *class* (one location);
 * a class of r rows gets m = ⌈r/G⌉ slots of a page (a set of S = N/2 slots), and for each term t
 * the client fills input ciphertext t with, in every slot of a class, that class's t-th source
 * value. Output ciphertext g (g < G) is then Σ_t input_t ⊙ w_{t,g}, where w_{t,g} holds, at a slot
 * that computes row r, the weight of r's t-th term (with this session's blinding, unblinding and
 * normalization folded in). A page costs T uploads and T·G plaintext products, no rotation; the
 * routed layout (`layout.ts`) sends one ciphertext per S multiply-accumulates instead — for the
 * reference CNN's second convolution, 320 uploads instead of 1,891.
 *
 * Per session the service shuffles which slots each class takes and which of a class's m·G cells
 * each of its rows lands in, so an output slot reveals its location (the client placed the
 * sources) but not its channel, and the same channel is not linked across locations — what the
 * routed layout reveals, no more (docs/security.md).
 *
 * @module
 */
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import { randomPermutation } from '../paillier-inference/session-math.js';
import type { GroupLayout } from './layout.js';

/** Shape of one stage's shared-source evaluation (fixed per model): what its cost depends on. */
export interface SharedShape {
  /** Output ciphertexts per page G. */
  readonly outputs: number;
  /** Input ciphertexts per page T (the longest class's term count). */
  readonly terms: number;
  /** Classes on each page. */
  readonly pages: readonly Int32Array[];
  /** Per class: its rows (map rows, those the stage computes). */
  readonly classRows: readonly Int32Array[];
  /** Per class: slots it takes on its page, ⌈rows/G⌉. */
  readonly classSlots: Int32Array;
  /** Per map row: its class, −1 for rows the stage does not compute. */
  readonly classOf: Int32Array;
}

/** A shared-source shape with the weights its rounds read ({@link withTermWeights}). */
export interface SharedPlan extends SharedShape {
  /** Per map row: its index among the computed rows, −1 for the others. */
  readonly rowIndex: Int32Array;
  /**
   * The weights term by term: termWeights[t][rowIndex[r]] is row r's t-th weight (0 past its
   * terms). A round reads term t of thousands of rows in random order; this keeps those reads in
   * one small array instead of scattered over the whole map.
   */
  readonly termWeights: readonly Float64Array[];
}

/** A row's column list as a hashable key (FNV-1a over the indices, verified on collision). */
function rowKey(map: SparseLinearMap, r: number): number {
  let h = 0x811c9dc5;
  for (let k = map.offsets[r]!; k < map.offsets[r + 1]!; k++) {
    h = Math.imul(h ^ map.indices[k]!, 0x01000193) >>> 0;
  }
  return Math.imul(h ^ (map.offsets[r + 1]! - map.offsets[r]!), 0x01000193) >>> 0;
}

function sameColumns(map: SparseLinearMap, a: number, b: number): boolean {
  const n = map.offsets[a + 1]! - map.offsets[a]!;
  if (map.offsets[b + 1]! - map.offsets[b]! !== n) return false;
  for (let k = 0; k < n; k++) if (map.indices[map.offsets[a]! + k] !== map.indices[map.offsets[b]! + k]) return false;
  return true;
}

/** Groups `rows` of the map by column list. */
export function rowClasses(map: SparseLinearMap, rows: ArrayLike<number>): Int32Array[] {
  const byKey = new Map<number, number[][]>();
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const key = rowKey(map, r);
    const candidates = byKey.get(key) ?? [];
    if (candidates.length === 0) byKey.set(key, candidates);
    const cls = candidates.find((c) => sameColumns(map, c[0]!, r));
    if (cls) cls.push(r);
    else candidates.push([r]);
  }
  return [...byKey.values()].flat().map((c) => Int32Array.from(c));
}

/** Pages for G outputs: classes packed in order, first fit. */
function paginate(classSlots: Int32Array, slots: number): Int32Array[] | null {
  const pages: number[][] = [];
  let used = slots;
  for (let c = 0; c < classSlots.length; c++) {
    const need = classSlots[c]!;
    if (need > slots) return null;
    if (used + need > slots) {
      pages.push([]);
      used = 0;
    }
    pages[pages.length - 1]!.push(c);
    used += need;
  }
  return pages.map((p) => Int32Array.from(p));
}

/** Uploads and plaintext products a plan costs. */
export function sharedCounts(plan: SharedShape): { uploads: number; products: number } {
  return { uploads: plan.terms * plan.pages.length, products: plan.terms * plan.outputs * plan.pages.length };
}

/**
 * The cheapest shared-source shape for a stage under `cost` (per upload and per product), or null
 * when the stage has no rows. Only the layout chosen for the stage gets its weights
 * ({@link withTermWeights}): a wide dense stage's would be a copy of its whole map.
 *
 * @param rows - the map rows the stage computes (in any order).
 */
export function planShared(
  map: SparseLinearMap,
  rows: ArrayLike<number>,
  slots: number,
  cost: { upload: number; product: number },
): SharedShape | null {
  if (rows.length === 0) return null;
  const classRows = rowClasses(map, rows);
  const terms = Math.max(1, ...classRows.map((c) => map.offsets[c[0]! + 1]! - map.offsets[c[0]!]!));
  const largest = Math.max(...classRows.map((c) => c.length));
  let best: { price: number; outputs: number; pages: Int32Array[]; classSlots: Int32Array } | null = null;
  for (let g = 1; g <= largest; g++) {
    const classSlots = Int32Array.from(classRows, (c) => Math.ceil(c.length / g));
    const pages = paginate(classSlots, slots);
    if (!pages) continue;
    const price = terms * pages.length * (cost.upload + g * cost.product);
    if (!best || price < best.price) best = { price, outputs: g, pages, classSlots };
  }
  if (!best) return null;
  const classOf = new Int32Array(map.rows).fill(-1);
  classRows.forEach((c, i) => c.forEach((r) => (classOf[r] = i)));
  return { outputs: best.outputs, terms, pages: best.pages, classRows, classSlots: best.classSlots, classOf };
}

/** The shape with its term-major weights, for the stage that uses it. */
export function withTermWeights(shape: SharedShape, map: SparseLinearMap): SharedPlan {
  const rows = shape.classRows.flatMap((c) => Array.from(c));
  const rowIndex = new Int32Array(map.rows).fill(-1);
  rows.forEach((r, i) => (rowIndex[r] = i));
  const termWeights = Array.from({ length: shape.terms }, () => new Float64Array(rows.length));
  rows.forEach((r, i) => {
    for (let k = map.offsets[r]!, t = 0; k < map.offsets[r + 1]!; k++, t++) termWeights[t]![i] = map.weights[k]!;
  });
  return { ...shape, rowIndex, termWeights };
}

/**
 * One session's layout: per page, where each class sits, the client's source per slot of each
 * input ciphertext, and the stage position each slot of each output ciphertext computes.
 *
 * @param rowAt - the session's output order (map row at each position).
 * @param sourceOf - the client's index of map column j.
 */
export function sharedGroups(
  plan: SharedShape,
  map: SparseLinearMap,
  rowAt: Int32Array,
  slots: number,
  sourceOf: (column: number) => number,
): GroupLayout[] {
  const positionsOf = plan.classRows.map(() => [] as number[]);
  rowAt.forEach((row, p) => {
    const c = plan.classOf[row]!;
    if (c < 0) throw new RangeError(`row ${row} is in no class of the plan`);
    positionsOf[c]!.push(p);
  });
  return plan.pages.map((classes) => {
    const order = randomPermutation(slots);
    const sources = Array.from({ length: plan.terms }, () => new Int32Array(slots).fill(-1));
    const outputs = Array.from({ length: plan.outputs }, () => new Int32Array(slots).fill(-1));
    let next = 0;
    let size = 0;
    for (const c of classes) {
      const own = order.subarray(next, next + plan.classSlots[c]!);
      next += own.length;
      const first = plan.classRows[c]![0]!;
      const base = map.offsets[first]!;
      const count = map.offsets[first + 1]! - base;
      for (const slot of own) for (let t = 0; t < count; t++) sources[t]![slot] = sourceOf(map.indices[base + t]!);
      // Every (output, slot) cell of the class, shuffled; the class's positions take the first ones.
      const cells = randomPermutation(own.length * plan.outputs);
      positionsOf[c]!.forEach((p, i) => {
        const cell = cells[i]!;
        outputs[cell % plan.outputs]![own[Math.floor(cell / plan.outputs)]!] = p;
      });
      size += positionsOf[c]!.length;
    }
    return { start: 0, size, period: slots, sources, terms: [], outputs };
  });
}
