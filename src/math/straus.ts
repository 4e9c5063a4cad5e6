/**
 * Products of powers with large exponents, Π_t bases[t]^exps[t] mod m, by Straus' interleaved
 * fixed-window method: the squarings are shared by every term of a product, so a product of k
 * terms with b-bit exponents costs about b squarings plus k·(b/w + 2^w) multiplications instead
 * of k·1.2·b for one exponentiation per term. Window tables are built once per base and reused by
 * every product of the same call that uses that base.
 *
 * `multiExp` (Bos–Coster) is the better choice for many small exponents; this is for the
 * 40–120-bit statistical masks of the two-server protocols.
 *
 * Timing: the sequence of multiplications depends on the exponents' bit patterns (the caller's
 * own random masks), never on the bases.
 *
 * @module
 */

/** One product: which bases (indices into the shared base list) to raise to which exponents. */
export interface PowRow {
  readonly index: readonly number[];
  readonly exps: readonly bigint[];
}

const WINDOW = 4;
const DIGIT_MASK = (1n << BigInt(WINDOW)) - 1n;

/**
 * Π bases[index[t]]^exps[t] mod m for every row.
 *
 * @throws RangeError if a row's index and exponent lists differ in length, an index is out of
 *   range, or an exponent is negative.
 */
export function powProducts(bases: readonly bigint[], rows: readonly PowRow[], m: bigint): bigint[] {
  const tables = new Map<number, bigint[]>();
  const table = (i: number): bigint[] => {
    let t = tables.get(i);
    if (t === undefined) {
      const b = bases[i];
      if (b === undefined) throw new RangeError(`powProducts: base index ${i} out of range`);
      t = [1n, b % m];
      for (let d = 2; d <= Number(DIGIT_MASK); d++) t.push((t[d - 1]! * t[1]!) % m);
      tables.set(i, t);
    }
    return t;
  };
  return rows.map((row) => product(row, table, m));
}

function product(row: PowRow, table: (i: number) => bigint[], m: bigint): bigint {
  if (row.index.length !== row.exps.length) throw new RangeError('powProducts: index and exponent lists differ in length');
  let maxBits = 0;
  for (const e of row.exps) {
    if (e < 0n) throw new RangeError('powProducts: exponents must be non-negative');
    const bits = e.toString(2).length;
    if (e > 0n && bits > maxBits) maxBits = bits;
  }
  if (maxBits === 0) return 1n;
  const windows = Math.ceil(maxBits / WINDOW);
  // digits[t][k]: the k-th window of exponent t, most significant first.
  const digits = row.exps.map((e) => {
    const out = new Array<number>(windows);
    let rest = e;
    for (let k = windows - 1; k >= 0; k--) {
      out[k] = Number(rest & DIGIT_MASK);
      rest >>= BigInt(WINDOW);
    }
    return out;
  });
  const tabs = row.index.map((i, t) => (row.exps[t]! > 0n ? table(i) : null));
  let acc = 1n;
  for (let k = 0; k < windows; k++) {
    if (k > 0) for (let s = 0; s < WINDOW; s++) acc = (acc * acc) % m;
    for (let t = 0; t < digits.length; t++) {
      const d = digits[t]![k]!;
      if (d !== 0) acc = (acc * tabs[t]![d]!) % m;
    }
  }
  return acc;
}
