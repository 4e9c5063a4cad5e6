/**
 * The interactive Paillier inference protocol: plan, compile, service, client, messages.
 *
 * @module
 */
export * from './plan.js';
export { activationRanges, planCalibrated, splineTerms } from './graph-plan.js';
export * from './compile.js';
export * from './messages.js';
export * from './service.js';
export * from './client.js';
export * from './simulate.js';
