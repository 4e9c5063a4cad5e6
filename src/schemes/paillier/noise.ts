/**
 * Sources of the random n-th residues r^n mod n² that make Paillier encryption probabilistic.
 * This is where encryption spends its time, so it is kept apart from the scheme itself:
 *
 * - {@link DjnNoise}: Damgård–Jurik–Nielsen. A fixed base hs = h^n mod n² (h = −x² mod n for a
 *   random x) and a short random exponent a of ⌈k/2⌉ bits for a k-bit n; hs^a comes from a
 *   {@link FixedBaseTable}, about ⌈k/2⌉/8 multiplications instead of ~1.2·k for r^n.
 *   Security rests on the decisional composite residuosity assumption plus the assumption that
 *   hs^a with a short uniform exponent is indistinguishable from a uniform n-th residue (DJN 2010,
 *   section 4; see docs/security.md).
 * - {@link ClassicNoise}: r^n for uniform r in Z*_n, as in the original scheme and python-paillier.
 * - {@link NoisePool}: values computed ahead of time (at idle time or in a worker), so the online
 *   cost of an encryption is two multiplications.
 *
 * Timing: the time to produce a value depends on the random exponent's zero digits; the values
 * are used once and never revealed, so this leaks nothing about plaintexts.
 *
 * @module
 */
import { FixedBaseTable } from '../../math/fixed-base.js';
import { gcd, mod, modPow } from '../../math/modular.js';
import { randomBits, randomUnit } from '../../math/random.js';

/** Something that hands out fresh random n-th residues modulo n². */
export interface NoiseSource {
  /** A fresh r^n mod n² (never returned twice). */
  next(): bigint;
}

/** r^n mod n² with r uniform in Z*_n: the textbook (and python-paillier) way. */
export class ClassicNoise implements NoiseSource {
  constructor(
    private readonly n: bigint,
    private readonly nSquared: bigint,
  ) {}

  next(): bigint {
    return modPow(randomUnit(this.n, gcd), this.n, this.nSquared);
  }
}

/** Options of {@link DjnNoise}. */
export interface DjnOptions {
  /** Bits of the random exponent; defaults to ⌈bits(n)/2⌉ as in DJN. */
  exponentBits?: number;
  /** Fixed-base table window; 8 gives ~k/16 multiplications per value and ~k·16 table entries. */
  windowBits?: number;
}

/** hs^a mod n² with hs = (−x²)^n fixed and a a short uniform exponent (Damgård–Jurik–Nielsen). */
export class DjnNoise implements NoiseSource {
  /** Bits of the random exponent. */
  readonly exponentBits: number;
  private readonly table: FixedBaseTable;

  /** Builds the fixed-base table: about 0.5 s for a 2048-bit key, paid once per key and process. */
  constructor(n: bigint, nSquared: bigint, options: DjnOptions = {}) {
    this.exponentBits = options.exponentBits ?? Math.ceil(n.toString(2).length / 2);
    const x = randomUnit(n, gcd);
    const h = mod(-(x * x), n);
    const hs = modPow(h, n, nSquared);
    this.table = new FixedBaseTable(hs, nSquared, this.exponentBits, options.windowBits ?? 8);
  }

  next(): bigint {
    // A zero exponent would give 1 (no noise at all); it has probability 2^-exponentBits.
    for (;;) {
      const a = randomBits(this.exponentBits);
      if (a !== 0n) return this.table.pow(a);
    }
  }
}

/**
 * A queue of noise values computed ahead of time. `take()` serves from the queue and falls back to
 * the underlying source when it is empty, so it never blocks and never reuses a value.
 */
export class NoisePool implements NoiseSource {
  private readonly ready: bigint[] = [];

  constructor(private readonly source: NoiseSource) {}

  /** Number of values waiting. */
  get size(): number {
    return this.ready.length;
  }

  /** Computes `count` values now (call at idle time), or adds values computed elsewhere. */
  fill(count: number): void {
    for (let i = 0; i < count; i++) this.ready.push(this.source.next());
  }

  /** Adds values computed elsewhere (for example by a worker holding the same public key). */
  add(values: Iterable<bigint>): void {
    for (const v of values) this.ready.push(v);
  }

  next(): bigint {
    return this.ready.pop() ?? this.source.next();
  }
}
