/**
 * `blindml/paillier`: the Paillier cryptosystem (g = n + 1) with CRT decryption, DJN fixed-base
 * encryption, noise pools, homomorphic operations, multi-exponentiation dot products, slot packing
 * and python-paillier-compatible files. Browser-safe.
 *
 * @module
 */
export * from './keys.js';
export * from './ciphertext.js';
export * from './noise.js';
export * from './linear.js';
export * from './packing.js';
export * from './jwk.js';
export * from './tensor-file.js';
