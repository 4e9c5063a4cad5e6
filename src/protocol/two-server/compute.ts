/**
 * The bulk arithmetic the two servers need, behind one interface so it can run on the calling
 * thread ({@link LocalTwoServerCompute}, browser-safe) or on worker threads
 * (`TwoServerWorkerPool` in `blindml/workers`). Every implementation returns the same values.
 *
 * @module
 */
import { powProducts, type PowRow } from '../../math/straus.js';
import type { PaillierPrivateKey, PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { packRaw } from '../../schemes/paillier/packing.js';

export type { PowRow } from '../../math/straus.js';

/** Bulk Paillier work on raw ciphertext integers. */
export interface TwoServerCompute {
  /** Π bases[index]^exps mod m for each row (see `powProducts`). */
  powProducts(bases: readonly bigint[], rows: readonly PowRow[], m: bigint): Promise<bigint[]>;
  /** CRT decryption of raw ciphertexts to plaintexts in [0, n). */
  decrypt(key: PaillierPrivateKey, values: readonly bigint[]): Promise<bigint[]>;
  /** Encryption of signed integers (|m| < n) to raw ciphertexts. */
  encrypt(key: PaillierPublicKey, values: readonly bigint[]): Promise<bigint[]>;
  /** Horner packing of consecutive groups of `perCiphertext` ciphertexts into slots (see `packRaw`). */
  pack(values: readonly bigint[], slotBits: number, perCiphertext: number, nSquared: bigint): Promise<bigint[]>;
}

/** {@link TwoServerCompute} on the calling thread. */
export class LocalTwoServerCompute implements TwoServerCompute {
  powProducts(bases: readonly bigint[], rows: readonly PowRow[], m: bigint): Promise<bigint[]> {
    return Promise.resolve(powProducts(bases, rows, m));
  }

  decrypt(key: PaillierPrivateKey, values: readonly bigint[]): Promise<bigint[]> {
    return Promise.resolve(values.map((c) => key.decryptRaw(c)));
  }

  encrypt(key: PaillierPublicKey, values: readonly bigint[]): Promise<bigint[]> {
    return Promise.resolve(values.map((m) => key.encryptRaw(m)));
  }

  pack(values: readonly bigint[], slotBits: number, perCiphertext: number, nSquared: bigint): Promise<bigint[]> {
    return Promise.resolve(packRaw(values, null, slotBits, perCiphertext, nSquared));
  }
}
