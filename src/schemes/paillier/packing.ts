/**
 * Slot packing: several signed integers in one Paillier plaintext, as Σ v_i·2^(s·i) with signed
 * digits. Linear operations with integer weights act on every slot at once, so
 *
 * - packing the same position of K samples multiplies the evaluator's throughput by K, and
 * - packing K results into one ciphertext divides decryptions and bytes by K.
 *
 * Slots need headroom: a layout is built from the largest |value| a slot will ever hold (after the
 * sums it will go through), plus guard bits. Unpacking checks every slot against that bound and
 * that nothing is left above the last slot, so an overflow is reported (except with probability
 * about 2^-guardBits for a wildly wrong value), never returned as a wrong number.
 *
 * @module
 */
import { OverflowError } from '../../errors.js';
import { bitLength } from '../../math/bigint.js';
import { modPow } from '../../math/modular.js';
import { PaillierCiphertext } from './ciphertext.js';
import { ciphertextValues } from './linear.js';
import type { PaillierPrivateKey, PaillierPublicKey } from './keys.js';

/** How to size a {@link SlotLayout}. */
export interface SlotLayoutOptions {
  /** Largest |value| any slot may hold, after every sum it goes through. */
  bound: bigint;
  /** Extra bits above the bound that make overflow detectable. Default 6. */
  guardBits?: number;
  /** Slots wanted; defaults to as many as fit. */
  slots?: number;
}

/** The bit layout of packed plaintexts for one modulus size. */
export class SlotLayout {
  /** Bits per slot, sign included. */
  readonly slotBits: number;
  /** Number of slots. */
  readonly slots: number;
  /** Largest |value| a slot may hold. */
  readonly bound: bigint;
  private readonly half: bigint;
  private readonly mask: bigint;

  /**
   * @param modulusBits - bits of the Paillier modulus n.
   * @throws RangeError if not even one slot fits, or more slots are asked for than fit.
   */
  constructor(modulusBits: number, options: SlotLayoutOptions) {
    const guard = options.guardBits ?? 6;
    if (options.bound <= 0n) throw new RangeError('SlotLayout: bound must be positive');
    this.bound = options.bound;
    this.slotBits = bitLength(options.bound) + 1 + guard;
    const fit = Math.floor((modulusBits - 2) / this.slotBits);
    if (fit < 1) throw new RangeError(`SlotLayout: a ${this.slotBits}-bit slot does not fit a ${modulusBits}-bit modulus`);
    const slots = options.slots ?? fit;
    if (!Number.isSafeInteger(slots) || slots < 1 || slots > fit) {
      throw new RangeError(`SlotLayout: ${slots} slots of ${this.slotBits} bits do not fit (at most ${fit})`);
    }
    this.slots = slots;
    this.half = 1n << BigInt(this.slotBits - 1);
    this.mask = (1n << BigInt(this.slotBits)) - 1n;
  }

  /**
   * Layout for sums of `terms` products of a value (|v| ≤ valueBound) and a weight
   * (|w| ≤ weightBound), plus an optional bias.
   */
  static forSums(
    modulusBits: number,
    spec: { valueBound: bigint; weightBound?: bigint; terms: number; biasBound?: bigint; guardBits?: number; slots?: number },
  ): SlotLayout {
    const bound = spec.valueBound * (spec.weightBound ?? 1n) * BigInt(spec.terms) + (spec.biasBound ?? 0n);
    const options: SlotLayoutOptions = { bound };
    if (spec.guardBits !== undefined) options.guardBits = spec.guardBits;
    if (spec.slots !== undefined) options.slots = spec.slots;
    return new SlotLayout(modulusBits, options);
  }

  /**
   * The layout with exactly `slotBits`-bit slots (as announced by a peer), bound 2^(slotBits−1−guard) − 1.
   *
   * @throws RangeError if the slots leave no room for values or do not fit.
   */
  static fromSlotBits(modulusBits: number, slotBits: number, guardBits: number, slots?: number): SlotLayout {
    if (!Number.isSafeInteger(slotBits) || slotBits - 1 - guardBits < 1) throw new RangeError('SlotLayout: slots too narrow for their guard bits');
    const options: SlotLayoutOptions = { bound: (1n << BigInt(slotBits - 1 - guardBits)) - 1n, guardBits };
    if (slots !== undefined) options.slots = slots;
    return new SlotLayout(modulusBits, options);
  }

  /**
   * Packs up to `slots` signed values (slot i holds values[i]).
   *
   * @throws OverflowError if a value exceeds the bound; RangeError for too many values.
   */
  pack(values: readonly bigint[]): bigint {
    if (values.length > this.slots) throw new RangeError(`pack: ${values.length} values for ${this.slots} slots`);
    let packed = 0n;
    const s = BigInt(this.slotBits);
    for (let i = values.length - 1; i >= 0; i--) {
      const v = values[i]!;
      if (v > this.bound || -v > this.bound) throw new OverflowError(`pack: value ${i} exceeds the slot bound`);
      packed = (packed << s) + v;
    }
    return packed;
  }

  /**
   * Unpacks `count` slots from a plaintext in [0, n).
   *
   * @throws OverflowError if a slot exceeds the bound or bits remain above the last slot.
   */
  unpack(plaintext: bigint, n: bigint, count = this.slots): bigint[] {
    let rest = plaintext > n >> 1n ? plaintext - n : plaintext;
    const s = BigInt(this.slotBits);
    const out: bigint[] = [];
    for (let i = 0; i < count; i++) {
      const low = rest & this.mask;
      const v = low >= this.half ? low - (this.mask + 1n) : low;
      if (v > this.bound || -v > this.bound) throw new OverflowError(`unpack: slot ${i} overflowed its headroom`);
      out.push(v);
      rest = (rest - v) >> s;
    }
    if (rest !== 0n) throw new OverflowError('unpack: packed value overflowed its last slot');
    return out;
  }
}

/** Encrypts up to `layout.slots` signed values in one ciphertext. */
export function encryptPacked(key: PaillierPublicKey, layout: SlotLayout, values: readonly bigint[]): PaillierCiphertext {
  return key.encrypt(layout.pack(values));
}

/** Decrypts and unpacks `count` slots. @throws OverflowError, KeyMismatchError, InvalidCiphertextError. */
export function decryptPacked(key: PaillierPrivateKey, layout: SlotLayout, ct: PaillierCiphertext, count = layout.slots): bigint[] {
  return layout.unpack(key.decrypt(ct), key.publicKey.n, count);
}

/**
 * Homomorphically packs ciphertexts of small signed values into one: Π c_i^(2^(s·i)) by Horner's
 * rule, (count − 1)·s squarings. Each input's value must respect the layout's bound.
 *
 * @throws RangeError if there are more ciphertexts than slots; KeyMismatchError on mixed keys.
 */
export function packCiphertexts(cts: readonly PaillierCiphertext[], layout: SlotLayout): PaillierCiphertext {
  if (cts.length === 0 || cts.length > layout.slots) {
    throw new RangeError(`packCiphertexts: ${cts.length} ciphertexts for ${layout.slots} slots`);
  }
  const key = cts[0]!.publicKey;
  const [packed] = packRaw(ciphertextValues(cts, key), null, layout.slotBits, cts.length, key.nSquared);
  return new PaillierCiphertext(key, packed!, false);
}

/**
 * Raw Horner packing of ciphertext integers, each first raised to its own factor if given:
 * Π (c_i^(f_i))^(2^(slotBits·i)) mod n², for consecutive groups of `perCiphertext` values.
 * `perCiphertext` = 1 only applies the factors. The kernel behind {@link packCiphertexts} and the
 * worker pool's packing task.
 */
export function packRaw(values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number, nSquared: bigint): bigint[] {
  const out: bigint[] = [];
  const raised = (i: number): bigint => (factors ? modPow(values[i]!, factors[i]!, nSquared) : values[i]!);
  for (let start = 0; start < values.length; start += perCiphertext) {
    const end = Math.min(values.length, start + perCiphertext);
    let acc = raised(end - 1);
    for (let i = end - 2; i >= start; i--) {
      for (let b = 0; b < slotBits; b++) acc = (acc * acc) % nSquared;
      acc = (acc * raised(i)) % nSquared;
    }
    out.push(acc);
  }
  return out;
}
