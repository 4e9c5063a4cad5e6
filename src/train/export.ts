/**
 * Trained models as ONNX chains (`blindml train --export`): each scheme's weights rewritten as
 * dense layers and activations that take what a user has — pixels in [0, 1], or raw feature values
 * — with the training run's input standardisation and target scaling folded into the first and last
 * dense layers, so the file needs nothing beside it.
 *
 * @module
 */
import type { ExportLayer, ExportSpec } from '../nn/onnx-export.js';
import type { Mlp } from './fe/mlp.js';
import type { QuantConfig } from './fe/quantize.js';
import { quantizeWeights } from './fe/quantize.js';
import { ACTIVATION, type MultikeyMlpConfig } from './multikey/mlp.js';
import type { SmlpConfig } from './smlp/config.js';
import type { SmlpPlainWeights } from './smlp/run.js';

/** Per-feature statistics a model's inputs were standardised with: x′ = (x − mean) / std. */
export interface Standardization {
  readonly mean: ArrayLike<number>;
  readonly std: ArrayLike<number>;
}

/**
 * Folds standardisation into a dense layer: W·((x − μ)/σ) + b = (W/σ)·x + (b − W·(μ/σ)).
 * `weights` is row-major, `outputs` rows of `mean.length` values.
 */
function foldStandardization(weights: ArrayLike<number>, bias: ArrayLike<number>, outputs: number, s: Standardization): { weights: Float64Array; bias: Float64Array } {
  const inputs = s.mean.length;
  const w = new Float64Array(outputs * inputs);
  const b = Float64Array.from(bias);
  for (let o = 0; o < outputs; o++) {
    for (let i = 0; i < inputs; i++) {
      const scaled = weights[o * inputs + i]! / s.std[i]!;
      w[o * inputs + i] = scaled;
      b[o] = b[o]! - scaled * s.mean[i]!;
    }
  }
  return { weights: w, bias: b };
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
 * Inputs are raw feature values (the user's standardisation is folded in; the training run also
 * clips standardised values to ±15, which the file does not); outputs are two logits, −ŷ and ŷ,
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
  const first = foldStandardization(w1, b1, c.hidden, s);
  const w2 = weights.w2.slice(0, c.hidden).map((v) => v / unit);
  const b2 = weights.w2[c.hidden]! / unit;
  const layers: ExportLayer[] = [
    { kind: 'dense', ...first, inputs: features, outputs: c.hidden },
    { kind: 'relu' },
    { kind: 'dense', weights: [...w2.map((v) => -v), ...w2], bias: [-b2, b2], inputs: c.hidden, outputs: 2 },
  ];
  return {
    inputShape: [features],
    name: `secure-mlp-${features}-${c.hidden}-1`,
    description:
      `Secure MLP ${features}-${c.hidden}-1 (ReLU) trained by blindml on Paillier-encrypted data with two servers (train --scheme smlp), ` +
      'weights decrypted by the data owner with its own key; inputs are raw feature values, outputs are logits for class 0 (malignant) and 1 (benign).',
    layers,
    metadata: { 'blindml.scheme': 'smlp' },
  };
}

/**
 * The multi-key regression network (`train --scheme multikey`, MSCryptoNet 10-8-1 with the
 * degree-2 activation): inputs are raw feature values, the output is the target in its own units
 * (feature standardisation folded into the first layer, the target's into the last).
 */
export function multikeyExport(
  weights: { readonly W1: ArrayLike<number>; readonly b1: ArrayLike<number>; readonly W2: ArrayLike<number>; readonly b2: ArrayLike<number> },
  config: MultikeyMlpConfig,
  s: Standardization & { readonly targetMean: number; readonly targetStd: number },
): ExportSpec {
  const first = foldStandardization(weights.W1, weights.b1, config.hidden, s);
  const w2 = Array.from(weights.W2, (v) => v * s.targetStd);
  const b2 = weights.b2[0]! * s.targetStd + s.targetMean;
  return {
    inputShape: [config.inputs],
    name: `multikey-mlp-${config.inputs}-${config.hidden}-1`,
    description:
      `Regression network ${config.inputs}-${config.hidden}-1 with the activation ${ACTIVATION.c2}·z² + ${ACTIVATION.c1}·z + ${ACTIVATION.c0}, ` +
      'trained by blindml from providers with their own keys (train --scheme multikey); inputs are raw feature values, the output is the target.',
    layers: [
      { kind: 'dense', ...first, inputs: config.inputs, outputs: config.hidden },
      { kind: 'polynomial', coefficients: [ACTIVATION.c0, ACTIVATION.c1, ACTIVATION.c2] },
      { kind: 'dense', weights: w2, bias: [b2], inputs: config.hidden, outputs: 1 },
    ],
    metadata: { 'blindml.scheme': 'multikey' },
  };
}
