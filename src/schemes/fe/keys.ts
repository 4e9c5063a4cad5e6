/**
 * The typed objects of the inner-product functional-encryption scheme. Every object carries the
 * id of the setup that made it; operations refuse to combine objects of different setups
 * ({@link KeyMismatchError}).
 *
 * Points are kept as affine limb words (see {@link ./curve/group.js}); they are encoded as
 * canonical ristretto255 bytes only when they leave the process ({@link ./serialize.js}).
 *
 * @module
 */
import { KeyMismatchError } from '../../errors.js';

/** Hex id (32 hex digits) of one run of setup. */
export type SetupId = string;

/** The master public key: h_i = g^{s_i} for i = 1..length. Safe to give to the data owner and server. */
export interface MasterPublicKey {
  readonly kind: 'fe-master-public-key';
  readonly setupId: SetupId;
  readonly length: number;
  /** `length` affine points, 20 words each. */
  readonly h: Int32Array;
}

/** The master secret key s ∈ Z_ℓ^length. Only the key authority holds it. */
export interface MasterSecretKey {
  readonly kind: 'fe-master-secret-key';
  readonly setupId: SetupId;
  readonly length: number;
  readonly s: readonly bigint[];
}

/** An encryption of x ∈ Z^length: (g^r, h_1^r·g^{x_1}, ..., h_l^r·g^{x_l}). */
export interface Ciphertext {
  readonly kind: 'fe-ciphertext';
  readonly setupId: SetupId;
  readonly length: number;
  /** `length + 1` affine points, 20 words each; point 0 is g^r. */
  readonly points: Int32Array;
}

/** The function key for y: sk_y = <s, y> mod ℓ, together with y itself (the decryptor needs it). */
export interface FunctionKey {
  readonly kind: 'fe-function-key';
  readonly setupId: SetupId;
  readonly y: Int32Array;
  readonly sk: bigint;
}

/** A fresh random setup id (16 bytes from `globalThis.crypto.getRandomValues`, hex). */
export function newSetupId(): SetupId {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Checks that two objects come from the same setup.
 *
 * @throws {KeyMismatchError} if they do not.
 */
export function assertSameSetup(a: { readonly setupId: SetupId }, b: { readonly setupId: SetupId }, what: string): void {
  if (a.setupId !== b.setupId) {
    throw new KeyMismatchError(`${what} come from different setups (${a.setupId.slice(0, 8)}… vs ${b.setupId.slice(0, 8)}…)`);
  }
}

/**
 * A function key for a sparse vector y given by `coeffs[j]` at positions `indices[j] + shift`
 * (all other entries zero): the form of a convolution kernel placed at one output position, or
 * of an error map placed at one kernel offset. `indices` and `coeffs` may be shared by many keys.
 */
export interface SparseFunctionKey {
  readonly kind: 'fe-sparse-function-key';
  readonly setupId: SetupId;
  /** Length of the vectors of the setup. */
  readonly length: number;
  readonly indices: Int32Array;
  readonly coeffs: Int32Array;
  readonly shift: number;
  readonly sk: bigint;
}
