/**
 * Inner-product functional encryption (Abdalla–Bourse–De Caro–Pointcheval, PKC 2015) over
 * ristretto255: about 126-bit security (Pollard rho on a group of order ≈ 2^252), DDH assumption.
 * Browser-safe: no `node:` imports, randomness from `globalThis.crypto.getRandomValues`.
 *
 * @module
 */
export { FeEngine, defaultEngine, MAX_KEY_COEFFICIENT, MAX_LENGTH, MAX_PLAINTEXT, toIntVector } from './engine.js';
export type { FeEngineOptions } from './engine.js';
export type { Ciphertext, FunctionKey, MasterPublicKey, MasterSecretKey, SetupId, SparseFunctionKey } from './keys.js';
export { assertSameSetup } from './keys.js';
export { InnerProductOutOfBoundError, KeyRequestRefusedError } from './errors.js';
export { GROUP_ORDER, randomScalar } from './curve/group.js';
export * from './serialize.js';
