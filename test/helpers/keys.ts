/**
 * Keys shared by tests: generating 2048-bit keys takes about a second, so each test file makes
 * its keys once.
 */
import { generateKeyPair, type PaillierKeyPair } from '../../src/schemes/paillier/index.js';

let small: PaillierKeyPair | undefined;
let real: PaillierKeyPair | undefined;

/** A 512-bit key pair (insecure, for fast property tests). */
export function smallKeys(): PaillierKeyPair {
  small ??= generateKeyPair({ bits: 512, insecure: true });
  return small;
}

/** A 2048-bit key pair, the default size. */
export function realKeys(): PaillierKeyPair {
  real ??= generateKeyPair();
  return real;
}
