/**
 * Two-server Paillier arithmetic: S1 ({@link ComputeServer}) computes on ciphertexts, S2
 * ({@link CryptoServer}) holds the private key and multiplies, truncates, compares and re-encrypts
 * values S1 has blinded, over a byte transport that counts traffic and rounds.
 *
 * @module
 */
export * from './params.js';
export * from './errors.js';
export * from './messages.js';
export * from './transport.js';
export * from './compute.js';
export * from './slots.js';
export * from './crypto-server.js';
export * from './compute-server.js';
