/**
 * Where the bulk Paillier work of the multi-key protocol runs. `PaillierWorkerPool`
 * (`blindml/workers`) fits this interface and spreads the work over threads;
 * {@link LocalPaillierCompute} runs it on the calling thread (tests, browsers).
 *
 * @module
 */
import { PaillierCiphertext } from '../../schemes/paillier/ciphertext.js';
import type { PaillierPrivateKey, PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { matVec, type IntegerWeights } from '../../schemes/paillier/linear.js';
import { packRaw } from '../../schemes/paillier/packing.js';

/** Bulk Paillier operations. */
export interface PaillierCompute {
  encryptMany(key: PaillierPublicKey, values: readonly bigint[]): Promise<PaillierCiphertext[]>;
  decryptMany(key: PaillierPrivateKey, cts: readonly PaillierCiphertext[]): Promise<bigint[]>;
  matVec(cts: readonly PaillierCiphertext[], weights: IntegerWeights, rows: number, bias?: readonly bigint[]): Promise<PaillierCiphertext[]>;
  pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number): Promise<bigint[]>;
  noise(key: PaillierPublicKey, count: number): Promise<bigint[]>;
}

/** {@link PaillierCompute} on the calling thread. */
export class LocalPaillierCompute implements PaillierCompute {
  async encryptMany(key: PaillierPublicKey, values: readonly bigint[]): Promise<PaillierCiphertext[]> {
    return values.map((v) => key.encrypt(v));
  }

  async decryptMany(key: PaillierPrivateKey, cts: readonly PaillierCiphertext[]): Promise<bigint[]> {
    return cts.map((c) => key.decrypt(c));
  }

  async matVec(cts: readonly PaillierCiphertext[], weights: IntegerWeights, rows: number, bias?: readonly bigint[]): Promise<PaillierCiphertext[]> {
    return matVec(cts, weights, rows, bias);
  }

  async pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number): Promise<bigint[]> {
    return packRaw(values, factors, slotBits, perCiphertext, key.nSquared);
  }

  async noise(key: PaillierPublicKey, count: number): Promise<bigint[]> {
    return Array.from({ length: count }, () => key.noiseSource.next());
  }
}

/** Wraps raw ciphertext integers under `key` (trusted, locally computed values). */
export function wrapRaw(key: PaillierPublicKey, values: readonly bigint[]): PaillierCiphertext[] {
  return values.map((v) => new PaillierCiphertext(key, v, false));
}
