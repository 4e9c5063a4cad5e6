/**
 * A linear map y = A·x + b stored as compressed sparse rows with float weights. Every linear
 * layer of a model (convolution, dense, average pooling, global average pooling) is one of these
 * once its input shape is known, and consecutive linear layers compose into one map, so an
 * encrypted backend needs a single kernel: sparse rows of ciphertexts times integer weights.
 *
 * @module
 */

/** y = A·x + b with A in CSR form: row r's terms are indices/weights[offsets[r] .. offsets[r+1]). */
export interface SparseLinearMap {
  readonly rows: number;
  readonly cols: number;
  /** rows + 1 entries, non-decreasing, offsets[0] = 0. */
  readonly offsets: Int32Array;
  /** Column of each term. */
  readonly indices: Int32Array;
  /** Weight of each term. */
  readonly weights: Float64Array;
  /** One value per row. */
  readonly bias: Float64Array;
}

/** Number of stored terms. */
export function termCount(map: SparseLinearMap): number {
  return map.offsets[map.rows]!;
}

/** Largest |weight| in the map (0 for an empty map). */
export function maxAbsWeight(map: SparseLinearMap): number {
  let m = 0;
  for (const w of map.weights) m = Math.max(m, Math.abs(w));
  return m;
}

/**
 * Builds a map row by row: `row(r, add)` calls `add(column, weight)` for each term of row r.
 * Terms for the same column are summed; zero weights are dropped.
 */
export function buildSparseMap(
  rows: number,
  cols: number,
  bias: ArrayLike<number>,
  row: (r: number, add: (col: number, weight: number) => void) => void,
): SparseLinearMap {
  if (bias.length !== rows) throw new RangeError(`buildSparseMap: ${bias.length} biases for ${rows} rows`);
  const offsets = new Int32Array(rows + 1);
  let indices: Int32Array = new Int32Array(Math.max(16, rows * 4));
  let weights: Float64Array = new Float64Array(indices.length);
  let count = 0;
  const pending = new Map<number, number>();
  for (let r = 0; r < rows; r++) {
    pending.clear();
    row(r, (col, weight) => {
      if (!Number.isInteger(col) || col < 0 || col >= cols) throw new RangeError(`buildSparseMap: column ${col} out of range`);
      pending.set(col, (pending.get(col) ?? 0) + weight);
    });
    const cols_ = [...pending.keys()].sort((a, b) => a - b);
    if (count + cols_.length > indices.length) {
      const size = Math.max(indices.length * 2, count + cols_.length);
      const moreIndices = new Int32Array(size);
      moreIndices.set(indices);
      indices = moreIndices;
      const moreWeights = new Float64Array(size);
      moreWeights.set(weights);
      weights = moreWeights;
    }
    for (const c of cols_) {
      const w = pending.get(c)!;
      if (w === 0) continue;
      indices[count] = c;
      weights[count] = w;
      count++;
    }
    offsets[r + 1] = count;
  }
  return { rows, cols, offsets, indices: indices.slice(0, count), weights: weights.slice(0, count), bias: Float64Array.from(bias) };
}

/**
 * The map x ↦ second(first(x)): one map with second's rows and first's columns.
 *
 * @throws RangeError if first.rows ≠ second.cols.
 */
export function composeMaps(first: SparseLinearMap, second: SparseLinearMap): SparseLinearMap {
  if (first.rows !== second.cols) throw new RangeError(`composeMaps: ${first.rows} outputs feed ${second.cols} inputs`);
  const bias = new Float64Array(second.rows);
  for (let r = 0; r < second.rows; r++) {
    let b = second.bias[r]!;
    for (let t = second.offsets[r]!; t < second.offsets[r + 1]!; t++) b += second.weights[t]! * first.bias[second.indices[t]!]!;
    bias[r] = b;
  }
  return buildSparseMap(second.rows, first.cols, bias, (r, add) => {
    for (let t = second.offsets[r]!; t < second.offsets[r + 1]!; t++) {
      const mid = second.indices[t]!;
      const w = second.weights[t]!;
      for (let u = first.offsets[mid]!; u < first.offsets[mid + 1]!; u++) add(first.indices[u]!, w * first.weights[u]!);
    }
  });
}

/** y = A·x + b in double precision, for one sample. */
export function applyMap(map: SparseLinearMap, x: ArrayLike<number>): Float64Array {
  if (x.length !== map.cols) throw new RangeError(`applyMap: ${x.length} inputs for ${map.cols} columns`);
  const y = new Float64Array(map.rows);
  for (let r = 0; r < map.rows; r++) {
    let s = map.bias[r]!;
    for (let t = map.offsets[r]!; t < map.offsets[r + 1]!; t++) s += map.weights[t]! * x[map.indices[t]!]!;
    y[r] = s;
  }
  return y;
}
