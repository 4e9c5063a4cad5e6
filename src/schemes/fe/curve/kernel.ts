/**
 * The arithmetic kernel behind the functional-encryption scheme: GF(2^255 − 19) and the twisted
 * Edwards curve −x² + y² = 1 + d·x²·y² (the curve underneath ristretto255), emitted as a small
 * WebAssembly module at load time (see {@link ./wasm-builder.js}).
 *
 * Why not noble's points directly: a noble point addition costs about 2.8 µs (bigint field
 * arithmetic); this kernel's costs about a tenth of that, and CryptoNN training needs hundreds of
 * millions of additions. noble-curves stays the reference: the tests cross-check every operation
 * against it, and it does all encoding and decoding (see {@link ./group.js}).
 *
 * Representation (ref10's): a field element is 10 signed 32-bit limbs, radix 2^25.5 (26 bits in
 * even limbs, 25 in odd ones), 40 bytes. Point layouts in linear memory, each coordinate 40 bytes:
 * - extended `X, Y, Z, T` (x = X/Z, y = Y/Z, x·y = T/Z): 160 bytes;
 * - cached `Y+X, Y−X, 2Z, 2d·T` (right operand of {@link Kernel.add}): 160 bytes;
 * - Niels `y+x, y−x, 2d·x·y` (affine right operand of {@link Kernel.madd}): 120 bytes;
 * - affine `x, y`: 80 bytes.
 *
 * Timing: every kernel function runs in time independent of the values it works on (straight-line
 * code, no branches or memory accesses that depend on data). What callers do with it (for example
 * skipping zero digits) may not be; each caller states its own behaviour.
 *
 * @module
 */
import { assembleModule, FunctionBuilder, I32, I64, Op } from './wasm-builder.js';

/** Bytes of one field element. */
export const FE_BYTES = 40;
/** Bytes of an extended or cached point. */
export const EXT_BYTES = 160;
/** Bytes of a Niels (affine, precomputed) point. */
export const NIELS_BYTES = 120;
/** Bytes of an affine point. */
export const AFFINE_BYTES = 80;

const P = (1n << 255n) - 19n;
const D = (-121665n * modInverse(121666n, P)) % P;
const TWO_D = (2n * (D + P)) % P;

const LIMB_BITS = [26, 25, 26, 25, 26, 25, 26, 25, 26, 25] as const;
const LIMB_SHIFT = [0, 26, 51, 77, 102, 128, 153, 179, 204, 230] as const;
const MASK26 = (1n << 26n) - 1n;
const MASK25 = (1n << 25n) - 1n;

/** Fixed addresses: constants and scratch space used by the point functions. */
const ADDR_2D = 64;
const ADDR_TMP = 128;
const NUM_TMP = 8;
/** First address handed out by the allocator. */
const HEAP_START = 1024;
const PAGE = 65536;

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/** Splits a field element (0 ≤ v < 2^255) into its 10 limbs. */
export function limbsOf(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < 10; i++) {
    const shift = BigInt(LIMB_SHIFT[i] ?? 0);
    const mask = (LIMB_BITS[i] ?? 26) === 26 ? MASK26 : MASK25;
    out.push(Number((v >> shift) & mask));
  }
  return out;
}

/** The field element (reduced mod p) that 10 limbs (any signs) stand for. */
export function valueOf(limbs: ArrayLike<number>): bigint {
  let v = 0n;
  for (let i = 0; i < 10; i++) v += BigInt(limbs[i] ?? 0) << BigInt(LIMB_SHIFT[i] ?? 0);
  return ((v % P) + P) % P;
}

// ---------------------------------------------------------------------------------------------
// Code generation
// ---------------------------------------------------------------------------------------------

const F = {
  mul: 0,
  add: 1,
  sub: 2,
  freeze: 3,
  copy: 4,
  geAdd: 5,
  geSub: 6,
  geMadd: 7,
  geMsub: 8,
  geDbl: 9,
  toCached: 10,
  affineToNiels: 11,
} as const;

/** Carries the 10 limb locals `h` in place (the top carry folds back ×19), leaving small limbs. */
function emitCarry(fb: FunctionBuilder, h: readonly number[], c: number): void {
  for (let i = 0; i < 10; i++) {
    const bits = LIMB_BITS[i] ?? 26;
    const hi = h[i] ?? 0;
    fb.get(hi).i64(BigInt(bits)).emit(Op.i64ShrS).set(c);
    fb.get(hi).i64(bits === 26 ? MASK26 : MASK25).emit(Op.i64And).set(hi);
    if (i < 9) {
      const next = h[i + 1] ?? 0;
      fb.get(next).get(c).emit(Op.i64Add).set(next);
    } else {
      const h0 = h[0] ?? 0;
      fb.get(h0).get(c).i64(19n).emit(Op.i64Mul, Op.i64Add).set(h0);
    }
  }
}

/** After {@link emitCarry}: one more carry from limb 0 into limb 1. */
function emitCarry01(fb: FunctionBuilder, h: readonly number[], c: number): void {
  const h0 = h[0] ?? 0;
  const h1 = h[1] ?? 0;
  fb.get(h0).i64(26n).emit(Op.i64ShrS).set(c);
  fb.get(h0).i64(MASK26).emit(Op.i64And).set(h0);
  fb.get(h1).get(c).emit(Op.i64Add).set(h1);
}

function storeLimbs(fb: FunctionBuilder, ptr: number, h: readonly number[]): void {
  for (let i = 0; i < 10; i++) fb.store32(ptr, 4 * i, () => fb.get(h[i] ?? 0));
}

function buildMul(): FunctionBuilder {
  const fb = new FunctionBuilder('fe_mul', [I32, I32, I32]);
  const [hp, fp, gp] = [0, 1, 2];
  const f: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < 10; i++) {
    const l = fb.local(I64);
    fb.load32(fp, 4 * i).set(l);
    f.push(l);
  }
  for (let i = 0; i < 10; i++) {
    const l = fb.local(I64);
    fb.load32(gp, 4 * i).set(l);
    g.push(l);
  }
  const g19: number[] = [0];
  for (let j = 1; j < 10; j++) {
    const l = fb.local(I64);
    fb.get(g[j] ?? 0).i64(19n).emit(Op.i64Mul).set(l);
    g19.push(l);
  }
  const f2: number[] = [];
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 1) {
      const l = fb.local(I64);
      fb.get(f[i] ?? 0).get(f[i] ?? 0).emit(Op.i64Add).set(l);
      f2.push(l);
    } else f2.push(f[i] ?? 0);
  }
  const h: number[] = [];
  for (let k = 0; k < 10; k++) {
    const l = fb.local(I64);
    for (let i = 0; i < 10; i++) {
      const j = (k - i + 10) % 10;
      const wrap = i + j >= 10;
      const a = i % 2 === 1 && j % 2 === 1 ? (f2[i] ?? 0) : (f[i] ?? 0);
      const b = wrap ? (g19[j] ?? 0) : (g[j] ?? 0);
      fb.get(a).get(b).emit(Op.i64Mul);
      if (i > 0) fb.emit(Op.i64Add);
    }
    fb.set(l);
    h.push(l);
  }
  const c = fb.local(I64);
  emitCarry(fb, h, c);
  emitCarry01(fb, h, c);
  storeLimbs(fb, hp, h);
  return fb;
}

function buildAddSub(exportName: string, op: number): FunctionBuilder {
  const fb = new FunctionBuilder(exportName, [I32, I32, I32]);
  const h: number[] = [];
  for (let i = 0; i < 10; i++) {
    const l = fb.local(I64);
    fb.load32(1, 4 * i).load32(2, 4 * i).emit(op).set(l);
    h.push(l);
  }
  const c = fb.local(I64);
  emitCarry(fb, h, c);
  emitCarry01(fb, h, c);
  storeLimbs(fb, 0, h);
  return fb;
}

/** In place: the canonical limbs (each in range, value < p) of the element at the pointer. */
function buildFreeze(): FunctionBuilder {
  const fb = new FunctionBuilder('fe_freeze', [I32]);
  const fourP = limbsOf(0n).map((_, i) => {
    const bits = LIMB_BITS[i] ?? 26;
    const limb = i === 0 ? (1n << 26n) - 19n : (1n << BigInt(bits)) - 1n;
    return 4n * limb;
  });
  const h: number[] = [];
  for (let i = 0; i < 10; i++) {
    const l = fb.local(I64);
    fb.load32(0, 4 * i).i64(fourP[i] ?? 0n).emit(Op.i64Add).set(l);
    h.push(l);
  }
  const c = fb.local(I64);
  for (let pass = 0; pass < 3; pass++) emitCarry(fb, h, c);
  // q = 1 exactly when the value is ≥ p.
  const q = fb.local(I64);
  fb.get(h[0] ?? 0).i64(19n).emit(Op.i64Add).i64(26n).emit(Op.i64ShrS).set(q);
  for (let i = 1; i < 10; i++) {
    fb.get(h[i] ?? 0).get(q).emit(Op.i64Add).i64(BigInt(LIMB_BITS[i] ?? 26)).emit(Op.i64ShrS).set(q);
  }
  fb.get(h[0] ?? 0).get(q).i64(19n).emit(Op.i64Mul, Op.i64Add).set(h[0] ?? 0);
  for (let i = 0; i < 9; i++) {
    const bits = LIMB_BITS[i] ?? 26;
    const hi = h[i] ?? 0;
    const next = h[i + 1] ?? 0;
    fb.get(hi).i64(BigInt(bits)).emit(Op.i64ShrS).set(c);
    fb.get(hi).i64(bits === 26 ? MASK26 : MASK25).emit(Op.i64And).set(hi);
    fb.get(next).get(c).emit(Op.i64Add).set(next);
  }
  fb.get(h[9] ?? 0).i64(MASK25).emit(Op.i64And).set(h[9] ?? 0);
  storeLimbs(fb, 0, h);
  return fb;
}

function buildCopy(): FunctionBuilder {
  const fb = new FunctionBuilder('fe_copy', [I32, I32]);
  for (let i = 0; i < 10; i++) {
    fb.get(0).get(1).emit(Op.i32Load, 2, 4 * i).emit(Op.i32Store, 2, 4 * i);
  }
  return fb;
}

/**
 * Helper for writing the point functions: each call takes addresses given as
 * `[pointerLocal, byteOffset]` (pointerLocal −1 means an absolute address).
 */
type Addr = readonly [number, number];
function tmp(k: number): Addr {
  return [-1, ADDR_TMP + FE_BYTES * k];
}

function pushAddr(fb: FunctionBuilder, a: Addr): void {
  if (a[0] < 0) fb.i32(a[1]);
  else {
    fb.get(a[0]);
    if (a[1] !== 0) fb.i32(a[1]).emit(Op.i32Add);
  }
}

function callFe(fb: FunctionBuilder, fn: number, ...args: Addr[]): void {
  for (const a of args) pushAddr(fb, a);
  fb.call(fn);
}

/** r = p + q (q cached) or p − q; r may alias p. */
function buildGeAdd(exportName: string, negate: boolean, niels: boolean): FunctionBuilder {
  const fb = new FunctionBuilder(exportName, [I32, I32, I32]);
  const r = 0;
  const p = 1;
  const q = 2;
  const X: Addr = [p, 0];
  const Y: Addr = [p, 40];
  const Z: Addr = [p, 80];
  const T: Addr = [p, 120];
  const qYpX: Addr = [q, negate ? 40 : 0];
  const qYmX: Addr = [q, negate ? 0 : 40];
  const qT2d: Addr = [q, niels ? 80 : 120];
  callFe(fb, F.sub, tmp(0), Y, X);
  callFe(fb, F.mul, tmp(0), tmp(0), qYmX); // A
  callFe(fb, F.add, tmp(1), Y, X);
  callFe(fb, F.mul, tmp(1), tmp(1), qYpX); // B
  callFe(fb, F.mul, tmp(2), T, qT2d); // C (negated when subtracting, handled below)
  if (niels) callFe(fb, F.add, tmp(3), Z, Z); // D = 2·Z1
  else callFe(fb, F.mul, tmp(3), Z, [q, 80]); // D = Z1·2Z2
  callFe(fb, F.sub, tmp(4), tmp(1), tmp(0)); // E = B − A
  callFe(fb, F.add, tmp(5), tmp(1), tmp(0)); // H = B + A
  callFe(fb, negate ? F.add : F.sub, tmp(6), tmp(3), tmp(2)); // F = D ∓ C
  callFe(fb, negate ? F.sub : F.add, tmp(7), tmp(3), tmp(2)); // G = D ± C
  callFe(fb, F.mul, [r, 0], tmp(4), tmp(6)); // X3 = E·F
  callFe(fb, F.mul, [r, 40], tmp(7), tmp(5)); // Y3 = G·H
  callFe(fb, F.mul, [r, 80], tmp(6), tmp(7)); // Z3 = F·G
  callFe(fb, F.mul, [r, 120], tmp(4), tmp(5)); // T3 = E·H
  return fb;
}

/** r = 2p (r may alias p). */
function buildGeDbl(): FunctionBuilder {
  const fb = new FunctionBuilder('ge_dbl', [I32, I32]);
  const X: Addr = [1, 0];
  const Y: Addr = [1, 40];
  const Z: Addr = [1, 80];
  callFe(fb, F.mul, tmp(0), X, X); // XX
  callFe(fb, F.mul, tmp(1), Y, Y); // YY
  callFe(fb, F.mul, tmp(2), Z, Z);
  callFe(fb, F.add, tmp(2), tmp(2), tmp(2)); // 2ZZ
  callFe(fb, F.add, tmp(3), X, Y);
  callFe(fb, F.mul, tmp(3), tmp(3), tmp(3)); // (X+Y)²
  callFe(fb, F.add, tmp(4), tmp(1), tmp(0)); // Y' = YY + XX
  callFe(fb, F.sub, tmp(5), tmp(1), tmp(0)); // Z' = YY − XX
  callFe(fb, F.sub, tmp(6), tmp(3), tmp(4)); // X' = 2XY
  callFe(fb, F.sub, tmp(7), tmp(2), tmp(5)); // T' = 2ZZ − Z'
  callFe(fb, F.mul, [0, 0], tmp(6), tmp(7));
  callFe(fb, F.mul, [0, 40], tmp(4), tmp(5));
  callFe(fb, F.mul, [0, 80], tmp(5), tmp(7));
  callFe(fb, F.mul, [0, 120], tmp(6), tmp(4));
  return fb;
}

/** c = cached form of the extended point p (c may alias p). */
function buildToCached(): FunctionBuilder {
  const fb = new FunctionBuilder('ge_to_cached', [I32, I32]);
  callFe(fb, F.add, tmp(0), [1, 40], [1, 0]);
  callFe(fb, F.sub, tmp(1), [1, 40], [1, 0]);
  callFe(fb, F.add, tmp(2), [1, 80], [1, 80]);
  callFe(fb, F.mul, [0, 120], [1, 120], [-1, ADDR_2D]);
  callFe(fb, F.copy, [0, 0], tmp(0));
  callFe(fb, F.copy, [0, 40], tmp(1));
  callFe(fb, F.copy, [0, 80], tmp(2));
  return fb;
}

/** n = Niels form of the affine point a (n may not alias a). */
function buildAffineToNiels(): FunctionBuilder {
  const fb = new FunctionBuilder('affine_to_niels', [I32, I32]);
  callFe(fb, F.mul, tmp(0), [1, 0], [1, 40]);
  callFe(fb, F.mul, [0, 80], tmp(0), [-1, ADDR_2D]);
  callFe(fb, F.add, [0, 0], [1, 40], [1, 0]);
  callFe(fb, F.sub, [0, 40], [1, 40], [1, 0]);
  return fb;
}

function buildModuleBytes(): Uint8Array {
  const fns: FunctionBuilder[] = [];
  fns[F.mul] = buildMul();
  fns[F.add] = buildAddSub('fe_add', Op.i64Add);
  fns[F.sub] = buildAddSub('fe_sub', Op.i64Sub);
  fns[F.freeze] = buildFreeze();
  fns[F.copy] = buildCopy();
  fns[F.geAdd] = buildGeAdd('ge_add', false, false);
  fns[F.geSub] = buildGeAdd('ge_sub', true, false);
  fns[F.geMadd] = buildGeAdd('ge_madd', false, true);
  fns[F.geMsub] = buildGeAdd('ge_msub', true, true);
  fns[F.geDbl] = buildGeDbl();
  fns[F.toCached] = buildToCached();
  fns[F.affineToNiels] = buildAffineToNiels();
  return assembleModule(fns, { exportName: 'memory', minPages: 32 });
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

interface KernelExports {
  readonly memory: WebAssembly.Memory;
  fe_mul(h: number, f: number, g: number): void;
  fe_add(h: number, f: number, g: number): void;
  fe_sub(h: number, f: number, g: number): void;
  fe_freeze(h: number): void;
  fe_copy(h: number, f: number): void;
  ge_add(r: number, p: number, q: number): void;
  ge_sub(r: number, p: number, q: number): void;
  ge_madd(r: number, p: number, q: number): void;
  ge_msub(r: number, p: number, q: number): void;
  ge_dbl(r: number, p: number): void;
  ge_to_cached(c: number, p: number): void;
  affine_to_niels(n: number, a: number): void;
}

let compiled: WebAssembly.Module | undefined;

/**
 * One instance of the kernel with its own linear memory and a stack allocator over it. Not safe
 * to share between threads; each worker makes its own.
 */
export class Kernel {
  readonly fe_mul: (h: number, f: number, g: number) => void;
  readonly fe_add: (h: number, f: number, g: number) => void;
  readonly fe_sub: (h: number, f: number, g: number) => void;
  readonly fe_freeze: (h: number) => void;
  readonly fe_copy: (h: number, f: number) => void;
  /** r = p + q, p extended, q cached (r may alias p). */
  readonly add: (r: number, p: number, q: number) => void;
  /** r = p − q, p extended, q cached (r may alias p). */
  readonly sub: (r: number, p: number, q: number) => void;
  /** r = p + q, p extended, q Niels (r may alias p). */
  readonly madd: (r: number, p: number, q: number) => void;
  /** r = p − q, p extended, q Niels (r may alias p). */
  readonly msub: (r: number, p: number, q: number) => void;
  /** r = 2p (r may alias p). */
  readonly dbl: (r: number, p: number) => void;
  /** c = cached form of extended p (c may alias p). */
  readonly toCached: (c: number, p: number) => void;
  /** n = Niels form of affine a (n must not alias a). */
  readonly affineToNiels: (n: number, a: number) => void;

  private readonly memory: WebAssembly.Memory;
  private view: Int32Array;
  private top = HEAP_START;

  constructor() {
    compiled ??= new WebAssembly.Module(buildModuleBytes() as Uint8Array<ArrayBuffer>);
    const ex = new WebAssembly.Instance(compiled, {}).exports as unknown as KernelExports;
    this.memory = ex.memory;
    this.view = new Int32Array(this.memory.buffer);
    this.fe_mul = ex.fe_mul;
    this.fe_add = ex.fe_add;
    this.fe_sub = ex.fe_sub;
    this.fe_freeze = ex.fe_freeze;
    this.fe_copy = ex.fe_copy;
    this.add = ex.ge_add;
    this.sub = ex.ge_sub;
    this.madd = ex.ge_madd;
    this.msub = ex.ge_msub;
    this.dbl = ex.ge_dbl;
    this.toCached = ex.ge_to_cached;
    this.affineToNiels = ex.affine_to_niels;
    this.writeFe(ADDR_2D, TWO_D);
  }

  /** The current Int32 view of linear memory (replaced when memory grows: do not keep it). */
  get i32(): Int32Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Int32Array(this.memory.buffer);
    return this.view;
  }

  /** Reserves `bytes` (rounded up to 8) and returns the address. Grows memory as needed. */
  alloc(bytes: number): number {
    const addr = this.top;
    this.top += (bytes + 7) & ~7;
    const need = this.top - this.memory.buffer.byteLength;
    if (need > 0) this.memory.grow(Math.ceil(need / PAGE) + 16);
    return addr;
  }

  /** The allocator position, to hand to {@link release} later. */
  mark(): number {
    return this.top;
  }

  /** Frees everything allocated since `mark`. */
  release(mark: number): void {
    if (mark < HEAP_START || mark > this.top) throw new RangeError('invalid allocator mark');
    this.top = mark;
  }

  /** Writes a field element (any bigint, reduced mod p). */
  writeFe(addr: number, value: bigint): void {
    const limbs = limbsOf(((value % P) + P) % P);
    this.i32.set(limbs, addr >> 2);
  }

  /** Reads a field element as a bigint in [0, p). */
  readFe(addr: number): bigint {
    const base = addr >> 2;
    return valueOf(this.i32.subarray(base, base + 10));
  }

  /** Writes the identity point (0 : 1 : 1 : 0) in extended form. */
  setIdentity(addr: number): void {
    const v = this.i32;
    const base = addr >> 2;
    v.fill(0, base, base + 40);
    v[base + 10] = 1;
    v[base + 20] = 1;
  }

  /** Copies `bytes` bytes from `src` to `dst` (non-overlapping). */
  copy(dst: number, src: number, bytes: number): void {
    const v = this.i32;
    v.copyWithin(dst >> 2, src >> 2, (src + bytes) >> 2);
  }

  /** f^(2^k) by k squarings, in place. */
  private sqn(addr: number, k: number): void {
    for (let i = 0; i < k; i++) this.fe_mul(addr, addr, addr);
  }

  /**
   * out = z^(p−2) = 1/z (0 for z = 0), with ref10's addition chain: 254 squarings and 11
   * multiplications. Constant time.
   */
  invert(out: number, z: number): void {
    const m = this.mark();
    const t0 = this.alloc(FE_BYTES);
    const t1 = this.alloc(FE_BYTES);
    const t2 = this.alloc(FE_BYTES);
    const t3 = this.alloc(FE_BYTES);
    const mul = this.fe_mul;
    mul(t0, z, z); // 2
    mul(t1, t0, t0);
    mul(t1, t1, t1); // 8
    mul(t1, z, t1); // 9
    mul(t0, t0, t1); // 11
    mul(t2, t0, t0); // 22
    mul(t1, t1, t2); // 2^5 − 1
    this.fe_copy(t2, t1);
    this.sqn(t2, 5);
    mul(t1, t2, t1); // 2^10 − 1
    this.fe_copy(t2, t1);
    this.sqn(t2, 10);
    mul(t2, t2, t1); // 2^20 − 1
    this.fe_copy(t3, t2);
    this.sqn(t3, 20);
    mul(t2, t3, t2); // 2^40 − 1
    this.sqn(t2, 10);
    mul(t1, t2, t1); // 2^50 − 1
    this.fe_copy(t2, t1);
    this.sqn(t2, 50);
    mul(t2, t2, t1); // 2^100 − 1
    this.fe_copy(t3, t2);
    this.sqn(t3, 100);
    mul(t2, t3, t2); // 2^200 − 1
    this.sqn(t2, 50);
    mul(t1, t2, t1); // 2^250 − 1
    this.sqn(t1, 5); // 2^255 − 32
    mul(out, t1, t0); // 2^255 − 21
    this.release(m);
  }

  /**
   * Converts `count` extended points (stride 160 bytes from `src`) to affine points (stride 80
   * from `dst`) with one inversion (Montgomery's trick). Points at infinity do not occur on this
   * curve (Z is never 0 for a valid point). Constant time in the values.
   */
  toAffineBatch(dst: number, src: number, count: number): void {
    if (count === 0) return;
    const m = this.mark();
    const prefix = this.alloc(FE_BYTES * count);
    const inv = this.alloc(FE_BYTES);
    const t = this.alloc(FE_BYTES);
    this.fe_copy(prefix, src + 80);
    for (let i = 1; i < count; i++) {
      this.fe_mul(prefix + FE_BYTES * i, prefix + FE_BYTES * (i - 1), src + EXT_BYTES * i + 80);
    }
    this.invert(inv, prefix + FE_BYTES * (count - 1));
    for (let i = count - 1; i >= 0; i--) {
      const p = src + EXT_BYTES * i;
      // zi = inv · prefix[i−1]; inv ← inv · Z_i
      if (i > 0) this.fe_mul(t, inv, prefix + FE_BYTES * (i - 1));
      else this.fe_copy(t, inv);
      if (i > 0) this.fe_mul(inv, inv, p + 80);
      const q = dst + AFFINE_BYTES * i;
      this.fe_mul(q, p, t);
      this.fe_mul(q + 40, p + 40, t);
    }
    this.release(m);
  }
}
