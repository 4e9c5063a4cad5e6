/**
 * `blindml/math`: bigint number theory shared by every scheme. Browser-safe.
 *
 * @module
 */
export * from './assert.js';
export * from './bigint.js';
export * from './modular.js';
export * from './prime.js';
export * from './random.js';
export * from './fixed-base.js';
export * from './multi-exp.js';
