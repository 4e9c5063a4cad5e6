/**
 * Trained models as ONNX chains (`blindml train --export`): each scheme's weights rewritten as
 * dense layers and activations. Image models take pixels in [0, 1]. Models on feature vectors take
 * the standardised features the training used, and state the standardisation in the metadata
 * entry {@link STANDARDIZE_KEY} (`blindml predict` applies it to raw rows on the client, before
 * encrypting: folded into the first layer, raw features from 0.001 to 4,000 would share one
 * fixed-point scale and the small ones would lose their digits); a target scaling is folded into
 * the last layer, so outputs are in the target's own units.
 *
 * @module
 */
import type { ExportLayer, ExportSpec } from '../nn/onnx-export.js';
import { LABELS_KEY, STANDARDIZE_KEY } from '../data/onnx-labels.js';
import type { Mlp } from './fe/mlp.js';
import type { QuantConfig } from './fe/quantize.js';
import { quantizeWeights } from './fe/quantize.js';
import { ACTIVATION, type MultikeyMlpConfig } from './multikey/mlp.js';
import type { SmlpConfig } from './smlp/config.js';
import type { SmlpPlainWeights } from './smlp/run.js';

/** Per-feature statistics a model's inputs were standardised with: x′ = (x − mean) / std, clipped to ±clip when given. */
export interface Standardization {
  readonly mean: ArrayLike<number>;
  readonly std: ArrayLike<number>;
  readonly clip?: number;
}

/** The metadata entry that states a standardisation. */
function standardizationEntry(s: Standardization): Record<string, string> {
  return { [STANDARDIZE_KEY]: JSON.stringify({ mean: Array.from(s.mean), std: Array.from(s.std), ...(s.clip === undefined ? {} : { clip: s.clip }) }) };
}

/**
 * The CryptoNN MLP (`train --scheme fe --model mlp`): the server's own learned weights (the
 * server holds them in the clear; only the data was encrypted). The first layer is the quantized
 * rows the server used for every inner product (weights rounded to 1/wScale), so on inputs that
 * are multiples of 1/xScale the file computes the training code's logits exactly.
 *
 * @param inputShape - one sample's shape, e.g. [1, 28, 28] for Fashion-MNIST.
 */
export function feMlpExport(model: Mlp, quant: QuantConfig, inputShape: readonly number[]): ExportSpec {
  const { inputs, hidden, classes } = model.config;
  const w1 = new Float64Array(hidden * inputs);
  for (let j = 0; j < hidden; j++) {
    const row = quantizeWeights(model.w1, j * inputs, inputs, quant);
    for (let i = 0; i < inputs; i++) w1[j * inputs + i] = row[i]! / quant.wScale;
  }
  return {
    inputShape,
    name: `cryptonn-mlp-${inputs}-${hidden}-${classes}`,
    description:
      `CryptoNN ${inputs}-${hidden}-${classes} ReLU MLP trained by blindml with inner-product functional encryption ` +
      '(train --scheme fe): the weights the server learned on encrypted images; inputs are pixels in [0, 1], outputs are class logits.',
    layers: [
      { kind: 'dense', weights: w1, bias: model.b1, inputs, outputs: hidden },
      { kind: 'relu' },
      { kind: 'dense', weights: model.w2, bias: model.b2, inputs: hidden, outputs: classes },
    ],
    metadata: { 'blindml.scheme': 'fe' },
  };
}

/**
 * The Secure MLP (`train --scheme smlp`) from the weights the user decrypted with its own key.
 * Inputs are the user's standardised features, clipped as the training clipped them (both stated
 * in the metadata: `blindml predict` applies them; the ONNX graph itself starts after them); outputs are two logits, −ŷ and ŷ,
 * so the larger one is the class (0 malignant, 1 benign) the training code predicts from ŷ's sign.
 */
export function smlpExport(weights: SmlpPlainWeights, c: SmlpConfig, s: Standardization): ExportSpec {
  const features = s.mean.length;
  const cols = features + 1;
  const unit = 2 ** c.fracBits;
  const w1 = new Float64Array(c.hidden * features);
  const b1 = new Float64Array(c.hidden);
  for (let i = 0; i < c.hidden; i++) {
    for (let j = 0; j < features; j++) w1[i * features + j] = weights.w1[i * cols + j]! / unit;
    b1[i] = weights.w1[i * cols + features]! / unit;
  }
  const w2 = weights.w2.slice(0, c.hidden).map((v) => v / unit);
  const b2 = weights.w2[c.hidden]! / unit;
  const layers: ExportLayer[] = [
    { kind: 'dense', weights: w1, bias: b1, inputs: features, outputs: c.hidden },
    { kind: 'relu' },
    { kind: 'dense', weights: [...w2.map((v) => -v), ...w2], bias: [-b2, b2], inputs: c.hidden, outputs: 2 },
  ];
  return {
    inputShape: [features],
    name: `secure-mlp-${features}-${c.hidden}-1`,
    description:
      `Secure MLP ${features}-${c.hidden}-1 (ReLU) trained by blindml on Paillier-encrypted data with two servers (train --scheme smlp), ` +
      `weights decrypted by the data owner with its own key; inputs are feature values standardised as the metadata '${STANDARDIZE_KEY}' states ` +
      '((x − mean) / std per feature), outputs are logits for class 0 (malignant) and 1 (benign).',
    layers,
    metadata: { 'blindml.scheme': 'smlp', [LABELS_KEY]: JSON.stringify(['malignant', 'benign']), ...standardizationEntry(s) },
  };
}

/**
 * The multi-key regression network (`train --scheme multikey`, MSCryptoNet 10-8-1 with the
 * degree-2 activation): inputs are standardised features (stated in the metadata), the output is
 * the target in its own units (the target's scaling folded into the last layer).
 */
export function multikeyExport(
  weights: { readonly W1: ArrayLike<number>; readonly b1: ArrayLike<number>; readonly W2: ArrayLike<number>; readonly b2: ArrayLike<number> },
  config: MultikeyMlpConfig,
  s: Standardization & { readonly targetMean: number; readonly targetStd: number },
): ExportSpec {
  const w2 = Array.from(weights.W2, (v) => v * s.targetStd);
  const b2 = weights.b2[0]! * s.targetStd + s.targetMean;
  return {
    inputShape: [config.inputs],
    name: `multikey-mlp-${config.inputs}-${config.hidden}-1`,
    description:
      `Regression network ${config.inputs}-${config.hidden}-1 with the activation ${ACTIVATION.c2}·z² + ${ACTIVATION.c1}·z + ${ACTIVATION.c0}, ` +
      `trained by blindml from providers with their own keys (train --scheme multikey); inputs are feature values standardised as the metadata '${STANDARDIZE_KEY}' states, the output is the target.`,
    layers: [
      { kind: 'dense', weights: weights.W1, bias: weights.b1, inputs: config.inputs, outputs: config.hidden },
      { kind: 'polynomial', coefficients: [ACTIVATION.c0, ACTIVATION.c1, ACTIVATION.c2] },
      { kind: 'dense', weights: w2, bias: [b2], inputs: config.hidden, outputs: 1 },
    ],
    metadata: { 'blindml.scheme': 'multikey', ...standardizationEntry(s) },
  };
}
