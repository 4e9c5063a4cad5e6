/**
 * `blindml/workers`: bulk cryptographic work on worker threads (Node only).
 *
 * @module
 */
export * from './paillier-pool.js';
export type { PaillierTask } from './paillier-tasks.js';
export * from './fe-pool.js';
export type { FeTask, FeTaskResult } from './fe-tasks.js';
export * from './two-server-pool.js';
export type { TwoServerTask } from './two-server-tasks.js';
export * from './ckks-products-pool.js';
