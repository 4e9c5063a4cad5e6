/**
 * `blindml/encoding`: python-paillier-compatible fixed-point numbers over Paillier. Browser-safe.
 *
 * @module
 */
export * from './float.js';
export * from './encoded-number.js';
export * from './encrypted-number.js';
