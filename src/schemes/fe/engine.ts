/**
 * The DDH-based inner-product functional encryption of Abdalla, Bourse, De Caro and Pointcheval
 * (PKC 2015) over ristretto255 (about 126-bit security, see {@link ./curve/group.js}):
 *
 * - setup(l): s ← Z_ℓ^l, h_i = g^{s_i}; mpk = (h_i), msk = s.
 * - encrypt(mpk, x): r ← Z_ℓ; ct = (g^r, h_i^r·g^{x_i}).
 * - keyDer(msk, y) = <s, y> mod ℓ.
 * - decrypt(ct, y, sk_y): Π ct_i^{y_i} / ct_0^{sk_y} = g^{<x, y>}, then a bounded discrete
 *   logarithm gives <x, y>; a result outside the declared bound is an error.
 *
 * Group notation is multiplicative above; the code is additive (r·H_i + x_i·G).
 *
 * Fast paths: fixed-base tables for g and for each h_i (built once per encryption call and shared
 * by every sample in it), Pippenger-style combinations for the small signed key coefficients, one
 * fixed-base table for ct_0 shared by all the function keys applied to one ciphertext, batched
 * inversions, and a baby-step giant-step table reused across calls.
 *
 * An {@link FeEngine} owns one arithmetic kernel (WebAssembly memory) and its tables; it is not
 * thread-safe: make one per worker.
 *
 * @module
 */
import { FormatError, InvalidKeyError } from '../../errors.js';
import { DEFAULT_MAX_TABLE, DlogSolver } from './curve/dlog.js';
import { FixedBaseTable, recodeSigned, SmallMultiplesTable } from './curve/fixed-base.js';
import {
  AFFINE_WORDS,
  GENERATOR,
  GROUP_ORDER,
  loadNiels,
  modOrder,
  randomScalar,
  writeExtended,
} from './curve/group.js';
import { AFFINE_BYTES, EXT_BYTES, Kernel, NIELS_BYTES } from './curve/kernel.js';
import { combine, MAX_MSM_COEFFICIENT, MsmScratch } from './curve/msm.js';
import {
  assertSameSetup,
  type Ciphertext,
  type FunctionKey,
  type MasterPublicKey,
  type MasterSecretKey,
  newSetupId,
  type SparseFunctionKey,
} from './keys.js';

/** Largest |x_i| accepted by encryption (plaintexts are fixed-point integers). */
export const MAX_PLAINTEXT = 2 ** 24;
/** Largest |y_i| accepted in a function key. */
export const MAX_KEY_COEFFICIENT = MAX_MSM_COEFFICIENT;
/** Largest vector length accepted by setup. */
export const MAX_LENGTH = 1 << 20;
/** x_i up to this magnitude cost one table addition; larger ones a fixed-base multiplication. */
const SMALL_PLAINTEXT = 4096;
/** Bytes of kernel memory one encryption chunk may use (vectors × (l+1) × 240 bytes). */
const ENCRYPT_CHUNK_BYTES = 1 << 26;

/** Options of {@link FeEngine}. */
export interface FeEngineOptions {
  /** Cap on the baby-step table (entries); larger bounds take giant steps. Default 2^20. */
  readonly maxDlogTable?: number;
}

function assertLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 1 || length > MAX_LENGTH) {
    throw new RangeError(`vector length must be an integer in [1, ${MAX_LENGTH}], got ${length}`);
  }
}

function assertBound(bound: number): void {
  if (!Number.isSafeInteger(bound) || bound < 0) {
    throw new RangeError(`bound must be a non-negative safe integer, got ${bound}`);
  }
}

/** Checks a vector of integers with |v_i| ≤ max; returns it as an Int32Array. */
export function toIntVector(values: ArrayLike<number>, length: number, max: number, label: string): Int32Array {
  if (values.length !== length) {
    throw new RangeError(`${label} has length ${values.length}, expected ${length}`);
  }
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const v = values[i] ?? Number.NaN;
    if (!Number.isInteger(v) || Math.abs(v) > max) {
      throw new RangeError(`${label}[${i}] = ${v} is not an integer in ±${max}`);
    }
    out[i] = v;
  }
  return out;
}

/** One arithmetic context: kernel, generator tables, scratch space, discrete-log table. */
export class FeEngine {
  readonly kernel: Kernel;
  private readonly gTable: FixedBaseTable;
  private readonly gSmall: SmallMultiplesTable;
  private readonly scratch: MsmScratch;
  private readonly maxDlogTable: number;
  private solver: DlogSolver | undefined;
  private readonly permanent: number;
  /** Running totals for benchmarks: time in discrete logarithms and how many were solved. */
  readonly stats = { dlogMs: 0, dlogCount: 0 };

  constructor(options: FeEngineOptions = {}) {
    this.maxDlogTable = options.maxDlogTable ?? DEFAULT_MAX_TABLE;
    const k = new Kernel();
    this.kernel = k;
    const g = k.alloc(EXT_BYTES);
    writeExtended(k, g, GENERATOR);
    this.gTable = new FixedBaseTable(k, g, 8);
    this.gSmall = new SmallMultiplesTable(k, g, SMALL_PLAINTEXT);
    this.scratch = new MsmScratch(k, 1 << 12);
    this.permanent = k.mark();
  }

  /** Returns a solver covering at least min(bound, cap) without giant steps. */
  private dlog(bound: number): DlogSolver {
    // Round up to a power of two so slowly growing bounds do not rebuild the table every call.
    const want = Math.min(this.maxDlogTable, 2 ** Math.ceil(Math.log2(Math.max(2, bound))));
    if (this.solver === undefined || this.solver.m < want) {
      // The solver's memory lives below the permanent mark: rebuild it there.
      this.kernel.release(this.permanent);
      this.solver = new DlogSolver(this.kernel, want, this.maxDlogTable);
    }
    return this.solver;
  }

  /**
   * setup(l): a fresh master key pair for vectors of length l.
   *
   * @throws {RangeError} if l is not an integer in [1, 2^20].
   */
  setup(length: number): { mpk: MasterPublicKey; msk: MasterSecretKey } {
    assertLength(length);
    const k = this.kernel;
    const setupId = newSetupId();
    const s: bigint[] = [];
    const m = k.mark();
    const ext = k.alloc(length * EXT_BYTES);
    const aff = k.alloc(length * AFFINE_BYTES);
    for (let i = 0; i < length; i++) {
      const si = randomScalar();
      s.push(si);
      this.gTable.mul(ext + i * EXT_BYTES, si);
    }
    k.toAffineBatch(aff, ext, length);
    const h = k.i32.slice(aff >> 2, (aff >> 2) + length * AFFINE_WORDS);
    k.release(m);
    return {
      mpk: { kind: 'fe-master-public-key', setupId, length, h },
      msk: { kind: 'fe-master-secret-key', setupId, length, s },
    };
  }

  /**
   * Encrypts each vector of `xs` under `mpk`, each with fresh randomness. The fixed-base tables of
   * the h_i are built once and shared by all vectors: encrypt many samples in one call.
   *
   * Timing: the number of group operations depends only on the lengths (and on whether some
   * |x_i| > 4096); table reads depend on the secret randomness and on x.
   *
   * @throws {RangeError} if a vector has the wrong length or an entry that is not an integer in ±2^24.
   */
  encrypt(mpk: MasterPublicKey, xs: readonly ArrayLike<number>[]): Ciphertext[] {
    const l = mpk.length;
    const vectors = xs.map((x, i) => toIntVector(x, l, MAX_PLAINTEXT, `plaintext ${i}`));
    const out: Ciphertext[] = [];
    // Larger chunks share each h_i table among more vectors (and allow wider windows).
    const chunk = Math.max(16, Math.floor(ENCRYPT_CHUNK_BYTES / ((l + 1) * 240)));
    for (let start = 0; start < vectors.length; start += chunk) {
      out.push(...this.encryptChunk(mpk, vectors.slice(start, start + chunk)));
    }
    return out;
  }

  private encryptChunk(mpk: MasterPublicKey, vectors: readonly Int32Array[]): Ciphertext[] {
    const k = this.kernel;
    const l = mpk.length;
    const n = vectors.length;
    const per = l + 1;
    const m = k.mark();
    const ext = k.alloc(n * per * EXT_BYTES);
    const aff = k.alloc(n * per * AFFINE_BYTES);
    const r = vectors.map(() => randomScalar());
    for (let j = 0; j < n; j++) this.gTable.mul(ext + j * per * EXT_BYTES, r[j] ?? 0n);
    // Table of h_i: windows·2^(w−1) additions shared by the n vectors, then one addition per window each.
    const w = n >= 600 ? 8 : n >= 160 ? 7 : n >= 24 ? 6 : n >= 4 ? 5 : 4;
    const rDigits = r.map((rj) => recodeSigned(rj, w));
    const hPoint = k.alloc(EXT_BYTES);
    for (let i = 0; i < l; i++) {
      const tm = k.mark();
      loadExtendedFromAffine(k, hPoint, mpk.h, i);
      const table = new FixedBaseTable(k, hPoint, w);
      for (let j = 0; j < n; j++) {
        const acc = ext + (j * per + i + 1) * EXT_BYTES;
        table.mulDigits(acc, rDigits[j] ?? new Int16Array());
        this.addSmall(acc, (vectors[j] ?? new Int32Array())[i] ?? 0);
      }
      k.release(tm);
    }
    k.toAffineBatch(aff, ext, n * per);
    const words = k.i32;
    const result: Ciphertext[] = [];
    for (let j = 0; j < n; j++) {
      const base = (aff + j * per * AFFINE_BYTES) >> 2;
      result.push({
        kind: 'fe-ciphertext',
        setupId: mpk.setupId,
        length: l,
        points: words.slice(base, base + per * AFFINE_WORDS),
      });
    }
    k.release(m);
    return result;
  }

  private addSmall(acc: number, x: number): void {
    if (Math.abs(x) <= SMALL_PLAINTEXT) {
      this.gSmall.addMultiple(acc, x);
      return;
    }
    this.gTable.addMulDigits(acc, recodeSigned(modOrder(BigInt(x)), 8));
  }

  /**
   * keyDer(msk, y) = <s, y> mod ℓ.
   *
   * Timing: bigint arithmetic, variable time in s and y (run by the key authority on its own data).
   *
   * @throws {RangeError} if y has the wrong length or an entry that is not an integer in ±2^24.
   */
  keyDer(msk: MasterSecretKey, y: ArrayLike<number>): FunctionKey {
    const vector = toIntVector(y, msk.length, MAX_KEY_COEFFICIENT, 'key vector');
    let acc = 0n;
    for (let i = 0; i < vector.length; i++) {
      const c = vector[i] ?? 0;
      if (c !== 0) acc += (msk.s[i] ?? 0n) * BigInt(c);
    }
    return { kind: 'fe-function-key', setupId: msk.setupId, y: vector, sk: modOrder(acc) };
  }

  /**
   * keyDer for a sparse vector: sk = Σ_j coeffs[j]·s[indices[j] + shift] mod ℓ (see
   * {@link SparseFunctionKey}). Arithmetic on 16-bit limbs of s in floating point (exact), so
   * thousands of keys with hundreds of entries each stay cheap.
   *
   * Timing: variable time in the positions (run by the key authority on its own data).
   *
   * @throws {RangeError} if a position is outside the vector, a coefficient is not an integer in
   * ±2^24, or indices and coeffs differ in length.
   */
  keyDerSparse(msk: MasterSecretKey, indices: Int32Array, coeffs: Int32Array, shift: number): SparseFunctionKey {
    if (indices.length !== coeffs.length) throw new RangeError(`sparse key has ${indices.length} positions and ${coeffs.length} coefficients`);
    const limbs = limbsOf(msk);
    const acc = new Float64Array(LIMBS);
    let pending = 0;
    let total = 0n;
    for (let j = 0; j < indices.length; j++) {
      const i = (indices[j] ?? -1) + shift;
      const c = coeffs[j] ?? Number.NaN;
      if (!Number.isInteger(i) || i < 0 || i >= msk.length) throw new RangeError(`sparse key position ${i} is outside [0, ${msk.length})`);
      if (!Number.isInteger(c) || Math.abs(c) > MAX_KEY_COEFFICIENT) throw new RangeError(`sparse key coefficient ${c} is not an integer in ±${MAX_KEY_COEFFICIENT}`);
      if (c === 0) continue;
      const base = i * LIMBS;
      for (let t = 0; t < LIMBS; t++) acc[t] = (acc[t] ?? 0) + c * (limbs[base + t] ?? 0);
      if (++pending === 256) {
        total += fromLimbs(acc);
        acc.fill(0);
        pending = 0;
      }
    }
    total += fromLimbs(acc);
    return { kind: 'fe-sparse-function-key', setupId: msk.setupId, length: msk.length, indices, coeffs, shift, sk: modOrder(total) };
  }

  /**
   * Decrypts <x, y> for every sparse key in `keys` from one ciphertext. Shared by all keys: the
   * table of small multiples c·ct_i of each ciphertext point (up to the largest |c| that point
   * meets) and a fixed-base table for ct_0; each key then costs one addition per nonzero entry
   * plus about 32 for its secret scalar.
   *
   * @throws {KeyMismatchError} if a key comes from another setup than the ciphertext.
   * @throws {InvalidKeyError} if a key's length differs from the ciphertext's or a position is outside it.
   * @throws {InnerProductOutOfBoundError} if an inner product is outside ±bound.
   * Timing: variable time in the key vectors and in the results.
   */
  decryptSparse(ct: Ciphertext, keys: readonly SparseFunctionKey[], bound: number): Float64Array {
    assertBound(bound);
    checkCiphertext(ct);
    const l = ct.length;
    const maxAt = new Int32Array(l);
    for (const key of keys) {
      assertSameSetup(ct, key, 'ciphertext and function key');
      if (key.length !== l) throw new InvalidKeyError(`function key has length ${key.length}, ciphertext has length ${l}`);
      for (let j = 0; j < key.indices.length; j++) {
        const i = (key.indices[j] ?? -1) + key.shift;
        if (!(i >= 0 && i < l)) throw new InvalidKeyError(`sparse key position ${i} is outside [0, ${l})`);
        const c = Math.abs(key.coeffs[j] ?? 0);
        if (!(c <= MAX_KEY_COEFFICIENT)) throw new InvalidKeyError(`sparse key coefficient outside ±${MAX_KEY_COEFFICIENT}`);
        if (c > (maxAt[i] ?? 0)) maxAt[i] = c;
      }
    }
    const out = new Float64Array(keys.length);
    if (keys.length === 0) return out;
    const solver = this.dlog(bound);
    const k = this.kernel;
    const m = k.mark();
    // Small multiples of every point that is used, all normalized with one batched inversion.
    const offsets = new Int32Array(l + 1);
    for (let i = 0; i < l; i++) offsets[i + 1] = (offsets[i] ?? 0) + (maxAt[i] ?? 0);
    const count = offsets[l] ?? 0;
    const table = k.alloc(Math.max(1, count) * NIELS_BYTES);
    {
      const tm = k.mark();
      const ext = k.alloc(Math.max(1, count) * EXT_BYTES);
      const aff = k.alloc(Math.max(1, count) * AFFINE_BYTES);
      const p = k.alloc(EXT_BYTES);
      const pc = k.alloc(EXT_BYTES);
      for (let i = 0; i < l; i++) {
        const n = maxAt[i] ?? 0;
        if (n === 0) continue;
        const first = ext + (offsets[i] ?? 0) * EXT_BYTES;
        loadExtendedFromAffine(k, p, ct.points, i + 1);
        k.toCached(pc, p);
        k.copy(first, p, EXT_BYTES);
        for (let j = 1; j < n; j++) k.add(first + j * EXT_BYTES, first + (j - 1) * EXT_BYTES, pc);
      }
      k.toAffineBatch(aff, ext, count);
      for (let t = 0; t < count; t++) k.affineToNiels(table + t * NIELS_BYTES, aff + t * AFFINE_BYTES);
      k.release(tm);
    }
    const c0 = k.alloc(EXT_BYTES);
    loadExtendedFromAffine(k, c0, ct.points, 0);
    const w = keys.length >= 256 ? 8 : keys.length >= 16 ? 6 : 4;
    const c0Table = new FixedBaseTable(k, c0, w);
    const chunk = 1024;
    const results = k.alloc(Math.min(chunk, keys.length) * EXT_BYTES);
    for (let start = 0; start < keys.length; start += chunk) {
      const n = Math.min(chunk, keys.length - start);
      for (let q = 0; q < n; q++) {
        const key = keys[start + q] as SparseFunctionKey;
        const acc = results + q * EXT_BYTES;
        k.setIdentity(acc);
        const { indices, coeffs, shift } = key;
        for (let j = 0; j < indices.length; j++) {
          const c = coeffs[j] ?? 0;
          if (c === 0) continue;
          const i = (indices[j] ?? 0) + shift;
          const entry = table + ((offsets[i] ?? 0) + (c < 0 ? -c : c) - 1) * NIELS_BYTES;
          if (c < 0) k.msub(acc, acc, entry);
          else k.madd(acc, acc, entry);
        }
        c0Table.addMulDigits(acc, recodeSigned(modOrder(GROUP_ORDER - key.sk), w));
      }
      const t = performance.now();
      solver.solveBatch(results, n, bound, out, start);
      this.stats.dlogMs += performance.now() - t;
      this.stats.dlogCount += n;
    }
    k.release(m);
    return out;
  }

  /**
   * Decrypts <x, y> for every key in `keys` from one ciphertext; results are exact integers in
   * ±bound. Work shared by all keys: the Niels form of the ciphertext points and a fixed-base
   * table for ct_0.
   *
   * @throws {KeyMismatchError} if a key comes from another setup than the ciphertext.
   * @throws {InvalidKeyError} if a key's vector length differs from the ciphertext's.
   * @throws {InnerProductOutOfBoundError} if an inner product is outside ±bound.
   * Timing: variable time in the key vectors and in the results (see {@link ./curve/dlog.js}).
   */
  decrypt(ct: Ciphertext, keys: readonly FunctionKey[], bound: number): Float64Array {
    return this.decryptMany([ct], keys, bound);
  }

  /**
   * Decrypts <x_c, y_k> for every ciphertext c and key k; result[c·keys + k].
   *
   * @throws see {@link decrypt}.
   */
  decryptMany(cts: readonly Ciphertext[], keys: readonly FunctionKey[], bound: number): Float64Array {
    assertBound(bound);
    const out = new Float64Array(cts.length * keys.length);
    if (keys.length === 0) return out;
    for (const ct of cts) checkCiphertext(ct);
    for (const ct of cts) {
      for (const key of keys) {
        assertSameSetup(ct, key, 'ciphertext and function key');
        if (key.y.length !== ct.length) {
          throw new InvalidKeyError(`function key has length ${key.y.length}, ciphertext has length ${ct.length}`);
        }
      }
    }
    const solver = this.dlog(bound);
    const k = this.kernel;
    const l = cts[0]?.length ?? 0;
    const m = k.mark();
    const niels = k.alloc(l * NIELS_BYTES);
    const c0 = k.alloc(EXT_BYTES);
    const results = k.alloc(keys.length * EXT_BYTES);
    const w = keys.length >= 4 ? 5 : 4;
    const skDigits = keys.map((key) => recodeSigned(modOrder(GROUP_ORDER - key.sk), w));
    cts.forEach((ct, c) => {
      const tm = k.mark();
      loadNiels(k, niels, ct.points.subarray(AFFINE_WORDS), l);
      loadExtendedFromAffine(k, c0, ct.points, 0);
      const table = new FixedBaseTable(k, c0, w);
      keys.forEach((key, j) => {
        const acc = results + j * EXT_BYTES;
        combine(k, this.scratch, acc, niels, l, key.y);
        table.addMulDigits(acc, skDigits[j] ?? new Int16Array());
      });
      const t = performance.now();
      solver.solveBatch(results, keys.length, bound, out, c * keys.length);
      this.stats.dlogMs += performance.now() - t;
      this.stats.dlogCount += keys.length;
      k.release(tm);
    });
    k.release(m);
    return out;
  }
}

const LIMBS = 16;
const limbCache = new WeakMap<MasterSecretKey, Float64Array>();

/** The master secret key's scalars as 16 little-endian 16-bit limbs each (cached per key). */
function limbsOf(msk: MasterSecretKey): Float64Array {
  let limbs = limbCache.get(msk);
  if (limbs === undefined) {
    limbs = new Float64Array(msk.length * LIMBS);
    msk.s.forEach((s, i) => {
      let v = s;
      for (let t = 0; t < LIMBS; t++) {
        limbs![i * LIMBS + t] = Number(v & 0xffffn);
        v >>= 16n;
      }
    });
    limbCache.set(msk, limbs);
  }
  return limbs;
}

/** Σ acc[t]·2^(16t) for exact integer (possibly negative) float limbs. */
function fromLimbs(acc: Float64Array): bigint {
  let total = 0n;
  for (let t = LIMBS - 1; t >= 0; t--) total = (total << 16n) + BigInt(acc[t] ?? 0);
  return total;
}

/** Checks the shape of a ciphertext object. */
function checkCiphertext(ct: Ciphertext): void {
  if (ct.points.length !== (ct.length + 1) * AFFINE_WORDS) {
    throw new FormatError(`ciphertext has ${ct.points.length} words, expected ${(ct.length + 1) * AFFINE_WORDS}`);
  }
}

/** Extended point (X=x, Y=y, Z=1, T=x·y) from affine words. */
function loadExtendedFromAffine(k: Kernel, addr: number, words: Int32Array, index: number): void {
  const v = k.i32;
  const base = addr >> 2;
  v.set(words.subarray(index * AFFINE_WORDS, (index + 1) * AFFINE_WORDS), base);
  v.fill(0, base + 20, base + 30);
  v[base + 20] = 1;
  k.fe_mul(addr + 120, addr, addr + 40);
}

let shared: FeEngine | undefined;

/** A lazily created engine for the current thread. */
export function defaultEngine(): FeEngine {
  shared ??= new FeEngine();
  return shared;
}
