/**
 * The blindml client SDK (Node and browsers): `connect(url)` then `predict(modelId, image)`, plus
 * model owner calls and the two transports.
 *
 * @module
 */
export * from './sdk.js';
export * from './owner.js';
export * from './http-transport.js';
export * from './websocket-transport.js';
export * from './ckks-http-transport.js';
export * from './ckks-poly-transport.js';
export * from './ckks-ws-transport.js';
export * from './ckks.js';
export * from './routing.js';
