/**
 * Models: the IR every backend consumes, the ONNX importer and the plaintext executor.
 *
 * @module
 */
export * from './shape.js';
export * from './layers.js';
export * from './model.js';
export { foldBatchNorm, type BatchNormParams } from './fold.js';
export { importOnnx, SUPPORTED_OPS } from './onnx.js';
export {
  runPlaintext,
  predictPlaintext,
  argmaxRows,
  accuracy,
  type RunOptions,
} from './plaintext.js';
export * from './poly-activation.js';
