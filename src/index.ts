/**
 * blindml: neural networks on data the machine running them never sees.
 *
 * Subpath exports give each layer on its own (`blindml/paillier`, `blindml/encoding`, ...); this
 * entry point re-exports the shared errors.
 *
 * @module
 */
export * from './errors.js';
